"""Layers the builder makes, written as OCI layer tars (gzip).

Two sources of entries, one writer:

- :func:`upper_items`: a container's writable layer (its overlayfs
  upperdir) as a layer diff -- files, directories, symlinks, hardlinks
  (files of the upperdir that share an inode), fifos and device nodes, each
  with its mode, owner, mtime and extended attributes (those that are not
  overlayfs's own bookkeeping). A whiteout (a 0/0 character device) becomes
  an empty ``.wh.NAME`` entry, an opaque directory
  (``trusted.overlay.opaque=y``) a ``.wh..wh..opq`` entry inside it: the
  OCI image spec's "Representing Changes". The mount points the runtime
  makes in the root (``/proc``, ``/sys``, ``/dev``, ``/etc/hosts`` ...)
  are not changes and are left out, as docker's init layer keeps them out.
- ``COPY`` and ``ADD`` (:mod:`.copying`) list their :class:`Item` s themselves.

:func:`write_layer` writes items, sorted by path (parents first), as a PAX
tar through gzip, hashing both streams as it goes: the blob's digest (of
the gzip bytes) and the diff_id (of the tar) come out of one pass. The gzip
header holds no name and no time, so equal entries give an equal blob.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from engine.images.layers import RUNTIME_DIRS, RUNTIME_FILES
from engine.images.unpack import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, is_opaque, is_whiteout, is_xattr_whiteout

GZIP_LEVEL = 6                    # Go's and so docker's default
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")


@dataclass
class Item:
    """One entry of a layer tar."""

    path: str                     # inside the layer, no leading '/'
    kind: str                     # dir file symlink hardlink fifo char block whiteout opaque
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: float = 0
    source: str | None = None     # file: the host file holding its content
    size: int = 0
    linkname: str = ""            # symlink: its target; hardlink: the path it links to
    rdev: tuple[int, int] = (0, 0)
    xattrs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Written:
    """A layer blob as written: what its descriptor and the config need."""

    path: Path
    digest: str                   # sha256 of the gzip bytes
    size: int
    diff_id: str                  # sha256 of the tar

    def descriptor(self) -> dict:
        from engine.images.store import LAYER_MEDIA_TYPE

        return {"mediaType": LAYER_MEDIA_TYPE + "+gzip", "digest": self.digest, "size": self.size}


def _xattrs(path: str) -> dict[str, bytes]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith(_SKIPPED_XATTRS):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def upper_items(upper: str | Path) -> list[Item]:
    """The writable layer ``upper`` as layer entries (see the module's docstring)."""
    upper = str(upper)
    items: list[Item] = []
    inodes: dict[tuple[int, int], str] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        here = os.path.join(upper, rel) if rel else upper
        try:
            names = sorted(os.listdir(here))
        except OSError:
            continue
        subdirs = []
        for name in names:
            child = f"{rel}/{name}" if rel else name
            host = os.path.join(here, name)
            try:
                st = os.lstat(host)
            except OSError:
                continue
            mode = st.st_mode
            if is_whiteout(st) or is_xattr_whiteout(host, st):
                items.append(Item(_whiteout_name(rel, name), "whiteout", 0, 0, 0, st.st_mtime))
                continue
            common = dict(mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime=st.st_mtime)
            if stat.S_ISDIR(mode):
                if not rel and name in RUNTIME_DIRS and not os.listdir(host):
                    continue
                items.append(Item(child, "dir", xattrs=_xattrs(host), **common))
                if is_opaque(host):
                    items.append(Item(f"{child}/{OPAQUE_WHITEOUT}", "opaque", 0, 0, 0, st.st_mtime))
                subdirs.append(child)
            elif stat.S_ISREG(mode):
                if child in RUNTIME_FILES and st.st_size == 0:
                    continue
                if st.st_nlink > 1:
                    first = inodes.setdefault((st.st_dev, st.st_ino), child)
                    if first != child:
                        items.append(Item(child, "hardlink", linkname=first, **common))
                        continue
                items.append(Item(child, "file", source=host, size=st.st_size, xattrs=_xattrs(host), **common))
            elif stat.S_ISLNK(mode):
                items.append(Item(child, "symlink", linkname=os.readlink(host), xattrs=_xattrs(host), **common))
            elif stat.S_ISFIFO(mode):
                items.append(Item(child, "fifo", **common))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                items.append(Item(child, "char" if stat.S_ISCHR(mode) else "block",
                                  rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)), **common))
            # sockets: a tar cannot hold one, and a layer needs none
        stack.extend(reversed(subdirs))
    return items


def _whiteout_name(rel: str, name: str) -> str:
    return f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else f"{WHITEOUT_PREFIX}{name}"


class _Hashing:
    """A write-only stream that hashes and counts what passes to ``target``."""

    def __init__(self, target):
        self.target, self.sha, self.count = target, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.count += len(data)
        self.target.write(data)
        return len(data)

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        self.target.flush()


def _sort_key(item: Item) -> tuple:
    # Parents before children; in a directory, a whiteout of a name before
    # anything else, an opaque mark right after its directory.
    return tuple(item.path.split("/"))


def write_layer(items: list[Item], out: Path, *, level: int = GZIP_LEVEL) -> Written:
    """Write ``items`` as a gzip'd layer tar at ``out``; its digest, size and diff_id."""
    ordered = _hardlinks_first(sorted(items, key=_sort_key))
    with open(out, "xb") as f:
        outer = _Hashing(f)
        with gzip.GzipFile(filename="", mode="wb", fileobj=outer, compresslevel=level, mtime=0) as gz:
            inner = _Hashing(gz)
            with tarfile.open(fileobj=inner, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for item in ordered:
                    _add(tar, item)
        f.flush()
        os.fsync(f.fileno())
    return Written(out, "sha256:" + outer.sha.hexdigest(), outer.count, "sha256:" + inner.sha.hexdigest())


def _hardlinks_first(ordered: list[Item]) -> list[Item]:
    """A hardlink must follow the file it links to: where the file sorts
    after one of its links, the first of the group becomes the file."""
    by_path = {i.path: i for i in ordered}
    pos = {i.path: n for n, i in enumerate(ordered)}
    groups: dict[str, list[Item]] = {}
    for i in ordered:
        target = by_path.get(i.linkname) if i.kind == "hardlink" else None
        if target is not None and target.kind == "file":
            groups.setdefault(target.path, []).append(i)
    for target_path, links in groups.items():
        target = by_path[target_path]
        first = min([target, *links], key=lambda i: pos[i.path])
        if first is target:
            continue
        first.kind, first.source, first.size, first.xattrs = "file", target.source, target.size, target.xattrs
        first.mode, first.uid, first.gid, first.mtime = target.mode, target.uid, target.gid, target.mtime
        for i in [target, *links]:
            if i is not first:
                i.kind, i.linkname, i.source, i.size = "hardlink", first.path, None, 0
    return ordered


_TYPES = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE,
          "block": tarfile.BLKTYPE, "whiteout": tarfile.REGTYPE, "opaque": tarfile.REGTYPE}


def _add(tar: tarfile.TarFile, item: Item) -> None:
    info = tarfile.TarInfo(item.path)
    info.type = _TYPES[item.kind]
    info.mode = item.mode
    info.uid, info.gid = item.uid, item.gid
    info.uname = info.gname = ""
    info.mtime = int(item.mtime)
    if item.kind in ("symlink", "hardlink"):
        info.linkname = item.linkname
    if item.kind in ("char", "block"):
        info.devmajor, info.devminor = item.rdev
    for key, value in item.xattrs.items():
        info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    if item.kind != "file":
        tar.addfile(info)
        return
    with open(item.source, "rb") as src:
        info.size = os.fstat(src.fileno()).st_size
        tar.addfile(info, src)
