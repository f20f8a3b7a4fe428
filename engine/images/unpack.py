"""Writing one layer tar's entries to disk, safely: the :class:`_Unpacker`
behind :func:`.extract.extract_layer`.

Every rule listed in :mod:`.extract` that is about a single entry lives here:
names checked (no ``..``, no absolute path, bounded), each parent directory
opened with ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`` and the entry
made relative to it, no write through a symlink of this layer or of a lower
one, hardlinks only to what the layer holds, device nodes left out, overlay
extended attributes dropped, whiteouts turned into what overlayfs reads.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from pathlib import Path

from engine.errors import ImageError
from engine.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

from .. import userns
from .limits import Limits

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
AUFS_META_PREFIX = ".wh..wh."
_CHUNK = 1 << 20                     # bytes copied at a time from a tar member to its file
_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    """The entry's extended attributes (PAX ``SCHILY.xattr.*``), as raw bytes."""
    out = {}
    for key, value in info.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            out[key.removeprefix("SCHILY.xattr.")] = raw
    return out


class _Unpacker:
    """The state of one extraction: the root fd, open parent dirs, deferred dir modes."""

    def __init__(self, dest: Path, limits: Limits, lowers: list[Path], what: str, entries_before: int = 0):
        self.dest, self.limits, self.lowers, self.what = dest, limits, lowers, what
        self.entries_before = entries_before
        # As the host's root every owner is kept; in the rootless engine's
        # user namespace, the owners its map holds (the rest stay its root's).
        self.as_root = os.geteuid() == 0
        self.host_root = self.as_root and userns.in_initial()
        self.root = os.open(dest, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.fds: dict[str, int] = {}               # parent path -> O_PATH fd
        self.dirs: dict[str, tarfile.TarInfo] = {}  # explicit dirs: modes set at the end
        self.lower_checked: set[str] = set()
        self.count = 0
        self.current: str | None = None
        self.skipped: list[str] = []
        self.stripped = 0
        self.opaque_xattr = "trusted.overlay.opaque" if self.host_root else "user.overlay.opaque"

    def owns(self, info: tarfile.TarInfo) -> bool:
        """Whether the entry's owners can be given here (see __init__)."""
        return self.host_root or (self.as_root and userns.can_own(info.uid, info.gid))

    # -- names ----------------------------------------------------------------

    def fail(self, name: str, problem: str) -> ImageError:
        return ImageError(f"{self.what}: entry {name!r} {problem}; refused")

    def parts(self, name: str, *, entry: str | None = None, kind: str = "") -> list[str]:
        """``name`` split into components ('.' dropped); absolute names and
        '..' refused, bounds checked. ``entry``/``kind`` say whose name it
        is in errors (a hardlink's target: the entry's name, "its target ")."""
        who = name if entry is None else entry
        if "\0" in name:
            raise self.fail(who, f"{kind}holds a NUL byte")
        if len(name.encode("utf-8", "surrogateescape")) > self.limits.max_path:
            raise self.fail(who[:64] + "...", f"{kind}is longer than {self.limits.max_path} bytes")
        if name.startswith("/"):
            raise self.fail(who, f"{kind}is an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.fail(who, f"{kind}climbs out of the layer with '..'")
        if len(parts) > self.limits.max_depth:
            raise self.fail(who[:64] + "...", f"{kind}is nested deeper than {self.limits.max_depth} directories")
        for p in parts:
            if len(p.encode("utf-8", "surrogateescape")) > self.limits.max_name:
                raise self.fail(who[:64] + "...", f"{kind}has a component longer than {self.limits.max_name} bytes")
        return parts

    # -- directories ----------------------------------------------------------

    def parent(self, parts: list[str], name: str) -> int:
        """An O_PATH fd of the directory ``parts`` inside the layer, made if
        missing; never through a symlink (here or in a lower layer)."""
        key = "/".join(parts)
        fd = self.fds.get(key)
        if fd is not None:
            return fd
        try:
            fd = openat2(self.root, key or ".", os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise self.path_error(e, parts, name) from None
            fd = self.make_parents(parts, name)
        if len(self.fds) > 256:
            self.drop_fds()
        self.fds[key] = fd
        return fd

    def make_parents(self, parts: list[str], name: str) -> int:
        cur = os.dup(self.root)
        try:
            for i, comp in enumerate(parts):
                try:
                    nxt = openat2(cur, comp, os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        raise self.path_error(e, parts[:i + 1], name) from None
                    self.check_lowers(parts[:i + 1], name)
                    os.mkdir(comp, 0o755, dir_fd=cur)
                    nxt = openat2(cur, comp, os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
                os.close(cur)
                cur = nxt
            return cur
        except BaseException:
            os.close(cur)
            raise

    def path_error(self, e: OSError, parts: list[str], name: str) -> ImageError:
        # Find the component that is in the way, to name it.
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            try:
                st = os.lstat(self.dest / rel)
            except OSError:
                break
            if stat.S_ISLNK(st.st_mode):
                return self.fail(name, f"would be written through the symlink {rel!r}")
            if not stat.S_ISDIR(st.st_mode):
                return self.fail(name, f"needs {rel!r} to be a directory, and it is not")
        if e.errno == errno.ELOOP:
            return self.fail(name, "would be written through a symlink")
        return self.fail(name, f"cannot be placed: {e.strerror}")

    def check_lowers(self, parts: list[str], name: str) -> None:
        """Refuse to make the directory ``parts`` implicitly where the layers
        below show a symlink: the entry was meant to be written through it."""
        rel = "/".join(parts)
        if not self.lowers or rel in self.lower_checked:
            return
        active = list(reversed(self.lowers))       # top first
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            below, first = [], None
            for layer in active:
                try:
                    st = os.lstat(layer / prefix)
                except OSError:
                    continue
                if first is None:
                    first = st
                    if stat.S_ISLNK(st.st_mode):
                        raise self.fail(name, f"would be written through the symlink {prefix!r} "
                                              "of a lower layer")
                    if not stat.S_ISDIR(st.st_mode):
                        break                   # a whiteout or a file: nothing below shows
                if not stat.S_ISDIR(st.st_mode):
                    break
                below.append(layer)
                if is_opaque(layer / prefix):
                    break
            if not below:
                break
            active = below
        self.lower_checked.add(rel)

    def drop_fds(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    # -- entries --------------------------------------------------------------

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self.count += 1
        self.current = info.name
        if self.count > self.limits.max_entries:
            raise ImageError(f"{self.what} has more than {self.limits.max_entries} entries; refused")
        if self.entries_before + self.count > self.limits.image_entries:
            raise ImageError(f"{self.what}: the image has more than {self.limits.image_entries} entries in all; "
                             "refused (CONTAINER_LAB_MAX_IMAGE_ENTRIES)")
        parts = self.parts(info.name)
        if not parts:                                  # "./": the layer's root itself
            if not info.isdir():
                raise self.fail(info.name, "is the layer's root but not a directory")
            self.dirs[""] = info
            return
        base = parts[-1]
        if parts[0].startswith(AUFS_META_PREFIX) or (base.startswith(AUFS_META_PREFIX) and base != OPAQUE_WHITEOUT):
            return      # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs) in old layers: not files, left out as Docker does
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parts, info.name)
            return
        if info.ischr() or info.isblk():
            self.skipped.append("/".join(parts))
            return
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk() or info.isfifo()):
            raise self.fail(info.name, f"has a type tar calls {info.type!r}, which a layer may not hold")
        if info.issym() and (len(info.linkname) > self.limits.max_path or "\0" in info.linkname):
            raise self.fail(info.name, "is a symlink with an impossible target")
        pfd = self.parent(parts[:-1], info.name)
        try:
            existing = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode) and info.isdir():
                self.dirs["/".join(parts)] = info
                self.apply_xattrs(info, base, pfd, is_dir=True)
                return
            self.remove(base, pfd, existing)
            pfd = self.parent(parts[:-1], info.name)
        if info.isdir():
            os.mkdir(base, 0o700, dir_fd=pfd)
            self.dirs["/".join(parts)] = info
            self.apply_xattrs(info, base, pfd, is_dir=True)
        elif info.isreg():
            self.write_file(tar, info, base, pfd)
        elif info.issym():
            os.symlink(info.linkname, base, dir_fd=pfd)
            self.owner_and_time(info, base, pfd)
        elif info.islnk():
            self.hardlink(info, base, pfd)
        else:  # fifo
            os.mkfifo(base, 0o600, dir_fd=pfd)
            self.owner_and_time(info, base, pfd, mode=True)

    def remove(self, base: str, pfd: int, st: os.stat_result) -> None:
        """Make way for a new entry: later entries replace earlier ones, as
        tar does. Closes every cached fd (one may be inside what goes)."""
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)
        self.drop_fds()

    def write_file(self, tar: tarfile.TarFile, info: tarfile.TarInfo, base: str, pfd: int) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=pfd)
        try:
            src = tar.extractfile(info)
            with open(fd, "wb", closefd=False) as out:
                shutil.copyfileobj(src, out, _CHUNK)
            if self.owns(info):
                os.fchown(fd, info.uid, info.gid)
            os.fchmod(fd, stat.S_IMODE(info.mode))    # after chown, which clears setuid bits
            self.apply_xattrs_fd(info, fd)
            os.utime(fd, (info.mtime, info.mtime))
        finally:
            os.close(fd)

    def owner_and_time(self, info: tarfile.TarInfo, base: str, pfd: int, *, mode: bool = False) -> None:
        if self.owns(info):
            os.chown(base, info.uid, info.gid, dir_fd=pfd, follow_symlinks=False)
        if mode:
            os.chmod(base, stat.S_IMODE(info.mode), dir_fd=pfd)
        os.utime(base, (info.mtime, info.mtime), dir_fd=pfd, follow_symlinks=False)

    def hardlink(self, info: tarfile.TarInfo, base: str, pfd: int) -> None:
        target = self.parts(info.linkname, entry=info.name, kind="is a hardlink whose target ")
        if not target:
            raise self.fail(info.name, "is a hardlink to the layer's root")
        try:
            tfd = openat2(self.root, "/".join(target[:-1]) or ".", os.O_PATH | os.O_DIRECTORY, resolve=_IN_ROOT)
        except OSError:
            tfd = None
        try:
            st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False) if tfd is not None else None
        except OSError:
            st = None
        try:
            if st is None:
                raise self.fail(info.name, f"is a hardlink to {info.linkname!r}, which is not in this layer")
            if stat.S_ISDIR(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise self.fail(info.name, f"is a hardlink to {info.linkname!r}, which is not a file")
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            if tfd is not None:
                os.close(tfd)

    def whiteout(self, parts: list[str], name: str) -> None:
        base = parts[-1]
        pfd = self.parent(parts[:-1], name)
        if base == OPAQUE_WHITEOUT:
            fd = openat2(pfd, ".", os.O_RDONLY | os.O_DIRECTORY, resolve=_IN_ROOT)
            try:
                os.setxattr(fd, self.opaque_xattr, b"y")
            finally:
                os.close(fd)
            return
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise self.fail(name, "is a malformed whiteout")
        try:
            os.stat(hidden, dir_fd=pfd, follow_symlinks=False)
            return          # this layer holds NAME itself: a whiteout hides lower layers only
        except FileNotFoundError:
            pass
        try:
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        except PermissionError:
            raise ImageError(f"{self.what}: cannot make the whiteout for {name!r} "
                             "(this kernel refuses 0/0 character devices to non-root users)") from None

    def apply_xattrs(self, info: tarfile.TarInfo, base: str, pfd: int, *, is_dir: bool) -> None:
        if not any(k.startswith("SCHILY.xattr.") for k in info.pax_headers):
            return
        fd = openat2(pfd, base, os.O_RDONLY | os.O_DIRECTORY, resolve=_IN_ROOT)
        try:
            self.apply_xattrs_fd(info, fd)
        finally:
            os.close(fd)

    def apply_xattrs_fd(self, info: tarfile.TarInfo, fd: int) -> None:
        for key, value in _xattrs(info).items():
            if key.startswith(("trusted.overlay.", "user.overlay.")):
                self.stripped += 1
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError:
                pass    # unsupported here or not ours to set (security.selinux ...): dropped, as Docker does

    def finish(self) -> None:
        """Directory owners, modes and times, deepest first (filling a
        directory changes its mtime; a read-only one could not be filled)."""
        self.current = None
        self.drop_fds()
        for rel in sorted(self.dirs, key=lambda r: r.count("/") + (1 if r else 0), reverse=True):
            info = self.dirs[rel]
            try:
                fd = openat2(self.root, rel or ".", os.O_RDONLY | os.O_DIRECTORY, resolve=_IN_ROOT)
            except OSError:
                continue    # replaced by a later entry
            try:
                if self.owns(info):
                    os.fchown(fd, info.uid, info.gid)
                os.fchmod(fd, stat.S_IMODE(info.mode))
                os.utime(fd, (info.mtime, info.mtime))
            finally:
                os.close(fd)
        if "" not in self.dirs:
            os.chmod(self.dest, 0o755)      # the container's "/"; the store's 0700 dirs guard it

    def close(self) -> None:
        self.drop_fds()
        os.close(self.root)


def is_whiteout(st: os.stat_result) -> bool:
    """Whether a file is an overlay whiteout (a character device 0/0), as :class:`Unpacker` writes them."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_xattr_whiteout(path: Path | str, st: os.stat_result) -> bool:
    """Whether a file is overlayfs's other whiteout: an empty file marked
    ``overlay.whiteout`` (made where 0/0 devices cannot be, in a nested overlay)."""
    if not stat.S_ISREG(st.st_mode) or st.st_size:
        return False
    for name in ("trusted.overlay.whiteout", "user.overlay.whiteout"):
        try:
            os.getxattr(path, name, follow_symlinks=False)
            return True
        except OSError:
            pass
    return False


def is_opaque(path: Path | str) -> bool:
    """Whether a directory is marked opaque for overlayfs (as root, or for ``userxattr`` mounts)."""
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False
