"""Bringing in an image from elsewhere (``load``, ``pull``): the work behind
:meth:`.ImageStore.add_image`.

Each layer blob is read once: hashed and counted against its descriptor
(:class:`_CheckedBlob`), copied into a work directory, and unpacked there
(:func:`engine.images.extract.extract_layer`), its diff_id checked in the same pass.
Nothing is published -- layers and blobs renamed into place, tags written --
until every check has passed, and then under the store's exclusive lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError
from engine.images.extract import diff_id_of, extract_layer
from engine.images.limits import Used, check_declared_sizes, check_free_space, limits_from_env
from engine.images.reference import familiar_reference

from .disk import _fsync_dir, _os_errors
from .image import Image
from .manifest import _check_image
from .names import point, untagged_key

log = logging.getLogger(__name__)


def add_image(store, refs: list[str] | str, manifest_bytes: bytes, config_bytes: bytes,
              open_blob: Callable[[dict], BinaryIO] | Mapping[str, str | Path], *,
              progress: Callable[[int, int, dict, int], None] | None = None,
              warn: Callable[[str], None] | None = None) -> Image:
    """Verify, unpack, publish and tag; see :meth:`.ImageStore.add_image`."""
    if isinstance(open_blob, Mapping):
        files = open_blob

        def open_blob(desc: dict) -> BinaryIO:
            if desc["digest"] not in files:
                raise ImageError(f"no file was given for the blob {desc['digest'][:19]}...")
            return open(files[desc["digest"]], "rb")
    names = [familiar_reference(r) for r in ([refs] if isinstance(refs, str) else refs)]
    manifest, config, layers = _check_image(manifest_bytes, config_bytes)
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    diff_ids = config["rootfs"]["diff_ids"]
    limits = limits_from_env()
    check_declared_sizes(layers, limits, "the image")
    # Each new blob is kept, and unpacks to at least its own size.
    check_free_space(store.root, limits, "storing the image",
                     2 * sum(d["size"] for d in layers if not store.blob_path(d["digest"]).is_file()))
    used = Used()
    with store.work_dir("add-") as work:
        (work / "blobs").mkdir()
        (work / "layers").mkdir()
        new_blobs: dict[str, Path] = {}
        new_layers: dict[str, Path] = {}
        paired: set[tuple[str, str]] = set()    # (blob digest, diff_id) checked in this add
        lowers: list[Path] = []
        for i, (desc, diff_id) in enumerate(zip(layers, diff_ids)):
            what = f"layer {i + 1} of {len(layers)} ({desc['digest'][:19]})"
            stored_layer = store.layers / diff_id.removeprefix("sha256:")
            have_layer = diff_id in new_layers or stored_layer.is_dir()
            have_blob = desc["digest"] in new_blobs or store.blob_path(desc["digest"]).is_file()
            if progress:
                progress(i, len(layers), desc, 0)
            if not (have_layer and have_blob):
                blob_copy = None if have_blob else work / "blobs" / desc["digest"].removeprefix("sha256:")
                layer_dir = None if have_layer else work / "layers" / diff_id.removeprefix("sha256:")
                _receive_layer(open_blob, desc, diff_id, what, blob_copy, layer_dir, lowers, limits,
                               warn or log.warning,
                               progress and (lambda n, i=i, d=desc: progress(i, len(layers), d, n)),
                               used)
                if blob_copy:
                    new_blobs[desc["digest"]] = blob_copy
                if layer_dir:
                    new_layers[diff_id] = layer_dir
            elif desc["digest"] != diff_id and (desc["digest"], diff_id) not in paired:
                # Both are here, but maybe never together: a compressed blob
                # must still unpack to the diff_id this config gives it.
                stored = new_blobs.get(desc["digest"], store.blob_path(desc["digest"]))
                _receive_layer(lambda _d, path=stored: open(path, "rb"), desc, diff_id, what, None, None, lowers,
                               limits, warn or log.warning)
            paired.add((desc["digest"], diff_id))
            lowers.append(new_layers.get(diff_id, stored_layer))
        for data in (config_bytes, manifest_bytes):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if not store.blob_path(digest).is_file():
                path = work / "blobs" / digest.removeprefix("sha256:")
                path.write_bytes(data)
                new_blobs[digest] = path
        with store._lock(exclusive=True), _os_errors("cannot store the image"):
            for i, diff_id in enumerate(diff_ids):
                if diff_id not in new_layers and not (store.layers / diff_id.removeprefix("sha256:")).is_dir():
                    raise ImageError(f"layer {i + 1} of {len(diff_ids)} was removed from the store meanwhile "
                                     "(rmi or image prune); try again")
            for diff_id, path in new_layers.items():
                store._put_layer(path, diff_id)
            for digest, path in new_blobs.items():
                dest = store.blob_path(digest)
                if not dest.exists():
                    with open(path, "rb") as f:
                        os.fsync(f.fileno())
                    os.chmod(path, 0o600)
                    os.rename(path, dest)
            _fsync_dir(store.blobs)
            repos = store._read_repositories()
            point(repos, names, manifest_digest)
            store._write_repositories(repos)
            return store._load(names[0] if names else untagged_key(manifest_digest), manifest_digest)


def _receive_layer(open_blob, desc: dict, diff_id: str, what: str, blob_copy: Path | None,
                   layer_dir: Path | None, lowers: list[Path], limits, warn,
                   progress: Callable[[int], None] | None = None, used=None) -> None:
    """Read one layer blob once: check it against ``desc`` and ``diff_id``,
    copy it to ``blob_copy`` and unpack it into ``layer_dir`` (None: the
    store has that layer unpacked already, so only the diff_id is checked)."""
    try:
        source = open_blob(desc)
    except OSError as e:
        raise ImageError(f"{what}: cannot read the blob: {e.strerror or e}") from None
    with source, _os_errors(f"{what}: cannot store"):
        checked = _CheckedBlob(source, desc, what, blob_copy, progress)
        try:
            if layer_dir is None:
                content = diff_id_of(checked, limits=limits, what=what)
            else:
                result = extract_layer(checked, layer_dir, limits=limits, lowers=lowers, what=what, used=used)
                content = result.diff_id
                if result.skipped:
                    warn(f"{what}: {len(result.skipped)} device node(s) left out "
                         f"({', '.join(result.skipped[:3])}{' ...' if len(result.skipped) > 3 else ''}): "
                         "a container's /dev is made fresh, and its root is mounted nodev")
            if content != diff_id:
                checked.finish()            # a damaged blob says so first
                raise ImageError(f"{what}: its content is {content[:19]}..., but the image's "
                                 f"config says {diff_id[:19]}... (rootfs.diff_ids); refused")
            checked.finish()
        except ImageError:
            checked.finish_quietly()
            raise
        finally:
            checked.close()


class _BlobMismatch(ImageError):
    """A blob whose size or sha256 is not its descriptor's."""


class _CheckedBlob:
    """A blob read through: hashed and counted against its descriptor, copied if asked."""

    REPORT_EVERY = 8 << 20

    def __init__(self, source: BinaryIO, desc: dict, what: str, copy_to: Path | None,
                 progress: Callable[[int], None] | None = None):
        self.source, self.desc, self.what, self.progress = source, desc, what, progress
        self.reported = 0
        self.sha = hashlib.sha256()
        self.count = 0
        self.out = open(copy_to, "xb") if copy_to else None

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n if n is not None and n >= 0 else 1 << 20)
        if data:
            self.count += len(data)
            if self.count > self.desc["size"]:
                raise _BlobMismatch(f"{self.what} is larger than its descriptor says ({self.desc['size']} bytes); refused")
            self.sha.update(data)
            if self.out:
                self.out.write(data)
            if self.progress and self.count - self.reported >= self.REPORT_EVERY:
                self.reported = self.count
                self.progress(self.count)
        return data

    def finish(self) -> None:
        """Read to the end; raise unless size and sha256 are the descriptor's."""
        while self.read(1 << 20):
            pass
        if self.count != self.desc["size"]:
            raise _BlobMismatch(f"{self.what} is {self.count} bytes, but its descriptor says {self.desc['size']} "
                             "(truncated?); refused")
        digest = "sha256:" + self.sha.hexdigest()
        if digest != self.desc["digest"]:
            raise _BlobMismatch(f"{self.what} does not match its digest: it is {digest[:19]}..., "
                             f"the manifest says {self.desc['digest'][:19]}...; refused")

    def finish_quietly(self) -> None:
        """After another error: report a mismatch with the descriptor instead,
        when there is one -- a damaged blob is the root cause to name."""
        try:
            self.finish()
        except _BlobMismatch:
            raise
        except (ImageError, OSError):
            pass

    def close(self) -> None:
        if self.out:
            self.out.close()
