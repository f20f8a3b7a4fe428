"""Unpack a layer tar from elsewhere -- hostile input -- into an overlayfs lowerdir.

A layer tar is a list of entries; each names a path and says what to put
there. A malicious one tries to put it somewhere else: ``../../etc/cron.d/x``,
``/etc/passwd``, a symlink ``x -> /etc`` and then a file ``x/passwd``, a
hardlink to ``/etc/shadow``. So, as containerd (``fs.RootPath``) and umoci
(``SecureJoin``) do, nothing here trusts a path:

- entries are unpacked one at a time, never with ``tarfile.extractall``;
- an entry's parent directory is opened with ``openat2(RESOLVE_IN_ROOT |
  RESOLVE_NO_SYMLINKS)`` from the layer's own root, and the entry is made
  with ``*at`` calls relative to it: a path cannot climb out, and a write
  through a symlink is refused -- one made earlier in this layer, or one in
  an earlier layer (``lowers``) whose directory this layer would otherwise
  silently turn into a real one. No layer tool writes through a symlink: a
  tar is made by walking a file system, which never follows them;
- ``..`` anywhere in a name, and an absolute name, are refused (Docker and
  GNU tar would read ``/etc/passwd`` as ``etc/passwd``; no layer tool writes
  one, so here it is taken for what it most likely is: an attack);
- a hardlink must point at something this layer already holds;
- device nodes are not made. Docker makes them (as root); here the overlay
  root is mounted nodev and /dev is a fresh tmpfs, so a device in an image
  could never be used, and a store of images needs none. They are listed in
  :attr:`Extracted.skipped` so the caller can say so;
- ``trusted.overlay.*`` and ``user.overlay.*`` extended attributes are
  dropped: they are overlayfs's own bookkeeping (opaque marks, redirects,
  metacopy), which a layer must not forge;
- names, depth, entry count and the uncompressed size are bounded -- per
  layer, and for the whole image across its layers (``used``) -- and gzip
  is read as a stream through that bound, so a small gzip bomb fails fast.

Whiteouts (the OCI image spec's "Representing Changes") become what
overlayfs reads in a lowerdir: ``.wh.NAME`` a 0/0 character device named
NAME, ``.wh..wh..opq`` the mark ``trusted.overlay.opaque=y`` on its
directory (``user.overlay.opaque`` when not root, for ``userxattr`` mounts).
Both hide only what lower layers hold: an entry of this same layer stays.

The diff_id -- the sha256 of the uncompressed tar, the name under which the
image's config lists the layer -- is computed in the same pass.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError
from engine.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
AUFS_META_PREFIX = ".wh..wh."
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ": "xz"}
_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS


@dataclass(frozen=True)
class Limits:
    """Bounds on one layer, and on a whole image (all its layers together).
    The image bounds fit the images a course uses with room to spare
    (python:3.12 unpacks to ~1 GB in ~30,000 entries, ubuntu:24.04 to 78 MB
    in ~3,500) and stop a bomb long before a classroom machine's disk is
    full; a bigger image (a machine-learning one) needs them raised through
    the environment (see :func:`limits_from_env`)."""

    max_bytes: int = 16 << 30        # uncompressed tar size of one layer
    max_entries: int = 1_000_000     # entries of one layer
    max_depth: int = 128             # path components
    max_name: int = 255              # bytes in one component (NAME_MAX)
    max_path: int = 4095             # bytes in a whole name (PATH_MAX - 1)
    image_bytes: int = 2 << 30       # uncompressed tar size of all of an image's layers
    image_entries: int = 500_000     # entries of all of an image's layers
    min_free: int = 1 << 30          # bytes left free on the store's file system while unpacking


MIN_FREE_INODES = 10_000             # inodes left free likewise (where the file system counts them)


# Environment variable -> Limits field.
LIMIT_VARIABLES = {"CONTAINER_LAB_MAX_LAYER_BYTES": "max_bytes", "CONTAINER_LAB_MAX_IMAGE_BYTES": "image_bytes",
                   "CONTAINER_LAB_MAX_IMAGE_ENTRIES": "image_entries", "CONTAINER_LAB_MIN_FREE_BYTES": "min_free"}


def limits_from_env() -> Limits:
    """The default limits, each of :data:`LIMIT_VARIABLES` that is set
    (a positive whole number) in place of its default."""
    given = {}
    for var, name in LIMIT_VARIABLES.items():
        raw = os.environ.get(var, "").strip()
        if not raw:
            continue
        if not raw.isdigit() or int(raw) <= 0:
            raise ImageError(f"{var} must be a positive whole number, not {raw[:40]!r}")
        given[name] = int(raw)
    return Limits(**given)


def check_free_space(path: str | Path, limits: Limits, what: str, needed: int = 0) -> None:
    """Refuse unless the file system of ``path`` keeps ``limits.min_free``
    bytes (and :data:`MIN_FREE_INODES` inodes) free after ``needed`` more bytes."""
    try:
        st = os.statvfs(path)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free - needed < limits.min_free:
        raise ImageError(f"{what}: the disk of {path} has {free >> 20} MiB free"
                         + (f", {needed >> 20} MiB more are needed" if needed else "")
                         + f", and {limits.min_free >> 20} MiB must stay free; refused (CONTAINER_LAB_MIN_FREE_BYTES)")
    if st.f_files and st.f_favail < MIN_FREE_INODES:
        raise ImageError(f"{what}: the disk of {path} has only {st.f_favail} inodes free; refused")


def check_declared_sizes(layers: list[dict], limits: Limits, what: str) -> None:
    """Refuse, before a byte is read, layers whose descriptors declare more in
    all than an image may unpack to: a layer blob is at most its tar plus
    gzip's overhead (far under the 1/64 of slack given here), so such layers
    could only be refused later, after downloading and unpacking the bound."""
    bound = limits.image_bytes + (limits.image_bytes >> 6) + (1 << 20)
    total = 0
    for desc in layers:
        total += int(desc.get("size", 0))
        if total > bound:
            raise ImageError(f"{what}'s layers are {sum(int(d.get('size', 0)) for d in layers)} bytes, "
                             f"more than the {limits.image_bytes} bytes an image may unpack to; refused "
                             "(CONTAINER_LAB_MAX_IMAGE_BYTES)")


@dataclass
class Used:
    """What the layers of one image unpacked so far took (for the image-wide bounds)."""

    bytes: int = 0
    entries: int = 0


@dataclass
class Extracted:
    """What :func:`extract_layer` did."""

    diff_id: str                     # "sha256:<hex of the uncompressed tar>"
    size: int                        # bytes of the uncompressed tar
    entries: int
    compression: str                 # "gzip" or "none"
    skipped: list[str] = field(default_factory=list)   # device nodes not made
    stripped: int = 0                # overlay xattrs dropped


def detect_compression(head: bytes) -> str:
    """"gzip" or "none" from a blob's first bytes; an ImageError for zstd,
    bzip2 or xz (this Python cannot read zstd; the others are not layer formats)."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        raise ImageError("is compressed with zstd, which container-lab cannot read "
                         "(Python 3.11 has no zstd); re-export the image with gzip or uncompressed layers")
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise ImageError(f"is compressed with {name}, which is not an image layer format (gzip or none)")
    return "none"


class _Prefixed:
    """A stream with some of its first bytes already read (to sniff them)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.rest.read(n)


class _Measured:
    """The uncompressed tar as tarfile reads it: hashed, counted, bounded,
    and the last 64 KiB kept (to check the end-of-archive marker)."""

    WINDOW = 1 << 16
    SPACE_EVERY = 32 << 20      # bytes read between looks at the disk's free space

    def __init__(self, raw, limits: Limits, what: str, used: Used | None = None, dest: Path | None = None):
        self.raw, self.limit, self.what = raw, limits.max_bytes, what
        self.limits, self.dest, self.next_look = limits, dest, 0
        self.image_limit, self.before = limits.image_bytes, used.bytes if used else 0
        self.sha = hashlib.sha256()
        self.pos = 0
        self.window = bytearray()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(_CHUNK if n is None or n < 0 else n)
        if data:
            self.pos += len(data)
            if self.pos > self.limit:
                raise ImageError(f"{self.what} unpacks to more than {self.limit} bytes "
                                 "(a decompression bomb?); refused (CONTAINER_LAB_MAX_LAYER_BYTES)")
            if self.before + self.pos > self.image_limit:
                raise ImageError(f"{self.what}: the image unpacks to more than {self.image_limit} bytes in all "
                                 "(a decompression bomb?); refused (CONTAINER_LAB_MAX_IMAGE_BYTES)")
            if self.dest is not None and self.pos >= self.next_look:
                self.next_look = self.pos + self.SPACE_EVERY
                check_free_space(self.dest, self.limits, self.what)
            self.sha.update(data)
            self.window += data
            if len(self.window) > self.WINDOW:
                del self.window[:len(self.window) - self.WINDOW]
        return data

    def block_at(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset`` (reading on to them), or None if the stream ends first."""
        while self.pos < offset + tarfile.BLOCKSIZE:
            if not self.read(_CHUNK):
                return None
        start = self.pos - len(self.window)
        if offset < start:
            return None
        return bytes(self.window[offset - start:offset - start + tarfile.BLOCKSIZE])

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def extract_layer(stream: BinaryIO, dest: str | Path, *, limits: Limits | None = None,
                  lowers: Sequence[str | Path] = (), what: str = "layer", used: Used | None = None) -> Extracted:
    """Unpack the layer tar read from ``stream`` (gzip or plain) into the new
    directory ``dest``; return its diff_id and what was left out.

    ``lowers`` are the unpacked layers below this one, bottom first (to refuse
    a write through one of their symlinks). ``what`` names the layer in
    errors. ``used``: what the image's other layers took, counted against
    the image-wide bounds and increased by this layer's. Raises
    :class:`ImageError` (one line) for anything refused, and leaves ``dest``
    for the caller to remove."""
    limits = limits or limits_from_env()
    measured, compression = _open_tar(stream, limits, what, used, Path(dest).parent)
    os.mkdir(dest, 0o700)
    unpacker = _Unpacker(Path(dest), limits, [Path(p) for p in lowers], what, used.entries if used else 0)
    try:
        with tarfile.open(fileobj=measured, mode="r|", errorlevel=2) as tar:
            while (info := tar.next()) is not None:
                unpacker.add(tar, info)
                tar.members.clear()     # tarfile keeps every header read: memory would grow per entry
            block = measured.block_at(tar.offset)
        if block is None or block.strip(b"\0"):
            raise ImageError(f"{what} is truncated or damaged: no end-of-archive marker after "
                             f"{unpacker.count} entries")
        measured.drain()
        unpacker.finish()
    except ImageError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ImageError(f"{what} is not a valid gzip stream ({e or 'it ends too early'})") from None
    except tarfile.TarError as e:
        raise ImageError(f"{what} is not a valid tar archive ({e})") from None
    except OSError as e:
        name = f" entry {unpacker.current!r}:" if unpacker.current is not None else ""
        raise ImageError(f"{what}:{name} cannot unpack: {e.strerror or e}") from None
    finally:
        unpacker.close()
    if used is not None:
        used.bytes += measured.pos
        used.entries += unpacker.count
    return Extracted("sha256:" + measured.sha.hexdigest(), measured.pos, unpacker.count, compression,
                     unpacker.skipped, unpacker.stripped)


def diff_id_of(stream: BinaryIO, *, limits: Limits | None = None, what: str = "layer") -> str:
    """The diff_id of the layer blob read from ``stream`` (gzip or plain),
    bounded like :func:`extract_layer`, unpacking nothing."""
    measured, _compression = _open_tar(stream, limits or limits_from_env(), what)
    try:
        measured.drain()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ImageError(f"{what} is not a valid gzip stream ({e or 'it ends too early'})") from None
    return "sha256:" + measured.sha.hexdigest()


def _open_tar(stream: BinaryIO, limits: Limits, what: str, used: Used | None = None,
              dest: Path | None = None) -> tuple[_Measured, str]:
    """The uncompressed tar inside a layer blob (gzip or plain, from its first
    bytes), hashed and bounded as it is read; and the compression found."""
    head = stream.read(8)
    try:
        compression = detect_compression(head)
    except ImageError as e:
        raise ImageError(f"{what} {e}") from None
    raw = _Prefixed(head, stream)
    source = gzip.GzipFile(fileobj=raw, mode="rb") if compression == "gzip" else raw
    return _Measured(source, limits, what, used, dest), compression


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
        self.as_root = os.geteuid() == 0
        self.root = os.open(dest, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.fds: dict[str, int] = {}               # parent path -> O_PATH fd
        self.dirs: dict[str, tarfile.TarInfo] = {}  # explicit dirs: modes set at the end
        self.lower_checked: set[str] = set()
        self.count = 0
        self.current: str | None = None
        self.skipped: list[str] = []
        self.stripped = 0
        self.opaque_xattr = "trusted.overlay.opaque" if self.as_root else "user.overlay.opaque"

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
                if _is_opaque(layer / prefix):
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
            if self.as_root:
                os.fchown(fd, info.uid, info.gid)
            os.fchmod(fd, stat.S_IMODE(info.mode))    # after chown, which clears setuid bits
            self.apply_xattrs_fd(info, fd)
            os.utime(fd, (info.mtime, info.mtime))
        finally:
            os.close(fd)

    def owner_and_time(self, info: tarfile.TarInfo, base: str, pfd: int, *, mode: bool = False) -> None:
        if self.as_root:
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
                if self.as_root:
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


def _is_opaque(path: Path) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False
