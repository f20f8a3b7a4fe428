"""A container's file system as a tar (``export``), and a tar as an image (``import``).

**export** writes what the container sees as ``/`` -- its image's layers with
its own changes on top -- as one tar, the way ``docker export`` does: no
image config, no layers, only files. Where it is read from:

- a running container: through ``/proc/PID/root``, once ``PID`` is known to
  be the container's still (its start time is the record's). What is mounted
  inside -- ``/proc``, ``/sys``, ``/dev``, volumes, and the ``/etc/hosts``,
  ``/etc/hostname`` and ``/etc/resolv.conf`` the engine binds in at each
  start -- is not the container's file system: a directory mounted on is
  written empty, a file mounted on as an empty file (as docker's export has
  them), so no host file bound into a container ends up in the archive;
- a container that is not running: its writable layer and the image's layers
  are stacked by a read-only overlayfs mount in a mount namespace of a child
  process of its own, gone with that process -- nothing is mounted where the
  host or the supervisor would see it.

Either way the tree is walked from directory file descriptors, one name at a
time (``openat`` with ``O_NOFOLLOW``; an entry that changes between its
``lstat`` and its ``open`` is read as it is then, or left out): a symlink in
the container -- ``/etc -> /`` made by the container's root -- is written as
the symlink it is and never followed, so nothing of the host is read. Entries
are sorted by name; hard links become links; owners are the container's
(shifted back for a ``--userns private`` container); ``security.capability``
is kept (``SCHILY.xattr``, as tar and docker write it).

**import** makes a one-layer image of a tar (plain, gzip, bzip2 or xz; a
file or standard input), as ``docker import`` does: the tar becomes the
layer's blob as it is (decompressed), checked and unpacked by the store
exactly as a layer of ``load`` or ``pull`` is -- an entry that climbs out
(``../``, an absolute path, a write through a symlink, a hard link to
outside) refuses the whole import and stores nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import ContainerError, ImageError, InvalidArgument
from engine.images.unpack import is_whiteout

MAX_DEPTH = 256
CAPABILITY = "security.capability"


# -- export --------------------------------------------------------------------------------

def export_container(record: dict, out: BinaryIO) -> None:
    """Write the file system of the container ``record`` (its ``inspect``
    record) to ``out`` as a tar. Raises :class:`ContainerError` (one line)."""
    from engine.container import process_start_time

    rootfs = record.get("rootfs") or {}
    userns = (record.get("process") or {}).get("userns") or None
    shift = (int(userns["base"]), int(userns["size"])) if isinstance(userns, dict) else None
    name = record.get("name") or record.get("id", "")[:12]
    pid, started = int(record.get("pid") or 0), int(record.get("pid_start") or 0)
    if record.get("status") in ("running", "paused", "starting") and pid > 0:
        try:
            root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            root = -1
        if root >= 0:
            try:
                if process_start_time(pid) == started:        # the fd is the container's root, not a reused pid's
                    skip = _mount_points(pid)
                    _write_tree(root, out, shift, skip)
                    return
            finally:
                os.close(root)
    layers = [str(p) for p in rootfs.get("layers") or []]
    upper = rootfs.get("upper")
    stack = ([upper] if upper and os.path.isdir(upper) else []) + list(reversed(layers))   # top first
    if not stack:
        raise ContainerError(f"container {name} has no file system to export")
    if len(stack) == 1:                      # one directory: nothing to stack
        root = os.open(stack[0], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _write_tree(root, out, shift, set())
        finally:
            os.close(root)
        return
    _export_stacked(stack, out, shift, name)


def _mount_points(pid: int) -> set[str]:
    """What is mounted on inside the container: paths from its root, without
    the leading '/', from its mountinfo."""
    out: set[str] = set()
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as f:
            lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    except OSError as e:
        raise ContainerError(f"cannot read the container's mounts: {e.strerror or e}") from None
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4]).strip("/")
        if point:
            out.add(point)
    return out


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (``\\040`` for a space ...)."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _export_stacked(stack: list[str], out: BinaryIO, shift, name: str) -> None:
    """Mount ``stack`` (top first) read-only in a child's own mount namespace
    and write the tree from there; the child's end takes the mount with it."""
    from engine import syscalls

    def escape(p: str) -> str:
        return p.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")

    options = "lowerdir=" + ":".join(escape(p) for p in stack)
    if len(options) >= 4000:
        raise ContainerError(f"container {name} has too many layers to stack for export (the mount options "
                             "would be longer than a page)")
    target = tempfile.mkdtemp(prefix="cl-export-")
    out.flush()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:                                              # the child: never returns
            code = 1
            try:
                os.close(read_end)
                sc = syscalls.Syscalls()
                sc.unshare(syscalls.CLONE_NEWNS)
                sc.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
                sc.mount("overlay", target, "overlay", syscalls.MS_RDONLY | syscalls.MS_NODEV | syscalls.MS_NOSUID,
                         options)
                root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                _write_tree(root, out, shift, set())
                out.flush()
                code = 0
            except BaseException as e:  # noqa: BLE001 - said to the parent, one line
                text = str(e) if isinstance(e, (ContainerError, ImageError)) else \
                    (f"{e.strerror or e}" if isinstance(e, OSError) else repr(e))
                try:
                    os.write(write_end, text.encode("utf-8", "replace")[:4000])
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(write_end)
        write_end = -1
        message = b""
        while chunk := os.read(read_end, 4096):
            message += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
        os.rmdir(target)
    if os.waitstatus_to_exitcode(status) != 0:
        text = message.decode("utf-8", "replace").strip() or "the exporting process failed"
        if "Broken pipe" in text:
            raise BrokenPipeError(errno.EPIPE, text)
        raise ContainerError(f"cannot export container {name}: {text}")


class _Exact:
    """A file read as exactly ``size`` bytes: cut if it grew meanwhile,
    padded with zeros if it shrank (a running container may be writing it)."""

    def __init__(self, fd: int, size: int):
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        data = os.read(self.fd, n)
        if not data:
            data = bytes(n)
        self.left -= len(data)
        return data


def _write_tree(root: int, out: BinaryIO, shift: tuple[int, int] | None, mounted: set[str]) -> None:
    """Walk the tree below the directory fd ``root`` into a tar on ``out``."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _Walker(tar, shift, mounted).directory(root, "", 0)


class _Walker:
    def __init__(self, tar: tarfile.TarFile, shift, mounted):
        self.tar, self.shift, self.mounted = tar, shift, mounted
        self.links: dict[tuple[int, int], str] = {}

    def owner(self, info: tarfile.TarInfo, st: os.stat_result) -> None:
        uid, gid = st.st_uid, st.st_gid
        if self.shift:
            base, size = self.shift
            uid = uid - base if base <= uid < base + size else 65534
            gid = gid - base if base <= gid < base + size else 65534
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        info.mode = stat.S_IMODE(st.st_mode)

    def directory(self, fd: int, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ContainerError(f"{prefix or '/'} is nested more than {MAX_DEPTH} directories deep")
        for name in sorted(os.listdir(fd)):
            path = prefix + name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue                              # removed meanwhile
            if path in self.mounted:
                self.placeholder(path, st)
                continue
            self.entry(fd, name, path, st, depth)

    def placeholder(self, path: str, st: os.stat_result) -> None:
        """What is mounted on ``path`` inside: an empty directory, or an empty file."""
        info = tarfile.TarInfo(path)
        self.owner(info, st)
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        else:
            info.type, info.size, info.mode = tarfile.REGTYPE, 0, 0o644
            info.uid = info.gid = 0
        self.tar.addfile(info)

    def entry(self, dirfd: int, name: str, path: str, st: os.stat_result, depth: int) -> None:
        mode = st.st_mode
        info = tarfile.TarInfo(path)
        self.owner(info, st)
        if stat.S_ISDIR(mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    return                            # gone, or swapped for a symlink: not followed
                raise
            try:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    self.owner(info, now)
                info.type = tarfile.DIRTYPE
                self.tar.addfile(info)
                self.directory(fd, path + "/", depth + 1)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            self.regular(dirfd, name, path, info, st)
        elif stat.S_ISLNK(mode):
            try:
                info.linkname = os.readlink(name, dir_fd=dirfd)
            except OSError:
                return
            info.type = tarfile.SYMTYPE
            self.tar.addfile(info)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            if is_whiteout(st):
                return                                # an overlay whiteout: nothing there
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self.tar.addfile(info)
        # sockets: nothing a file system keeps

    def regular(self, dirfd: int, name: str, path: str, info: tarfile.TarInfo, st: os.stat_result) -> None:
        if st.st_nlink > 1:
            first = self.links.get((st.st_dev, st.st_ino))
            if first is not None:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                self.tar.addfile(info)
                return
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                         dir_fd=dirfd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO, errno.EACCES):
                return                                # gone, or no longer a file
            raise
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                return
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                self.owner(info, now)
            try:
                cap = os.getxattr(fd, CAPABILITY)
                info.pax_headers = {f"SCHILY.xattr.{CAPABILITY}": cap.decode("utf-8", "surrogateescape")}
            except OSError:
                pass
            info.type, info.size = tarfile.REGTYPE, now.st_size
            if now.st_nlink > 1:
                self.links[(now.st_dev, now.st_ino)] = path
            self.tar.addfile(info, _Exact(fd, now.st_size))
        finally:
            os.close(fd)


# -- import --------------------------------------------------------------------------------

def import_tar(store, source: BinaryIO | str | Path, ref: str | None = None, *, message: str = "", warn=None):
    """Make a one-layer image of the tar ``source`` (a path, or a stream such
    as stdin; gzip, bzip2 or xz compressed too) and tag it ``ref`` -- kept
    untagged (``<none>``, used by its id) when none is given. Returns the stored image;
    ``warn(message)`` is told what was left out (device nodes)."""
    from engine.images.archive import _archive_file
    from engine.images.reference import familiar_reference, parse_reference
    from engine.images.registry import host_platform
    from engine.images.store import CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE

    name = None
    if ref is not None:
        r = parse_reference(ref)
        if r.digest:
            raise InvalidArgument(f"an imported image needs a tag, not a digest: {r.name}:TAG")
        name = familiar_reference(str(r))
    with store.work_dir("import-") as work:
        path = _archive_file(source, work)
        with open(path, "rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
            size = os.fstat(f.fileno()).st_size
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        where = str(source) if isinstance(source, (str, Path)) else "standard input"
        config = {
            "architecture": host_platform()[0], "os": "linux", "created": created, "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest]},
            "history": [{"created": created, "created_by": "container-lab import",
                         "comment": message or f"Imported from {where}"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        manifest = {
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": digest, "size": size}],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        return store.add_image([name] if name else [], manifest_bytes, config_bytes, {digest: path}, warn=warn)
