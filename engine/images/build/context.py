"""The build context: the directory ``build`` is given, read in place (no
copy is made), and what ``COPY`` and ``ADD`` may take from it.

A source path names something inside the context, whatever it looks like:
``/etc/passwd`` is ``CONTEXT/etc/passwd``; a path that climbs out with
``..`` is refused; a symlink -- the source itself or a directory on the way
-- that leads out of the context is refused. Inside a copied directory
symlinks are copied as symlinks, never followed, so they cannot bring in a
file from outside. What ``.dockerignore`` excludes is not there at all.
Sockets and device nodes are left out (a context has no business holding
them).

:meth:`Context.sources` resolves one source (wildcards included) to the
files it stands for, each with the path it gets under the destination.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ImageError

from .ignore import Ignore, glob_regex, has_magic


@dataclass
class Source:
    """One entry to copy: where it lands (relative to the destination), its
    host path and its stat (symlinks not followed, except a top-level one)."""

    rel: str                      # "" for the source itself, else a path below it
    host: str
    st: os.stat_result


@dataclass
class Resolved:
    """One source path as given: its name (for a file copied into a
    directory) and its entries, the source itself first."""

    name: str
    entries: list[Source]

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.entries[0].st.st_mode)


class Context:
    """A build context directory and its ``.dockerignore``."""

    def __init__(self, root: str | Path, ignore: Ignore | None = None):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ImageError(f"the build context {root} is not a directory")
        self.ignore = ignore if ignore is not None else Ignore()

    @classmethod
    def open(cls, root: str | Path) -> Context:
        """The context at ``root`` with its ``.dockerignore``, if it has one."""
        path = Path(root) / ".dockerignore"
        try:
            lines = path.read_text(errors="replace")
        except FileNotFoundError:
            lines = ""
        except OSError as e:
            raise ImageError(f"cannot read {path}: {e.strerror or e}") from None
        try:
            return cls(root, Ignore(lines))
        except ValueError as e:
            raise ImageError(f"{path}: {e}") from None

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + "/")

    def clean(self, source: str) -> str:
        """``source`` as a path relative to the context ("." for the context
        itself); an ImageError when it climbs out with '..'."""
        rel = posixpath.normpath(source.lstrip("/") or ".")
        if rel == ".." or rel.startswith("../"):
            raise ImageError(f"{source}: forbidden path outside the build context")
        return rel

    def sources(self, source: str) -> list[Resolved]:
        """What ``source`` names: one entry, or every match of a wildcard."""
        rel = self.clean(source)
        if has_magic(rel):
            matches = self._glob(rel)
            if not matches:
                raise ImageError(f"{source}: no source files were specified (nothing in the build context "
                                 "matches it, or .dockerignore excludes all it matches)")
            return [self._resolve(m, source) for m in matches]
        return [self._resolve(rel, source)]

    def _resolve(self, rel: str, shown: str) -> Resolved:
        host = os.path.join(self.root, rel) if rel != "." else self.root
        if rel != "." and (self.ignore.excluded(rel) or not os.path.lexists(host)):
            raise ImageError(f"{shown}: file not found in build context or excluded by .dockerignore")
        real = os.path.realpath(host)
        if not self._inside(real):
            link = self._link_out(rel)
            what = "it is" if link == rel else f"{link} is"
            raise ImageError(f"{shown}: {what} a symlink pointing outside the build context "
                             f"({os.readlink(os.path.join(self.root, link))}); refused")
        try:
            st = os.stat(real)
        except OSError as e:
            raise ImageError(f"{shown}: {e.strerror}") from None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise ImageError(f"{shown}: not a file or directory")
        name = posixpath.basename(rel) if rel != "." else ""
        entries = [Source("", real, st)]
        if stat.S_ISDIR(st.st_mode):
            base = posixpath.relpath(real, self.root) if real != self.root else "."
            entries += self._walk(real, base)
        return Resolved(name, entries)

    def _link_out(self, rel: str) -> str:
        """The first component of ``rel`` that is a symlink leading out."""
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            host = os.path.join(self.root, sub)
            if os.path.islink(host) and not self._inside(os.path.realpath(host)):
                return sub
        return rel

    def _walk(self, top: str, base: str) -> list[Source]:
        """Everything under the directory ``top`` (context path ``base``), parents first, sorted."""
        out: list[Source] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            here = os.path.join(top, rel) if rel else top
            try:
                entries = sorted(os.scandir(here), key=lambda e: e.name)
            except OSError as e:
                raise ImageError(f"cannot read {here}: {e.strerror}") from None
            subdirs = []
            for e in entries:
                child = f"{rel}/{e.name}" if rel else e.name
                ctx_path = child if base == "." else f"{base}/{child}"
                st = e.stat(follow_symlinks=False)
                excluded = self.ignore.excluded(ctx_path)
                if stat.S_ISDIR(st.st_mode):
                    if excluded and not self.ignore.may_hold_included(ctx_path):
                        continue
                    if not excluded:
                        out.append(Source(child, e.path, st))
                    subdirs.append(child)
                elif excluded:
                    continue
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    out.append(Source(child, e.path, st))
            stack.extend(reversed(subdirs))
        return _with_parents(out, top)

    def _glob(self, pattern: str) -> list[str]:
        """Context paths matching ``pattern`` component by component (``*`` stays in one directory)."""
        parts = pattern.split("/")
        found = [""]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = []
            for d in found:
                host = os.path.join(self.root, d) if d else self.root
                if not has_magic(part):
                    cand = f"{d}/{part}" if d else part
                    if os.path.lexists(os.path.join(self.root, cand)):
                        nxt.append(cand)
                    continue
                try:
                    regex = glob_regex(part)
                except ValueError as e:
                    raise ImageError(f"{pattern}: {e}") from None
                try:
                    names = sorted(os.listdir(host))
                except OSError:
                    continue
                for name in names:
                    cand = f"{d}/{name}" if d else name
                    if regex.match(name) and (last or os.path.isdir(os.path.join(self.root, cand))):
                        nxt.append(cand)
            found = nxt
        return [p for p in found if not self.ignore.excluded(p)]


def _with_parents(entries: list[Source], top: str) -> list[Source]:
    """``entries`` plus the directories an included entry lies in that an
    exclusion left out (``!keep/this`` under an excluded ``keep``), in order."""
    have = {e.rel for e in entries}
    out: list[Source] = []
    for e in entries:
        parent = posixpath.dirname(e.rel)
        missing = []
        while parent and parent not in have:
            missing.append(parent)
            have.add(parent)
            parent = posixpath.dirname(parent)
        for rel in reversed(missing):
            host = os.path.join(top, rel)
            out.append(Source(rel, host, os.lstat(host)))
        out.append(e)
    return out
