"""The :class:`ImageStore` itself: its directories and lock, the tag index
(``repositories.json``: resolve, list, find, tag), reading an image back
(manifest and config checked against their digests), and the blobs, layers
and sizes it writes -- the built-in ``lab`` image among them.

Bringing an image in from elsewhere is :mod:`.adding`; deleting what nothing
needs any more is :mod:`.gc`. The layout on disk and the locking rules are
in the package's docstring (:mod:`engine.images.store`).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images import lab, layer
from engine.images.reference import DIGEST_RE, Reference, parse_reference
from engine.paths import ensure_private_dir

from .disk import _fsync_dir, _fsync_tree, _in_use, _os_errors, _tree_size
from .gc import drop, prune, sweep
from .image import CONFIG_DEFAULTS, Image
from .manifest import CONFIG_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE
from .names import dangling, is_untagged, point, untagged_key, well_formed

LAB_REF = "lab:latest"

log = logging.getLogger(__name__)

# platform.machine() -> GOARCH, the spelling OCI configs use.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


class ImageStore:
    """Images under ``root`` (the engine passes ``paths.data_dir() / "images"``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.sizes = self.root / "sizes"
        self.tmp = self.root / "tmp"
        self.repositories = self.root / "repositories.json"
        with _os_errors(f"cannot prepare the image store {self.root}"):
            for d in (self.root, self.root / "blobs", self.blobs, self.layers, self.sizes, self.tmp):
                ensure_private_dir(d)

    # -- public API -----------------------------------------------------------

    def resolve(self, ref: str) -> Image:
        """The image ``ref`` names; ``lab`` is built on first use. Docker Hub's
        full names are its short ones (``docker.io/library/ubuntu`` is ``ubuntu``)."""
        from engine.images.reference import familiar_reference

        r = parse_reference(familiar_reference(ref))
        if str(r) == LAB_REF:
            return self.ensure_lab()
        with self._lock(exclusive=False):
            for tag, digest in self._read_repositories().items():
                if _matches(r, tag, digest):
                    return self._load(str(r), digest)
        raise ImageNotFound(f"Unable to find image '{r}' locally")

    def list(self) -> list[Image]:
        """Every tagged image, sorted by ref, then each untagged one (docker's
        ``<none>:<none>``: its ref is ``<none>@<manifest digest>``). A damaged
        one is left out here; resolving it gives the error that says what is wrong."""
        images = []
        with self._lock(exclusive=False):
            repos = self._read_repositories()
            entries = sorted((t, d) for t, d in repos.items() if not is_untagged(t))
            for tag, digest in entries + [(untagged_key(d), d) for d in dangling(repos)]:
                try:
                    images.append(self._load(tag, digest))
                except ImageError:
                    continue
        return images

    def ensure_lab(self) -> Image:
        """The ``lab`` image, assembled from the host's binaries if the store lacks it."""
        with self._lock(exclusive=False):
            if image := self._load_lab():
                return image
        with self._lock(exclusive=True):
            # Another process may have built it while we waited for the lock.
            return self._load_lab() or self._build_lab()

    def remove(self, ref: str, *, keep: frozenset[str] | set[str] = frozenset()) -> int:
        """:meth:`delete` with no container to ask about; the bytes freed."""
        return self.delete(ref, keep=keep)["freed"]

    def delete(self, name: str, *, keep: frozenset[str] | set[str] = frozenset(),
               used: Mapping[str, str] | None = None, force: bool = False) -> dict:
        """``rmi name``: drop the tag ``name`` (for ``name@digest``: every tag
        of name on that digest; for an image id or a prefix of one: every
        name of that image, which takes ``force`` when it has several); an
        image left with no name goes too -- unless a container uses it
        (``used``: image id -> container name): that takes ``force`` and
        keeps the image, untagged. Then delete the blobs and layers nothing
        still needs -- no entry, and no container: ``keep`` names the layer
        directories containers use. Returns ``untagged`` (names), ``deleted``
        (image ids) and ``freed`` (bytes).

        Only the supervisor calls this (``rmi``, ``image rm``): it knows
        every container, the half-built ones too, so ``keep`` and ``used``
        cannot miss a container that is being started meanwhile."""
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            result = drop(self, repos, name, used=used or {}, force=force)
            self._write_repositories(repos)
            return {**result, "freed": sweep(self, repos, keep)}

    def prune(self, *, every: bool = False, keep: frozenset[str] | set[str] = frozenset(),
              used: Mapping[str, str] | None = None) -> dict:
        """``image prune``: remove every dangling image (with ``every``: every
        image) no container uses (``used``, ``keep``: as for :meth:`delete`),
        then what nothing needs any more. Returns as :meth:`delete` does."""
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            result = prune(self, repos, used=used or {}, every=every)
            if result["deleted"] or result["untagged"]:
                self._write_repositories(repos)
            return {**result, "freed": sweep(self, repos, keep)}

    def collect_garbage(self, keep: frozenset[str] | set[str] = frozenset()) -> int:
        """Delete the blobs and layers that no tag and no container (``keep``,
        as for :meth:`remove`) needs -- left by ``rmi -f`` of an image a
        container used, once that container is gone. Returns the bytes freed."""
        with self._lock(exclusive=True):
            return sweep(self, self._read_repositories(), keep)

    def find(self, name: str) -> Image:
        """The image ``name`` names -- a reference, as :meth:`resolve` takes,
        or an image id or a unique prefix of one (``docker image inspect 1a2b``)."""
        try:
            return self.resolve(name)
        except (ImageNotFound, InvalidArgument) as e:
            hexpart = name.removeprefix("sha256:")
            if not (0 < len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)):
                raise (ImageNotFound(f"No such image: {name}") if isinstance(e, ImageNotFound) else e) from None
        found: dict[str, Image] = {}
        for image in self.list():
            if image.id.removeprefix("sha256:").startswith(hexpart):
                found.setdefault(image.id, image)
        if len(found) > 1:
            raise ImageError(f"the image id prefix {name} is ambiguous: {len(found)} images start with it")
        if not found:
            raise ImageNotFound(f"No such image: {name}")
        return next(iter(found.values()))

    def tag(self, source: str, target: str) -> Image:
        """Give the image ``source`` names (a reference or an id) the name
        ``target`` as well (``docker tag``); a tag that named another image
        moves to this one. Returns the image as ``target`` names it."""
        from engine.images.reference import familiar_reference

        image = self.find(source)
        r = parse_reference(target)
        if r.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        name = familiar_reference(str(r))
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            if name == LAB_REF and repos.get(LAB_REF) not in (None, image.digest):
                raise InvalidArgument("lab:latest is the built-in image: give yours another name")
            point(repos, [name], image.digest)
            self._write_repositories(repos)
            return self._load(name, image.digest)

    def tags_of(self, image: Image) -> list[str]:
        """Every name in the store of ``image``'s id, sorted (none: it is untagged)."""
        return sorted(i.ref for i in self.list() if i.id == image.id and not is_untagged(i.ref))

    def manifest_and_config(self, image: Image) -> tuple[dict, dict]:
        """``image``'s manifest and its whole OCI config (history, rootfs ...), as stored."""
        with self._lock(exclusive=False):
            try:
                return self._read_image(image.digest)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ImageError(f"image {image.ref} is damaged ({e}); remove it and load it again") from e

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (read it under :meth:`reading`)."""
        if not DIGEST_RE.fullmatch(digest):
            raise ImageError(f"bad digest {digest!r}")
        return self.blobs / digest.removeprefix("sha256:")

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the store's shared lock: no blob or layer is removed meanwhile."""
        with self._lock(exclusive=False):
            yield

    @contextmanager
    def work_dir(self, prefix: str = "work-") -> Iterator[Path]:
        """A private scratch directory under ``tmp/``, removed on exit. Its
        ``.owner`` file stays flocked while it is in use, so another writer
        clearing ``tmp/`` leaves it alone; a crash leaves it to be cleared."""
        with self._lock(exclusive=True):
            work = Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))
            fd = os.open(work / ".owner", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
            os.close(fd)

    def untag(self, refs: list[str]) -> None:
        """Drop the tags ``refs`` (names as stored) and nothing else: their
        blobs and layers stay until the next removal or prune collects what no
        tag needs. A build drops the names of its intermediate images so --
        what its final image uses stays in use, the rest is garbage."""
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            kept = {tag: digest for tag, digest in repos.items() if tag not in refs}
            if kept != repos:
                self._write_repositories(kept)

    def add_image(self, refs: list[str] | str, manifest_bytes: bytes, config_bytes: bytes,
                  open_blob: Callable[[dict], BinaryIO] | Mapping[str, str | Path], *,
                  progress: Callable[[int, int, dict, int], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> Image:
        """Verify an image from elsewhere, unpack its layers, and tag it -- all or nothing.

        This is the one way in for images not built here (``load``, ``pull``):

        - ``refs``: the names to tag it with (``busybox``,
          ``docker.io/library/busybox:1.36``); kept in the store's short form.
          A tag that named another image moves to this one (which is kept,
          untagged, if nothing else names it); no name at all: the image is
          kept untagged (docker's ``<none>:<none>``).
        - ``manifest_bytes``: the image manifest exactly as received (OCI or
          Docker schema 2, never an index: pick the platform first). Its
          sha256 becomes the image's digest, so keep the registry's bytes.
        - ``config_bytes``: the config blob; checked against the manifest's
          ``config`` descriptor (sha256 and size).
        - ``open_blob(descriptor)``: a binary file object holding the blob
          that ``descriptor`` (one of ``manifest["layers"]``: mediaType,
          digest, size) names -- an open file, a tar member, an HTTP
          response. It is read once, to the end, and closed here; it is only
          called for a layer the store does not already hold. A mapping
          ``{digest: path}`` of downloaded files does as well (a puller
          downloads into :meth:`work_dir`, which no other writer clears).
        - ``progress(index, count, descriptor, bytes_read)``: called as each
          layer starts (0 bytes) and then every few MB read of it;
          ``warn(message)``: told what was left out (device nodes), one line each.

        Each layer is checked against its descriptor (sha256 and size) and
        against the config's diff_id (the sha256 of the uncompressed tar) in
        the same pass that unpacks it (:func:`engine.images.extract.extract_layer`) into a
        work dir under ``tmp/``. Only when every check has passed are the
        layers and blobs renamed into place and the tags written, under the
        exclusive lock. On any error nothing is published and the work dir
        is removed. Raises :class:`ImageError` (one line) or
        :class:`InvalidArgument` (a bad name). Returns the image as tagged
        ``refs[0]``.
        """
        from .adding import add_image

        return add_image(self, refs, manifest_bytes, config_bytes, open_blob, progress=progress, warn=warn)

    # -- reading --------------------------------------------------------------

    def shifted_layers(self, image: Image, base: int, size: int) -> list[Path]:
        """``image``'s layers with owners moved into host ids ``base``.. (for a
        private user namespace; see :mod:`engine.images.shift`), copied on first use."""
        from engine.images.shift import copy_shifted

        root = self.root / "userns" / f"{base}-{size}"
        out = [root / layer.name for layer in image.layers]
        if all(p.is_dir() for p in out):
            return out
        with self._lock(exclusive=True):
            with _os_errors(f"cannot prepare {root}"):
                root.mkdir(parents=True, exist_ok=True)
                for layer, dest in zip(image.layers, out):
                    if dest.is_dir():
                        continue
                    work = Path(tempfile.mkdtemp(dir=self.tmp)) / layer.name
                    copy_shifted(str(layer), str(work), base, size)
                    os.rename(work, dest)
                    shutil.rmtree(work.parent)
        return out

    def _read_repositories(self) -> dict[str, str]:
        try:
            data = json.loads(self.repositories.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise ImageError(f"the image index {self.repositories} is unreadable: {e}") from e
        if not well_formed(data):
            raise ImageError(f"the image index {self.repositories} is damaged")
        return data

    def _read_json_blob(self, digest: str) -> dict:
        """A JSON blob, its content checked against its digest."""
        if not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"bad digest {digest!r}")
        data = (self.blobs / digest.removeprefix("sha256:")).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest} does not match its digest")
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError(f"blob {digest} is not a JSON object")
        return obj

    def _read_image(self, digest: str) -> tuple[dict, dict]:
        """(manifest, config) of the manifest ``digest``; ValueError, KeyError,
        TypeError or OSError when they are missing or malformed."""
        manifest = self._read_json_blob(digest)
        if manifest.get("mediaType", MANIFEST_MEDIA_TYPE) not in (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE) \
                or manifest.get("schemaVersion") != 2:
            raise ValueError("not an image manifest")
        config = self._read_json_blob(manifest["config"]["digest"])
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest["layers"]) or not all(DIGEST_RE.fullmatch(d) for d in diff_ids):
            raise ValueError("the config's diff_ids do not match the manifest's layers")
        return manifest, config

    def _load(self, ref: str, digest: str) -> Image:
        try:
            manifest, config = self._read_image(digest)
            layers = [self.layers / d.removeprefix("sha256:") for d in config["rootfs"]["diff_ids"]]
            for d in layers:
                if not d.is_dir():
                    raise FileNotFoundError(f"layer {d.name} is missing")
            settings = {**copy.deepcopy(CONFIG_DEFAULTS), **{k: v for k, v in (config.get("config") or {}).items() if v}}
            return Image(
                ref=ref,
                id=manifest["config"]["digest"],
                digest=digest,
                layers=layers,
                config=settings,
                created=config.get("created", ""),
                # Unpacked, as docker's SIZE: the files' bytes, recorded when
                # each layer was stored (a walk would cost each `run` milliseconds).
                size=sum(self.layer_size(d) for d in layers),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ImageError(f"image {ref} is damaged ({e}); remove it and pull or load it again") from e

    def _load_lab(self) -> Image | None:
        """The lab image if it is tagged, intact and assembled by today's recipe
        (``lab.CONFIG``'s recipe label), else None (so it is built again; the old
        one's layers stay while a container uses them, and ``image prune`` takes them)."""
        digest = self._read_repositories().get(LAB_REF)
        if digest is None:
            return None
        try:
            image = self._load(LAB_REF, digest)
        except ImageError:
            return None
        recipe = "org.container-lab.recipe"
        if (image.config.get("Labels") or {}).get(recipe) != lab.CONFIG["Labels"][recipe]:
            return None
        return image

    # -- writing (callers hold the exclusive lock) ----------------------------

    def _build_lab(self) -> Image:
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="lab-", dir=self.tmp))
        try:
            with _os_errors("cannot assemble the lab image"):
                entries = lab.build_entries()
                rootfs, tar = work / "rootfs", work / "layer.tar"
                layer.unpack(entries, rootfs)
                tar_size = layer.write_tar(entries, rootfs, tar)
                diff_id = self._put_blob_file(tar)
                self._put_layer(rootfs, diff_id)
                created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
                config_digest, config_size = self._put_json_blob({
                    "created": created,
                    "architecture": _ARCH.get(platform.machine(), platform.machine()),
                    "os": "linux",
                    "config": lab.CONFIG,
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                    "history": [{"created": created, "created_by": "container-lab: host binaries, assembled offline"}],
                })
                manifest_digest, _ = self._put_json_blob({
                    "schemaVersion": 2,
                    "mediaType": MANIFEST_MEDIA_TYPE,
                    "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
                    "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": diff_id, "size": tar_size}],
                })
                repos = self._read_repositories()
                point(repos, [LAB_REF], manifest_digest)    # an older lab stays, untagged, for its containers
                self._write_repositories(repos)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        image = self._load(LAB_REF, manifest_digest)
        log.info("built the lab image (%d MB) in %.2f s", image.size // 2**20, time.monotonic() - started)
        return image

    def _put_blob_file(self, path: Path) -> str:
        """Move the finished file ``path`` into the blob store; return its digest."""
        with open(path, "rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
            os.fsync(f.fileno())
        dest = self.blobs / digest.removeprefix("sha256:")
        if dest.exists():
            os.unlink(path)
        else:
            os.chmod(path, 0o600)
            os.rename(path, dest)
            _fsync_dir(self.blobs)
        return digest

    def _put_json_blob(self, obj: dict) -> tuple[str, int]:
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return self._put_blob_file(Path(tmp)), len(data)

    def _put_layer(self, rootfs: Path, diff_id: str) -> None:
        """Make the unpacked ``rootfs`` the layer ``diff_id``, unless it is there already."""
        dest = self.layers / diff_id.removeprefix("sha256:")
        if dest.exists():
            return
        # Layer files must be on disk before the rename publishes them: a
        # power cut must not leave a complete-looking layer of empty files.
        _fsync_tree(rootfs)
        self._record_size(dest.name, _tree_size(rootfs))
        os.rename(rootfs, dest)
        _fsync_dir(self.layers)

    def layer_size(self, layer: Path) -> int:
        """Bytes of the files of the unpacked ``layer`` (as recorded when it was
        stored; measured, and recorded, for a layer stored before sizes were)."""
        try:
            return int((self.sizes / layer.name).read_text())
        except (OSError, ValueError):
            pass
        size = _tree_size(layer)
        try:
            self._record_size(layer.name, size)
        except OSError:
            pass
        return size

    def _record_size(self, name: str, size: int) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.sizes, prefix=".")
        with os.fdopen(fd, "w") as f:
            f.write(f"{size}\n")
        os.rename(tmp, self.sizes / name)

    def _write_repositories(self, repos: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "w") as f:
            json.dump(repos, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.repositories)
        _fsync_dir(self.root)


    def _clear_tmp(self) -> None:
        for p in self.tmp.iterdir():
            if p.is_dir() and not p.is_symlink():
                if not _in_use(p):
                    shutil.rmtree(p)
            else:
                p.unlink()

    @contextmanager
    def _lock(self, *, exclusive: bool) -> Iterator[None]:
        with _os_errors(f"cannot lock the image store {self.root}"):
            fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if exclusive:
                with _os_errors(f"cannot clear {self.tmp}"):
                    self._clear_tmp()
            with _os_errors(f"image store {self.root}"):
                yield
        finally:
            os.close(fd)


def _matches(r: Reference, tag: str, digest: str) -> bool:
    """Whether ``r`` names the store's entry ``tag -> digest``. An entry is
    ``name:tag``, or ``name@digest`` for an image pulled by digest (which
    docker lists with the tag ``<none>``)."""
    if r.digest:
        if tag == str(r):
            return True
        # "registry:5000/x:tag" -> "registry:5000/x": a tag holds no ':' or '/'.
        return r.digest == digest and "@" not in tag and tag.rpartition(":")[0] == r.name
    return str(r) == tag
