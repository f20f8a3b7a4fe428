"""A content-addressed image store on local disk.

Layout under the store's root (every directory mode 0700; see SECURITY.md,
"The store" -- unpacked layers hold setuid-root binaries)::

    blobs/sha256/<hex>   layer tars, OCI image configs and manifests
    layers/<hex>/        each layer unpacked, named by its diff_id; an overlay lowerdir
    repositories.json    {"lab:latest": "sha256:<manifest digest>", ...}
    tmp/                 work in progress, renamed into place when complete
    lock                 flock: shared to read, exclusive to write

Writers hold the exclusive lock, so anything left in ``tmp/`` when one takes it
is debris from a writer that died; it is cleared then. Readers hold the shared
lock, so a removal never pulls blobs out from under them.
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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from engine.errors import ImageError, ImageNotFound
from engine.images import lab, layer
from engine.images.reference import DIGEST_RE, Reference, parse_reference
from engine.paths import ensure_private_dir

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
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
        self.tmp = self.root / "tmp"
        self.repositories = self.root / "repositories.json"
        with _os_errors(f"cannot prepare the image store {self.root}"):
            for d in (self.root, self.root / "blobs", self.blobs, self.layers, self.tmp):
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

    def remove(self, ref: str) -> None:
        """Drop the tag ``ref`` (for ``name@digest``: every tag of name on that
        digest), then delete the blobs and layers no tag still needs."""
        r = parse_reference(ref)
        with self._lock(exclusive=True):
            repos = self._read_repositories()
            doomed = [tag for tag, digest in repos.items() if _matches(r, tag, digest)]
            if not doomed:
                raise ImageNotFound(f"No such image: {r}")
            for tag in doomed:
                del repos[tag]
            self._write_repositories(repos)
            self._collect_garbage(repos)

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
        if manifest.get("mediaType") != MANIFEST_MEDIA_TYPE or manifest.get("schemaVersion") != 2:
            raise ValueError("not an OCI image manifest")
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
                # The layers' archive sizes from the manifest: as good a measure
                # as a walk of every file, which would cost each `run` milliseconds.
                size=sum(int(desc.get("size", 0)) for desc in manifest["layers"]),
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
                created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
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
        os.rename(rootfs, dest)
        _fsync_dir(self.layers)

    def _write_repositories(self, repos: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "w") as f:
            json.dump(repos, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.repositories)
        _fsync_dir(self.root)

    def _collect_garbage(self, repos: dict[str, str]) -> None:
        """Delete every blob and layer that no manifest in ``repos`` reaches."""
        blobs, layers = set(), set()
        for digest in set(repos.values()):
            try:
                manifest, config = self._read_image(digest)
            except (OSError, ValueError, KeyError, TypeError):
                return  # cannot tell what a damaged image needs: delete nothing
            blobs |= {digest, manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
            layers |= set(config["rootfs"]["diff_ids"])
        for blob in self.blobs.iterdir():
            if "sha256:" + blob.name not in blobs:
                blob.unlink()
        for d in self.layers.iterdir():
            if "sha256:" + d.name not in layers:
                # Out of sight first, so a crash mid-delete leaves debris in
                # tmp/ (cleared by the next writer), never a half layer.
                doomed = Path(tempfile.mkdtemp(dir=self.tmp)) / d.name
                os.rename(d, doomed)
                shutil.rmtree(doomed.parent)
        shifted = self.root / "userns"
        for d in (shifted.glob("*/*") if shifted.is_dir() else ()):
            if "sha256:" + d.name not in layers:
                doomed = Path(tempfile.mkdtemp(dir=self.tmp)) / d.name
                os.rename(d, doomed)
                shutil.rmtree(doomed.parent)

    def _clear_tmp(self) -> None:
        for p in self.tmp.iterdir():
            if p.is_dir() and not p.is_symlink():
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


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (symlinks live in their directory)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(dirpath))
