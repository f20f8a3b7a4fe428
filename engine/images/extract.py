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

Where the parts are: the bounds and the free-space checks are
:mod:`.limits`; the entry-by-entry writer is :mod:`.unpack`; this module
reads the blob (gzip or plain), hashes and bounds the stream, and drives the
writer over the tar.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError

from .limits import Limits, Used, check_free_space, limits_from_env
from .unpack import _Unpacker

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


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

