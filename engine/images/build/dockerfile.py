"""Reading a Dockerfile: its parser directives, its lines joined at their
continuations, comments dropped, each instruction with its flags and the
line it starts on (:func:`parse`); then the instructions grouped into the
global ``ARG`` s and the build stages (:func:`stages`).

What docker's parser does is done here in the same way: a directive
(``# escape=``, ``# syntax=``) counts only at the very top; a line ending
in the escape character continues on the next, and comment lines inside a
continuation are dropped; instruction names are case-insensitive;
``--flag=value`` words at the start of ``FROM``, ``RUN``, ``COPY`` and
``ADD`` are flags; ``["a", "b"]`` is the exec (JSON) form. Every error is a
:class:`DockerfileError` naming the line: ``Dockerfile:7: ...``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from engine.errors import ImageError

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")
_HEREDOC = re.compile(r"^<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*")

# What each instruction accepts as flags.
FLAGS = {
    "FROM": {"platform"},
    "RUN": set(),
    "COPY": {"from", "chown", "chmod"},
    "ADD": {"chown", "chmod"},
}
# Instructions read here, and docker's that are not (named as such, not "unknown").
INSTRUCTIONS = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE",
                "LABEL", "SHELL", "STOPSIGNAL", "VOLUME", "MAINTAINER")
UNSUPPORTED = ("ONBUILD", "HEALTHCHECK")


class DockerfileError(ImageError):
    """A problem with the Dockerfile, named by file and line: ``Dockerfile:7: ...``."""


@dataclass
class Instruction:
    """One instruction, its continuation lines joined."""

    line: int                     # the line it starts on (1-based)
    keyword: str                  # upper case: RUN, COPY ...
    rest: str                     # what follows the keyword and its flags
    flags: dict[str, str] = field(default_factory=dict)
    original: str = ""            # the instruction as written (continuations joined)

    def json_form(self) -> list[str] | None:
        """The exec form's list when ``rest`` is a JSON array of strings, else None."""
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Dockerfile:
    """A parsed Dockerfile."""

    name: str                     # as errors name it ("Dockerfile")
    instructions: list[Instruction]
    escape: str = "\\"
    notes: list[str] = field(default_factory=list)   # directives read but ignored

    def error(self, line: int, message: str) -> DockerfileError:
        return DockerfileError(f"{self.name}:{line}: {message}")


@dataclass
class Stage:
    """``FROM ... [AS name]`` and the instructions up to the next FROM."""

    index: int
    name: str | None              # lower case, or None
    base: str                     # as written (expanded later, with the global ARGs)
    platform: str | None
    from_line: Instruction
    instructions: list[Instruction]


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Parse ``text``; a :class:`DockerfileError` (``NAME:LINE: ...``) if it cannot be read."""
    lines = text.splitlines()
    escape = "\\"
    notes: list[str] = []
    seen: set[str] = set()
    start = 0
    for start, raw in enumerate(lines):          # noqa: B007 - start is used after the loop
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            break
        key, value = m[1].lower(), m[2]
        if key not in _KNOWN_DIRECTIVES:
            break                                 # an ordinary comment: directives end here
        if key in seen:
            raise DockerfileError(f"{name}:{start + 1}: only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"{name}:{start + 1}: invalid escape token '{value}' does not "
                                      "match ` or \\")
            escape = value
        else:
            notes.append(f"{name}:{start + 1}: the '# {key}=' directive is ignored: container-lab reads "
                         "Dockerfiles with its own parser")
    else:
        start = len(lines)
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    instructions: list[Instruction] = []
    pending: list[str] = []
    first = 0
    for number in range(start, len(lines)):
        raw = lines[number]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue                              # blank and comment lines, in a continuation too
        if not pending:
            first = number + 1
        if continuation.search(raw):
            pending.append(continuation.sub("", raw))
            continue
        pending.append(raw)
        instructions.append(_instruction(name, first, "".join(pending)))
        pending = []
    if pending:
        instructions.append(_instruction(name, first, "".join(pending)))
    if not instructions:
        raise DockerfileError(f"{name}: the Dockerfile is empty (no instructions)")
    return Dockerfile(name, instructions, escape, notes)


def _instruction(name: str, line: int, text: str) -> Instruction:
    text = text.strip()
    keyword, _, rest = text.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    keyword = keyword.upper()
    rest = rest.strip()
    if keyword in UNSUPPORTED:
        raise DockerfileError(f"{name}:{line}: {keyword} is not supported by container-lab")
    if keyword not in INSTRUCTIONS:
        raise DockerfileError(f"{name}:{line}: unknown instruction: {keyword}")
    flags: dict[str, str] = {}
    if keyword in FLAGS:
        while rest.startswith("--"):
            word, _, after = rest.partition(" ")
            if word == "--":
                rest = after.strip()
                break
            flag, eq, value = word[2:].partition("=")
            flag = flag.lower()
            if flag not in FLAGS[keyword]:
                allowed = ", ".join(f"--{f}" for f in sorted(FLAGS[keyword])) or "none"
                raise DockerfileError(f"{name}:{line}: {keyword} --{flag} is not supported "
                                      f"(flags {keyword} takes here: {allowed})")
            if not eq:
                raise DockerfileError(f"{name}:{line}: {keyword} --{flag} needs a value (--{flag}=VALUE)")
            if flag in flags:
                raise DockerfileError(f"{name}:{line}: {keyword} --{flag} is given twice")
            flags[flag] = value
            rest = after.strip()
    if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.match(rest):
        raise DockerfileError(f"{name}:{line}: {keyword} with a here-document (<<EOF) is not supported by "
                              "container-lab; put the lines in a file of the context, or join them with &&")
    if not rest and keyword not in ("CMD", "ENTRYPOINT"):
        raise DockerfileError(f"{name}:{line}: {keyword} requires at least one argument")
    return Instruction(line, keyword, rest, flags, text)


def stages(dockerfile: Dockerfile) -> tuple[list[Instruction], list[Stage]]:
    """The global ``ARG`` s (before the first FROM) and the stages."""
    global_args: list[Instruction] = []
    out: list[Stage] = []
    names: set[str] = set()
    for ins in dockerfile.instructions:
        if ins.keyword == "FROM":
            words = ins.rest.split()
            alias = None
            if len(words) == 3 and words[1].lower() == "as":
                alias = words[2].lower()
                if not STAGE_NAME.match(alias):
                    raise dockerfile.error(ins.line, f"invalid name for build stage: {words[2]!r}, a name "
                                                     "starts with a letter and holds only [a-z0-9._-]")
                if alias in names:
                    raise dockerfile.error(ins.line, f"duplicate name for build stage: {alias!r}")
                names.add(alias)
            elif len(words) != 1:
                raise dockerfile.error(ins.line, "FROM takes an image and an optional 'AS name'")
            out.append(Stage(len(out), alias, words[0], ins.flags.get("platform"), ins, []))
        elif not out:
            if ins.keyword != "ARG":
                raise dockerfile.error(ins.line, f"{ins.keyword} before FROM: no build stage in current "
                                                 "context (only ARG may come before the first FROM)")
            global_args.append(ins)
        else:
            out[-1].instructions.append(ins)
    if not out:
        raise DockerfileError(f"{dockerfile.name}: no FROM instruction: a Dockerfile starts its first "
                              "build stage with FROM")
    return global_args, out
