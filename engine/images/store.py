"""A content-addressed image store on local disk.

Layout under the store's root (every directory mode 0700; see SECURITY.md,
"The store" -- unpacked layers hold setuid-root binaries)::

    blobs/sha256/<hex>   layer tars, OCI image configs and manifests
    layers/<hex>/        each layer unpacked, named by its diff_id; an overlay lowerdir
    sizes/<hex>          bytes of each unpacked layer's files (what `images` adds up)
    repositories.json    {"lab:latest": "sha256:<manifest digest>", ...}
    tmp/                 work in progress, renamed into place when complete
    lock                 flock: shared to read, exclusive to write

Writers hold the exclusive lock, so anything left in ``tmp/`` when one takes it
is debris from a writer that died; it is cleared then -- except a work
directory whose ``.owner`` file is still flocked by a live process (a load
unpacking layers, which takes the exclusive lock only to publish them, so
containers keep starting meanwhile). Readers hold the shared lock, so a
removal never pulls blobs out from under them.

Images from elsewhere come in through :meth:`ImageStore.add_image` (``load``
now, ``pull`` next): every byte checked against its digest, every layer
unpacked by :mod:`.extract`, and nothing published until all of it is.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images import lab, layer
from engine.images.reference import DIGEST_RE, Reference, familiar_reference, parse_reference
from engine.paths import ensure_private_dir
from engine.records import json_object

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
# Layer media types we read, and the compression each announces (the bytes
# are sniffed anyway: registries and tools are not always truthful).
LAYER_MEDIA_TYPES = {
    LAYER_MEDIA_TYPE: "none",
    LAYER_MEDIA_TYPE + "+gzip": "gzip",
    LAYER_MEDIA_TYPE + "+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
}
MAX_JSON_BLOB = 8 << 20  # a manifest or config larger than this is not one
MAX_LAYERS = 128         # layers one image may stack, as Docker allows
LAB_REF = "lab:latest"

log = logging.getLogger(__name__)

# The keys of an OCI config's "config" object that the runtime uses, with the
# value each takes when the image leaves it out.
CONFIG_DEFAULTS = {"Env": [], "Cmd": [], "Entrypoint": [], "WorkingDir": "", "User": "", "Labels": {}}

# platform.machine() -> GOARCH, the spelling OCI configs use.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class Image:
    """An image in the store, ready to be mounted."""

    ref: str  # normalised, e.g. "lab:latest"
    id: str  # "sha256:<config digest>"
    digest: str  # "sha256:<manifest digest>"
    layers: list[Path]  # unpacked layer dirs, bottom -> top
    config: dict  # the OCI config's "config" object, CONFIG_DEFAULTS filled in
    created: str  # RFC 3339
    size: int  # bytes of unpacked layers

    def lowerdir(self, layers: list[Path] | None = None) -> str:
        """The overlayfs ``lowerdir=`` value: layers (this image's unless
        given) top first, separated by ':'."""
        # overlayfs splits options on ',' and lowerdir on ':'; a backslash escapes both.
        def escape(p: Path) -> str:
            return str(p).replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")

        return ":".join(escape(p) for p in reversed(self.layers if layers is None else layers))


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
        """The image ``ref`` names; ``lab`` is built on first use."""
        r = parse_reference(ref)
        if str(r) == LAB_REF:
            return self.ensure_lab()
        with self._lock(exclusive=False):
            for tag, digest in self._read_repositories().items():
                if _matches(r, tag, digest):
                    return self._load(str(r), digest)
        raise ImageNotFound(f"Unable to find image '{r}' locally")

    def list(self) -> list[Image]:
        """Every tagged image, sorted by ref. A damaged one is left out here;
        resolving it gives the error that says what is wrong."""
        images = []
        with self._lock(exclusive=False):
            for tag, digest in sorted(self._read_repositories().items()):
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
        """Drop the tag ``ref`` (for ``name@digest``: every tag of name on that
        digest), then delete the blobs and layers no tag still needs -- and no
        container: ``keep`` names the layer directories containers use.
        Returns the bytes freed.

        Only the supervisor calls this (``rmi``, ``image rm``, ``image
        prune``): it knows every container, the half-built ones too, so
        ``keep`` cannot miss a container that is being started meanwhile."""
        r = parse_reference(ref)
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            doomed = [tag for tag, digest in repos.items() if _matches(r, tag, digest)]
            if not doomed:
                raise ImageNotFound(f"No such image: {r}")
            for tag in doomed:
                del repos[tag]
            self._write_repositories(repos)
            return self._collect_garbage(repos, keep)

    def collect_garbage(self, keep: frozenset[str] | set[str] = frozenset()) -> int:
        """Delete the blobs and layers that no tag and no container (``keep``,
        as for :meth:`remove`) needs -- left by ``rmi -f`` of an image a
        container used, once that container is gone. Returns the bytes freed."""
        with self._lock(exclusive=True):
            return self._collect_garbage(self._read_repositories(), keep)

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

    def tags_of(self, image: Image) -> list[str]:
        """Every tag in the store that names ``image``'s id, sorted."""
        return sorted(i.ref for i in self.list() if i.id == image.id)

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

    def add_image(self, refs: list[str] | str, manifest_bytes: bytes, config_bytes: bytes,
                  open_blob: Callable[[dict], BinaryIO] | Mapping[str, str | Path], *,
                  progress: Callable[[int, int, dict, int], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> Image:
        """Verify an image from elsewhere, unpack its layers, and tag it -- all or nothing.

        This is the one way in for images not built here (``load``, ``pull``):

        - ``refs``: the names to tag it with (``busybox``,
          ``docker.io/library/busybox:1.36``); kept in the store's short form.
          A tag that named another image moves to this one.
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
        the same pass that unpacks it (:func:`.extract.extract_layer`) into a
        work dir under ``tmp/``. Only when every check has passed are the
        layers and blobs renamed into place and the tags written, under the
        exclusive lock. On any error nothing is published and the work dir
        is removed. Raises :class:`ImageError` (one line) or
        :class:`InvalidArgument` (a bad name). Returns the image as tagged
        ``refs[0]``.
        """
        from .extract import Used, check_declared_sizes, check_free_space, limits_from_env

        if isinstance(open_blob, Mapping):
            files = open_blob

            def open_blob(desc: dict) -> BinaryIO:
                if desc["digest"] not in files:
                    raise ImageError(f"no file was given for the blob {desc['digest'][:19]}...")
                return open(files[desc["digest"]], "rb")
        names = [familiar_reference(r) for r in ([refs] if isinstance(refs, str) else refs)]
        if not names or any("@" in n for n in names):
            raise InvalidArgument("an image needs at least one name:tag to be stored under")
        manifest, config, layers = _check_image(manifest_bytes, config_bytes)
        manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        diff_ids = config["rootfs"]["diff_ids"]
        limits = limits_from_env()
        check_declared_sizes(layers, limits, "the image")
        # Each new blob is kept, and unpacks to at least its own size.
        check_free_space(self.root, limits, "storing the image",
                         2 * sum(d["size"] for d in layers if not self.blob_path(d["digest"]).is_file()))
        used = Used()
        with self.work_dir("add-") as work:
            (work / "blobs").mkdir()
            (work / "layers").mkdir()
            new_blobs: dict[str, Path] = {}
            new_layers: dict[str, Path] = {}
            paired: set[tuple[str, str]] = set()    # (blob digest, diff_id) checked in this add
            lowers: list[Path] = []
            for i, (desc, diff_id) in enumerate(zip(layers, diff_ids)):
                what = f"layer {i + 1} of {len(layers)} ({desc['digest'][:19]})"
                stored_layer = self.layers / diff_id.removeprefix("sha256:")
                have_layer = diff_id in new_layers or stored_layer.is_dir()
                have_blob = desc["digest"] in new_blobs or self.blob_path(desc["digest"]).is_file()
                if progress:
                    progress(i, len(layers), desc, 0)
                if not (have_layer and have_blob):
                    blob_copy = None if have_blob else work / "blobs" / desc["digest"].removeprefix("sha256:")
                    layer_dir = None if have_layer else work / "layers" / diff_id.removeprefix("sha256:")
                    self._receive_layer(open_blob, desc, diff_id, what, blob_copy, layer_dir, lowers, limits,
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
                    stored = new_blobs.get(desc["digest"], self.blob_path(desc["digest"]))
                    self._receive_layer(lambda _d, path=stored: open(path, "rb"), desc, diff_id, what, None, None, lowers,
                                        limits, warn or log.warning)
                paired.add((desc["digest"], diff_id))
                lowers.append(new_layers.get(diff_id, stored_layer))
            for data in (config_bytes, manifest_bytes):
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                if not self.blob_path(digest).is_file():
                    path = work / "blobs" / digest.removeprefix("sha256:")
                    path.write_bytes(data)
                    new_blobs[digest] = path
            with self._lock(exclusive=True), _os_errors("cannot store the image"):
                for i, diff_id in enumerate(diff_ids):
                    if diff_id not in new_layers and not (self.layers / diff_id.removeprefix("sha256:")).is_dir():
                        raise ImageError(f"layer {i + 1} of {len(diff_ids)} was removed from the store meanwhile "
                                         "(rmi or image prune); try again")
                for diff_id, path in new_layers.items():
                    self._put_layer(path, diff_id)
                for digest, path in new_blobs.items():
                    dest = self.blob_path(digest)
                    if not dest.exists():
                        with open(path, "rb") as f:
                            os.fsync(f.fileno())
                        os.chmod(path, 0o600)
                        os.rename(path, dest)
                _fsync_dir(self.blobs)
                repos = self._read_repositories()
                for name in names:
                    repos[name] = manifest_digest
                self._write_repositories(repos)
                return self._load(names[0], manifest_digest)

    def _receive_layer(self, open_blob, desc: dict, diff_id: str, what: str, blob_copy: Path | None,
                       layer_dir: Path | None, lowers: list[Path], limits, warn,
                       progress: Callable[[int], None] | None = None, used=None) -> None:
        """Read one layer blob once: check it against ``desc`` and ``diff_id``,
        copy it to ``blob_copy`` and unpack it into ``layer_dir`` (None: the
        store has that layer unpacked already, so only the diff_id is checked)."""
        from .extract import diff_id_of, extract_layer

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

    # -- reading --------------------------------------------------------------

    def shifted_layers(self, image: Image, base: int, size: int) -> list[Path]:
        """``image``'s layers with owners moved into host ids ``base``.. (for a
        private user namespace; see :mod:`.shift`), copied on first use."""
        from .shift import copy_shifted

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
        if not isinstance(data, dict) or not all(
            isinstance(t, str) and isinstance(d, str) and DIGEST_RE.fullmatch(d) for t, d in data.items()
        ):
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
        """The lab image if it is tagged and intact, else None (so it is rebuilt)."""
        digest = self._read_repositories().get(LAB_REF)
        if digest is None:
            return None
        try:
            return self._load(LAB_REF, digest)
        except ImageError:
            return None

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
                repos[LAB_REF] = manifest_digest
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

    def _collect_garbage(self, repos: dict[str, str], keep: frozenset[str] | set[str] = frozenset()) -> int:
        """Delete every blob and layer that no manifest in ``repos`` reaches,
        except the layer directories named in ``keep``; return the bytes freed."""
        blobs, layers = set(), {f"sha256:{name}" for name in keep}
        freed = 0
        for digest in set(repos.values()):
            try:
                manifest, config = self._read_image(digest)
            except (OSError, ValueError, KeyError, TypeError):
                return 0  # cannot tell what a damaged image needs: delete nothing
            blobs |= {digest, manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
            layers |= set(config["rootfs"]["diff_ids"])
        for blob in self.blobs.iterdir():
            if "sha256:" + blob.name not in blobs:
                freed += blob.stat().st_size
                blob.unlink()
        for d in self.layers.iterdir():
            if "sha256:" + d.name not in layers:
                freed += self.layer_size(d)
                # Out of sight first, so a crash mid-delete leaves debris in
                # tmp/ (cleared by the next writer), never a half layer.
                doomed = Path(tempfile.mkdtemp(dir=self.tmp)) / d.name
                os.rename(d, doomed)
                shutil.rmtree(doomed.parent)
        for f in self.sizes.iterdir():
            if "sha256:" + f.name not in layers:
                f.unlink()
        shifted = self.root / "userns"
        for d in (shifted.glob("*/*") if shifted.is_dir() else ()):
            if "sha256:" + d.name not in layers:
                doomed = Path(tempfile.mkdtemp(dir=self.tmp)) / d.name
                os.rename(d, doomed)
                shutil.rmtree(doomed.parent)
        return freed

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


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Report an OSError as an ImageError: '<what>: <reason>'."""
    try:
        yield
    except OSError as e:
        raise ImageError(f"{what}: {e.strerror or e}" + (f" ({e.filename})" if e.filename else "")) from e


def _in_use(work: Path) -> bool:
    """Whether the work dir ``work`` is flocked by a live process (see :meth:`ImageStore.work_dir`)."""
    try:
        fd = os.open(work / ".owner", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)


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


def check_descriptor(desc, what: str) -> dict:
    """``desc`` if it is a well-formed descriptor (digest sha256:<hex>, size >= 0), else an ImageError."""
    if not isinstance(desc, dict):
        raise ImageError(f"the {what} descriptor is not an object")
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise ImageError(f"the {what} descriptor has a bad digest {str(digest)[:80]!r} (sha256 only)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"the {what} descriptor has a bad size {size!r}")
    return desc


def _check_image(manifest_bytes: bytes, config_bytes: bytes) -> tuple[dict, dict, list[dict]]:
    """The manifest, config and layer descriptors, checked against each other."""
    manifest = json_object(manifest_bytes, "manifest", ImageError, MAX_JSON_BLOB)
    media = manifest.get("mediaType", MANIFEST_MEDIA_TYPE)
    if media in INDEX_MEDIA_TYPES or "manifests" in manifest:
        raise ImageError("the manifest is an image index (one image per platform), not an image manifest")
    if media not in (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE) or manifest.get("schemaVersion") != 2:
        raise ImageError(f"the manifest is not an OCI or Docker schema 2 image manifest (mediaType {media!r})")
    config_desc = check_descriptor(manifest.get("config"), "config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageError("the manifest has no list of layers")
    if len(layers) > MAX_LAYERS:
        raise ImageError(f"the image has {len(layers)} layers; at most {MAX_LAYERS} can be stacked "
                         "(as Docker allows); refused")
    for i, desc in enumerate(layers):
        check_descriptor(desc, f"layer {i + 1}")
        kind = desc.get("mediaType")
        if isinstance(kind, str) and ".foreign." in kind:
            raise ImageError(f"layer {i + 1} is a foreign layer ({kind}): a Windows image?")
        if kind not in LAYER_MEDIA_TYPES:
            raise ImageError(f"layer {i + 1} has the media type {kind!r}, which container-lab does not read")
        if LAYER_MEDIA_TYPES[kind] == "zstd":
            raise ImageError(f"layer {i + 1} is compressed with zstd, which container-lab cannot read "
                             "(Python 3.11 has no zstd); re-export the image with gzip layers")
    digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    if len(config_bytes) != config_desc["size"] or digest != config_desc["digest"]:
        raise ImageError(f"the config does not match its descriptor: it is {digest[:19]}... "
                         f"({len(config_bytes)} bytes), the manifest says {config_desc['digest'][:19]}... "
                         f"({config_desc['size']} bytes); refused")
    config = json_object(config_bytes, "config", ImageError, MAX_JSON_BLOB)
    if config.get("os", "linux") != "linux":
        raise ImageError(f"the image is for {config.get('os')!r}, not linux")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(diff_ids, list) \
            or not all(isinstance(d, str) and DIGEST_RE.fullmatch(d) for d in diff_ids):
        raise ImageError("the config has no valid rootfs.diff_ids")
    if len(diff_ids) != len(layers):
        raise ImageError(f"the config lists {len(diff_ids)} layers (rootfs.diff_ids), "
                         f"the manifest {len(layers)}; refused")
    return manifest, config, layers


def _matches(r: Reference, tag: str, digest: str) -> bool:
    """Whether ``r`` names the store's entry ``tag -> digest``."""
    if r.digest:
        # "registry:5000/x:tag" -> "registry:5000/x": a tag holds no ':' or '/'.
        return r.digest == digest and tag.rpartition(":")[0] == r.name
    return str(r) == tag


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tree_size(root: Path) -> int:
    from .describe import layer_size

    return layer_size(root)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (symlinks, devices and
    fifos -- whiteouts among them -- live in their directory)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode):
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(dirpath))
