"""``.dockerignore``: which files of the build context ``COPY`` and ``ADD``
never see, with docker's rules (moby's ``patternmatcher``).

One pattern a line; blank lines and lines starting with ``#`` are skipped;
a pattern is cleaned as a path and a leading ``/`` dropped (it is relative
to the context either way). Patterns use Go's ``filepath.Match`` syntax --
``*`` any run of characters but ``/``, ``?`` one such character,
``[a-z]`` a class, ``\\`` an escape -- plus ``**``, any number of
directories (none included). A pattern matches a path, or any directory
the path lies in (``build`` excludes ``build/x/y``). ``!pattern`` brings
back what an earlier pattern excluded; the last pattern that matches
decides.

:func:`glob_regex` compiles one ``filepath.Match`` pattern alone (``COPY
*.txt``), without ``**``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool               # "!pattern"
    regex: re.Pattern


def _translate(pattern: str, doublestar: bool) -> str:
    """A Go ``filepath.Match`` pattern (with ``**`` when ``doublestar``) as a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if doublestar and i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = i + 1
            if end < n and pattern[end] in "^!":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1
            while end < n and pattern[end] != "]":
                end += 1
            if end >= n:
                raise ValueError(f"syntax error in pattern {pattern!r}: unclosed '['")
            body = pattern[i + 1:end]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern:
    """One ``filepath.Match`` pattern, compiled (ValueError if malformed)."""
    return re.compile(_translate(pattern, doublestar=False) + r"\Z", re.DOTALL)


def has_magic(path: str) -> bool:
    """Whether ``path`` holds a wildcard (``COPY *.txt``)."""
    return any(c in path for c in "*?[")


class Ignore:
    """A ``.dockerignore``'s patterns, compiled."""

    def __init__(self, lines: list[str] | str = ()):
        if isinstance(lines, str):
            lines = lines.splitlines()
        self.patterns: list[Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
                if not line:
                    raise ValueError("illegal exclusion pattern: \"!\"")
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
            try:
                regex = re.compile(_translate(line, doublestar=True) + r"\Z", re.DOTALL)
            except (ValueError, re.error) as e:
                raise ValueError(f"bad .dockerignore pattern {raw.strip()!r}: {e}") from None
            self.patterns.append(Pattern(line, exclusion, regex))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out."""
        if not self.patterns:
            return False
        path = posixpath.normpath(path)
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[:i + 1]) for i in range(len(parents))]
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue                  # cannot change the answer
            hit = bool(p.regex.match(path)) or any(p.regex.match(prefix) for prefix in prefixes)
            if hit:
                matched = not p.exclusion
        return matched

    def may_hold_included(self, directory: str) -> bool:
        """Whether an excluded ``directory`` may still hold a path some ``!``
        pattern brings back (so it must be walked, not skipped whole)."""
        return self.has_exclusions
