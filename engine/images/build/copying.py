"""``COPY`` and ``ADD``: which files land where, as the entries of a new
layer -- nothing is run, the layer is written from the sources directly.

Docker's rules for the destination: a relative one is under ``WORKDIR``; a
destination ending in ``/``, or naming a directory the image has, is a
directory the sources go into (a file under its own name, a directory's
*contents*); otherwise a single file source is copied to that very name.
Several sources need a destination ending in ``/``. The destination's
directories are looked up in the image (:class:`.view.LayerView`):
symlinks on the way are followed inside the image (``/bin`` ->
``/usr/bin``), an existing directory keeps its mode and owner, a new one
is made ``0755``. Files from the context belong to root, files from
another stage or image keep their owners; ``--chown`` and ``--chmod``
override both. ``ADD`` of a local tar archive (plain, gzip, bzip2 or xz,
recognised by its content, as docker does) unpacks it into the destination.

:func:`checksum` is the cache's view of the sources: every path, type,
mode, symlink target and content hash -- but not mtimes, as docker's.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ImageError

from .context import Resolved, Source
from .ignore import glob_regex, has_magic
from .pack import Item
from .view import LayerView, split


@dataclass
class Options:
    """What ``--chown``, ``--chmod`` and the instruction say about the copy."""

    chown: tuple[int, int] | None = None
    chmod: int | None = None
    keep_owners: bool = False     # from another stage or image: owners as they are there
    unpack: bool = False          # ADD: local tar archives are unpacked
    now: float = 0.0              # mtime of the directories the copy makes


def parse_chmod(value: str) -> int:
    if not value or len(value) > 4 or any(c not in "01234567" for c in value):
        raise ImageError(f"invalid --chmod={value}: an octal mode such as 755 is expected")
    return int(value, 8)


def image_sources(view: LayerView, path: str) -> list[Resolved]:
    """What ``path`` names in another stage's or image's files (wildcards
    included), as :meth:`.context.Context.sources` does for the context."""
    parts = split(path)
    matches = [""]
    for part in parts:
        nxt = []
        for d in matches:
            if not has_magic(part):
                nxt.append(f"{d}/{part}")
                continue
            try:
                regex = glob_regex(part)
            except ValueError as e:
                raise ImageError(f"{path}: {e}") from None
            nxt += [f"{d}/{n}" for n in view.listdir(view.resolve(d or "/")) if regex.match(n)]
        matches = nxt
    if not parts:
        matches = ["/"]
    out = []
    for m in matches:
        real = view.resolve(m)
        found = view.lstat(real)
        if found is None:
            if has_magic(path):
                continue
            raise ImageError(f"{path}: not found in the source image")
        st, host = found
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise ImageError(f"{path}: not a file or directory")
        entries = [Source("", str(host), st)]
        if stat.S_ISDIR(st.st_mode):
            entries += [Source(rel, str(h), s) for rel, s, h in view.walk(real)]
        out.append(Resolved(posixpath.basename(m.rstrip("/")), entries))
    if not out:
        raise ImageError(f"{path}: no source files were specified (nothing in the source image matches it)")
    return out


def _kind(st: os.stat_result) -> str | None:
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return None


def _file_sha(host: str) -> str:
    with open(host, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def checksum(resolved: list[Resolved], *, keep_owners: bool = False) -> str:
    """The sources' checksum (see the module's docstring)."""
    h = hashlib.sha256()
    for r in resolved:
        h.update(f"source {r.name}\0".encode("utf-8", "surrogateescape"))
        for e in r.entries:
            kind = _kind(e.st)
            if kind is None:
                continue
            extra = ""
            if kind == "file":
                extra = _file_sha(e.host)
            elif kind == "symlink":
                extra = os.readlink(e.host)
            owner = f"{e.st.st_uid}:{e.st.st_gid}" if keep_owners else ""
            h.update(f"{e.rel}\0{kind}\0{stat.S_IMODE(e.st.st_mode):o}\0{owner}\0{extra}\n"
                     .encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()


def is_archive(path: str) -> bool:
    """Whether the file is a tar archive, plain or compressed (by its content)."""
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError, ValueError):
        return False


class Planner:
    """The items of one COPY or ADD into the image ``view``."""

    def __init__(self, view: LayerView, options: Options, work: Path):
        self.view, self.opt, self.work = view, options, work
        self.items: dict[str, Item] = {}
        self.archives = 0

    def plan(self, resolved: list[Resolved], dest: str, workdir: str, *, several: bool) -> list[Item]:
        if not dest.startswith("/"):
            dest = posixpath.join(workdir or "/", dest)
        dir_form = dest.endswith("/") or dest.endswith("/.") or dest.endswith("/..") or dest == "/"
        if several and not dir_form:
            raise ImageError(f"when copying more than one source, the destination must be a directory "
                             f"and end with a / ({dest})")
        into = self.view.resolve(dest)                      # a directory: follow it all the way
        existing = self.view.lstat(into)
        is_dir = dir_form or len(resolved) > 1 or (existing is not None and stat.S_ISDIR(existing[0].st_mode))
        for r in resolved:
            top = r.entries[0]
            if r.is_dir:
                self._tree(r.entries, into)
            elif self.opt.unpack and is_archive(top.host):
                self._archive(top.host, into)
            else:
                if is_dir:
                    target = posixpath.join(into, r.name)
                else:
                    parent = self.view.resolve(posixpath.dirname(dest.rstrip("/")) or "/")
                    target = posixpath.join(parent, posixpath.basename(dest.rstrip("/")))
                self._entry(target, top)
        self._parents()
        return list(self.items.values())

    def _owner(self, st: os.stat_result) -> tuple[int, int]:
        if self.opt.chown is not None:
            return self.opt.chown
        return (st.st_uid, st.st_gid) if self.opt.keep_owners else (0, 0)

    def _mode(self, st: os.stat_result) -> int:
        return self.opt.chmod if self.opt.chmod is not None else stat.S_IMODE(st.st_mode)

    def _entry(self, target: str, e: Source) -> None:
        kind = _kind(e.st)
        if kind is None:
            return
        path = target.lstrip("/")
        if not path:
            return                                          # "/" itself: the layer's root, not an entry
        uid, gid = self._owner(e.st)
        item = Item(path, kind, self._mode(e.st), uid, gid, e.st.st_mtime)
        if kind == "file":
            item.source, item.size = e.host, e.st.st_size
        elif kind == "symlink":
            item.linkname, item.mode = os.readlink(e.host), 0o777
        self.items[path] = item

    def _tree(self, entries: list[Source], into: str) -> None:
        top = entries[0]
        existing = self.view.lstat(into)
        if existing is None or not stat.S_ISDIR(existing[0].st_mode):
            self._entry(into, top)                          # a new directory: the source's mode
        for e in entries[1:]:
            self._entry(posixpath.join(into, e.rel), e)

    def _parents(self) -> None:
        """Every directory an item lies in, as the image has it or made new."""
        for path in sorted(self.items):
            parent = posixpath.dirname(path)
            while parent and parent not in self.items:
                found = self.view.lstat(parent)
                if found is not None and stat.S_ISDIR(found[0].st_mode):
                    st = found[0]
                    self.items[parent] = Item(parent, "dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                              st.st_mtime)
                else:
                    uid, gid = self.opt.chown or (0, 0)
                    self.items[parent] = Item(parent, "dir", 0o755, uid, gid, self.opt.now)
                parent = posixpath.dirname(parent)

    def _archive(self, archive: str, into: str) -> None:
        """A local tar archive's entries under ``into`` (ADD)."""
        self.archives += 1
        files = self.work / f"archive-{self.archives}"
        files.mkdir()
        base = into.lstrip("/")
        shown = os.path.basename(archive)
        try:
            with tarfile.open(archive, "r:*") as tar:
                for n, info in enumerate(tar):
                    name = posixpath.normpath(info.name.lstrip("/"))
                    if name == ".":
                        continue
                    if name == ".." or name.startswith("../"):
                        raise ImageError(f"{shown}: entry {info.name!r} climbs out of the destination with '..'")
                    path = posixpath.join(base, name) if base else name
                    uid, gid = self.opt.chown or (info.uid, info.gid)
                    mode = self.opt.chmod if self.opt.chmod is not None else info.mode & 0o7777
                    item = Item(path, "", mode, uid, gid, info.mtime)
                    if info.isdir():
                        item.kind = "dir"
                    elif info.isreg():
                        host = files / str(n)
                        with tar.extractfile(info) as src, open(host, "xb") as out:
                            while chunk := src.read(1 << 20):
                                out.write(chunk)
                        item.kind, item.source, item.size = "file", str(host), info.size
                    elif info.issym():
                        item.kind, item.linkname = "symlink", info.linkname
                    elif info.islnk():
                        link = posixpath.normpath(info.linkname.lstrip("/"))
                        if link == ".." or link.startswith("../"):
                            raise ImageError(f"{shown}: the hardlink {info.name!r} points out with '..'")
                        item.kind, item.linkname = "hardlink", posixpath.join(base, link) if base else link
                    elif info.isfifo():
                        item.kind = "fifo"
                    else:
                        continue                            # device nodes: a layer needs none
                    self.items[path] = item
        except (tarfile.TarError, EOFError, OSError) as e:
            if isinstance(e, OSError) and not isinstance(e, (EOFError,)) and e.errno is not None:
                raise ImageError(f"{shown}: cannot unpack: {e.strerror or e}") from None
            raise ImageError(f"{shown}: not a readable tar archive ({e})") from None
        existing = self.view.lstat(into)
        if base and base not in self.items and (existing is None or not stat.S_ISDIR(existing[0].st_mode)):
            uid, gid = self.opt.chown or (0, 0)
            self.items[base] = Item(base, "dir", 0o755, uid, gid, self.opt.now)
