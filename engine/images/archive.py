"""Image archives in and out of the store: ``load`` and ``save``, for offline classrooms.

Two layouts go in (``load``), both as one tar:

- ``docker save``'s: ``manifest.json`` (a list of ``{"Config", "RepoTags",
  "Layers"}``, each a path inside the archive), ``repositories``, the config
  JSON and one tar per layer (possibly gzip). There is no image manifest, so
  one is written here: the image's digest is then ours, not a registry's --
  as with ``docker load``, which gives such images no RepoDigests.
- an OCI image layout's: ``oci-layout``, ``index.json`` (descriptors of the
  manifests, names in the ``io.containerd.image.name`` or
  ``org.opencontainers.image.ref.name`` annotation) and ``blobs/sha256/*``.
  The manifest's own bytes are kept, so its digest is the registry's.

When both are present -- Docker 25 and later write both, and so does
``save`` here -- the OCI index wins, because it carries the manifest.

``save`` writes that combined form: the stored blobs exactly as they are (so
``save`` then ``load`` gives the same image id and digest), an ``index.json``
with both name annotations, Docker's ``manifest.json`` and ``repositories``,
and ``oci-layout`` -- readable by ``docker load``, ``skopeo`` (``oci-archive:``
and ``docker-archive:``), ``umoci`` and this engine.

Every archive is hostile input: member names are looked up, never extracted;
links between members are followed only inside the archive, a few hops at
most; JSON files are size-bounded; and every blob goes through
:meth:`ImageStore.add_image`, which checks it against its digest.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError, InvalidArgument
from engine.images.extract import detect_compression
from engine.images.layer import FIXED_MTIME
from engine.images.limits import limits_from_env
from engine.images.reference import familiar_reference, parse_reference, qualified_reference
from engine.images.store import (
    CONFIG_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPES,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    MAX_JSON_BLOB,
    Image,
    ImageStore,
    check_descriptor,
)
from engine.images.store.names import UNTAGGED
from engine.spec import human_size as _human

MAX_MEMBERS = 200_000
LINK_HOPS = 8
OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_BLOB_PATH = re.compile(r"blobs/sha256/([a-f0-9]{64})")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}

Progress = Callable[[str], None]


# -- load ----------------------------------------------------------------------

def load(store: ImageStore, source: BinaryIO | str | Path, *, progress: Progress | None = None,
         warn: Callable[[str], None] | None = None) -> list[str]:
    """Add every image of the archive ``source`` (a path, or a stream such as
    stdin) to ``store``; return the names loaded, in archive order -- an
    image the archive names not, by its id (``sha256:...``, kept untagged).
    Each image is added all or nothing (see :meth:`ImageStore.add_image`)."""
    with store.work_dir("load-") as work:
        path = _archive_file(source, work)
        with _Archive(path) as archive:
            images = archive.images()
            loaded: list[str] = []
            for names, manifest_bytes, config_bytes in images:
                def step(i, n, desc, done, _names=names):
                    if progress:
                        progress(f"{_names[0] if _names else 'image'}: layer {i + 1}/{n} "
                                 f"{desc['digest'][7:19]}: {_human(done)} of {_human(desc['size'])}")
                image = store.add_image(names, manifest_bytes, config_bytes, archive.open_blob, progress=step,
                                        warn=warn)
                loaded.extend([familiar_reference(n) for n in names] or [image.id])
            return loaded


def _archive_file(source: BinaryIO | str | Path, work: Path) -> Path:
    """A plain, seekable tar on disk: ``source`` itself when it is one, else a
    copy in ``work`` (stdin; a gzip/bzip2/xz-compressed archive, unpacked
    through the layer size bound, as ``docker load`` accepts them)."""
    limit = limits_from_env().image_bytes
    if isinstance(source, (str, Path)):
        try:
            f = open(source, "rb")
        except OSError as e:
            raise ImageError(f"cannot open {source}: {e.strerror}") from None
    else:
        f = source
    try:
        head = f.read(6)
        if not head:
            raise ImageError("the archive is empty" if isinstance(source, (str, Path))
                             else "requested load from stdin, but stdin is empty")
        opener = None
        if head.startswith(b"\x1f\x8b"):
            opener = gzip.GzipFile
        elif head.startswith(b"BZh"):
            opener = bz2.BZ2File
        elif head.startswith(b"\xfd7zXZ"):
            opener = lzma.LZMAFile
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            raise ImageError("the archive is compressed with zstd, which container-lab cannot read; "
                             "decompress it first (zstd -d)")
        if opener is None and isinstance(source, (str, Path)) and stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return Path(source)         # read in place (a fifo, /dev/stdin ... is copied: tar needs to seek)
        out = work / "archive.tar"
        raw = _Joined(head, f)
        try:
            with open(out, "wb") as dst:
                stream = opener(fileobj=raw, mode="rb") if opener else raw
                total = 0
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
                    if total > limit:
                        raise ImageError(f"the archive unpacks to more than {limit} bytes; refused "
                                         "(CONTAINER_LAB_MAX_IMAGE_BYTES)")
                    dst.write(chunk)
        except (EOFError, OSError, lzma.LZMAError, ValueError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise ImageError(f"cannot read the archive: {e.strerror}") from None
            raise ImageError(f"the archive's compression is damaged ({e or 'it ends too early'})") from None
        return out
    finally:
        if isinstance(source, (str, Path)):
            f.close()


class _Joined(io.RawIOBase):
    """Bytes already read, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            take = len(self.head) if n is None or n < 0 else n
            data, self.head = self.head[:take], self.head[take:]
            return data
        return self.rest.read(n)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class _Archive:
    """An image archive's members, by name; nothing is ever extracted to disk."""

    def __init__(self, path: Path):
        try:
            self.tar = tarfile.open(path, "r:")
        except tarfile.TarError as e:
            raise ImageError(f"the archive is not a tar file ({e})") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        self.paths: dict[str, str] = {}     # a docker archive's layers: digest -> member name
        try:
            for count, info in enumerate(self.tar, 1):
                if count > MAX_MEMBERS:
                    raise ImageError(f"the archive has more than {MAX_MEMBERS} members; refused")
                self.members[_clean(info.name)] = info
        except tarfile.TarError as e:
            self.tar.close()
            raise ImageError(f"the archive is truncated or damaged ({e})") from None
        except ImageError:
            self.tar.close()
            raise

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.tar.close()

    def member(self, name: str) -> tarfile.TarInfo:
        """The regular file ``name`` names, following links inside the archive."""
        wanted = _clean(name)
        for _ in range(LINK_HOPS):
            info = self.members.get(wanted)
            if info is None:
                raise ImageError(f"the archive names {name!r}, which it does not hold")
            if info.isreg():
                if info.offset_data + info.size > self._size():
                    raise ImageError(f"the archive is truncated: {name!r} is cut short")
                return info
            if info.issym():
                wanted = _clean(posixpath.join(posixpath.dirname(wanted), info.linkname))
            elif info.islnk():
                wanted = _clean(info.linkname)
            else:
                raise ImageError(f"the archive's {name!r} is not a file")
        raise ImageError(f"the archive's {name!r} is a chain of links too long to follow")

    def _size(self) -> int:
        f = self.tar.fileobj
        return os.fstat(f.fileno()).st_size

    def has(self, name: str) -> bool:
        return _clean(name) in self.members

    def read(self, name: str, what: str, limit: int = MAX_JSON_BLOB) -> bytes:
        info = self.member(name)
        if info.size > limit:
            raise ImageError(f"the archive's {what} ({name}) is larger than {limit} bytes; refused")
        return self.tar.extractfile(info).read()

    def read_json(self, name: str, what: str):
        try:
            return json.loads(self.read(name, what))
        except (ValueError, UnicodeDecodeError) as e:
            raise ImageError(f"the archive's {what} ({name}) is not valid JSON ({e})") from None

    def open_blob(self, desc: dict) -> BinaryIO:
        """The blob ``desc`` names (by digest; a docker archive's layers by path)."""
        name = self.paths.get(desc["digest"]) or _blob_name(desc["digest"])
        return self.tar.extractfile(self.member(name))

    def images(self) -> list[tuple[list[str], bytes, bytes]]:
        """(names, manifest bytes, config bytes) of every image in the archive."""
        if self.has("index.json"):
            images = self._oci_images()
        elif self.has("manifest.json"):
            images = self._docker_images()
        else:
            raise ImageError("the archive is neither a docker save archive (no manifest.json) "
                             "nor an OCI image layout (no index.json)")
        if not images:
            raise ImageError("the archive holds no image")
        return images               # an image with no name (no RepoTags, no ref annotation) is kept untagged

    # -- OCI image layout ---------------------------------------------------------

    def _oci_images(self) -> list[tuple[list[str], bytes, bytes]]:
        if self.has("oci-layout"):
            layout = self.read_json("oci-layout", "oci-layout")
            if not isinstance(layout, dict) or not str(layout.get("imageLayoutVersion", "")).startswith("1."):
                raise ImageError("the archive's oci-layout is not an OCI image layout version 1")
        index = self.read_json("index.json", "index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ImageError("the archive's index.json has no list of manifests")
        docker_names = self._docker_names()
        by_digest: dict[str, tuple[list[str], bytes, bytes]] = {}
        for i, desc in enumerate(index["manifests"]):
            check_descriptor(desc, f"index.json manifest {i + 1}")
            annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
            manifest_bytes = self._blob_bytes(desc, "manifest")
            media = desc.get("mediaType") or json.loads(manifest_bytes).get("mediaType")
            if media in INDEX_MEDIA_TYPES:
                desc = self._pick_platform(manifest_bytes)
                manifest_bytes = self._blob_bytes(desc, "manifest")
            elif media not in (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, None):
                continue      # not an image (an artifact, a signature ...)
            manifest = json.loads(manifest_bytes)
            config_desc = check_descriptor(manifest.get("config") if isinstance(manifest, dict) else None, "config")
            config_bytes = self._blob_bytes(config_desc, "config")
            names = _names_from(annotations)
            if not names:
                names = docker_names.get(config_desc["digest"], [])
            entry = by_digest.setdefault(desc["digest"], ([], manifest_bytes, config_bytes))
            entry[0].extend(n for n in names if n not in entry[0])
        return list(by_digest.values())

    def _blob_bytes(self, desc: dict, what: str) -> bytes:
        """A small blob, checked against its descriptor here (an index's
        platform manifest is not passed on to the store's checks)."""
        data = self.read(_blob_name(desc["digest"]), what)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != desc["digest"] or len(data) != desc["size"]:
            raise ImageError(f"the archive's {what} blob does not match its descriptor: it is {digest[:19]}... "
                             f"({len(data)} bytes), the descriptor says {desc['digest'][:19]}... "
                             f"({desc['size']} bytes); refused")
        return data

    def _pick_platform(self, index_bytes: bytes) -> dict:
        """This machine's manifest from an image index (the one the archive
        holds, never an attestation manifest)."""
        index = json.loads(index_bytes)
        arch = _ARCH.get(platform.machine(), platform.machine())
        for desc in index.get("manifests", []) if isinstance(index, dict) else []:
            if not isinstance(desc, dict):
                continue
            plat = desc.get("platform") or {}
            ref_type = (desc.get("annotations") or {}).get("vnd.docker.reference.type")
            if plat.get("os") == "linux" and plat.get("architecture") == arch and ref_type is None:
                check_descriptor(desc, "platform manifest")
                if self.has(_blob_name(desc["digest"])):
                    return desc
        raise ImageError(f"the archive's image index has no linux/{arch} image in the archive")

    def _docker_names(self) -> dict[str, list[str]]:
        """config digest -> RepoTags, from a manifest.json beside the index (if any)."""
        if not self.has("manifest.json"):
            return {}
        out: dict[str, list[str]] = {}
        try:
            entries = self.read_json("manifest.json", "manifest.json")
        except ImageError:
            return {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("Config"), str):
                m = _BLOB_PATH.fullmatch(_clean(entry["Config"]))
                if m:
                    out["sha256:" + m[1]] = _valid_names(entry.get("RepoTags") or [])
        return out

    # -- docker save ------------------------------------------------------------

    def _docker_images(self) -> list[tuple[list[str], bytes, bytes]]:
        entries = self.read_json("manifest.json", "manifest.json")
        if not isinstance(entries, list):
            raise ImageError("the archive's manifest.json is not a list of images")
        images = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                    or not isinstance(entry.get("Layers"), list) \
                    or not all(isinstance(p, str) for p in entry["Layers"]):
                raise ImageError(f"the archive's manifest.json entry {i + 1} lacks Config or Layers")
            config_bytes = self.read(entry["Config"], "image config")
            layers = []
            for path in entry["Layers"]:
                info = self.member(path)
                head = self.tar.extractfile(info).read(8)
                try:
                    compression = detect_compression(head)
                except ImageError as e:
                    raise ImageError(f"the archive's layer {path} {e}") from None
                m = _BLOB_PATH.fullmatch(_clean(path))
                digest = "sha256:" + (m[1] if m else _sha256_of(self.tar.extractfile(info)))
                layers.append({"mediaType": LAYER_MEDIA_TYPE + ("+gzip" if compression == "gzip" else ""),
                               "digest": digest, "size": info.size, "_path": path})
            config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
                "layers": [{k: v for k, v in d.items() if k != "_path"} for d in layers],
            }
            self.paths.update({d["digest"]: d["_path"] for d in layers})
            manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            images.append((_valid_names(entry.get("RepoTags") or []), manifest_bytes, config_bytes))
        return images


def _names_from(annotations: dict) -> list[str]:
    for key in (NAME_ANNOTATION, REF_ANNOTATION):
        value = annotations.get(key)
        if isinstance(value, str) and value:
            names = _valid_names([value])
            if names:
                return names
    return []


def _valid_names(values: list) -> list[str]:
    """The store's short form of each name; a malformed one is an error naming it."""
    out = []
    for value in values:
        if not isinstance(value, str):
            raise ImageError(f"the archive names an image {value!r}, which is not a name")
        try:
            name = familiar_reference(value)
        except InvalidArgument as e:
            raise ImageError(f"the archive names an image {value[:80]!r}: {e}") from None
        if "@" in name:
            raise ImageError(f"the archive names an image by digest ({value[:80]}): a tag is needed")
        if name not in out:
            out.append(name)
    return out


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _sha256_of(f: BinaryIO) -> str:
    return hashlib.file_digest(f, "sha256").hexdigest()


# -- save ----------------------------------------------------------------------

def save(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    """Write the images ``names`` (references or ids) to ``out`` as one tar
    that ``docker load``, OCI tools and :func:`load` all read."""
    chosen: list[tuple[Image, list[str]]] = []
    for name in names:
        image = store.find(name)
        if image.ref.startswith(UNTAGGED):      # an untagged image, by id: saved with no name
            tags = []
        elif "@" in image.ref:            # name@digest: that name's tags of it
            repo = image.ref.partition("@")[0]
            tags = [t for t in store.tags_of(image) if t.rpartition(":")[0] == repo]
        elif image.ref == _normal(name):
            tags = [image.ref]
        else:                           # an image id: all its tags
            tags = [t for t in store.tags_of(image) if "@" not in t]
        if not tags and not image.ref.startswith(UNTAGGED):
            raise ImageError(f"{name} has no tag to be saved under (pulled by digest?): give it one first "
                             "(container-lab tag IMAGE NAME:TAG)")
        for img, t in chosen:
            if img.digest == image.digest:
                t.extend(x for x in tags if x not in t)
                break
        else:
            chosen.append((image, list(tags)))
    with store.reading():
        blobs: list[str] = []           # digests, in the order written
        index_entries, docker_entries, repositories = [], [], {}
        for image, tags in chosen:
            manifest, config = store.manifest_and_config(image)
            manifest_bytes = store.blob_path(image.digest).read_bytes()
            layer_digests = [d["digest"] for d in manifest["layers"]]
            for digest in [*layer_digests, image.id, image.digest]:
                if digest not in blobs:
                    blobs.append(digest)
            media = manifest.get("mediaType", MANIFEST_MEDIA_TYPE)
            if not tags:                # no name: an index entry without one, as docker writes it
                index_entries.append({"mediaType": media, "digest": image.digest, "size": len(manifest_bytes)})
            for tag in tags:
                r = parse_reference(tag)
                index_entries.append({
                    "mediaType": media, "digest": image.digest, "size": len(manifest_bytes),
                    "annotations": {NAME_ANNOTATION: qualified_reference(tag), REF_ANNOTATION: r.tag},
                })
                repositories.setdefault(r.name, {})[r.tag] = layer_digests[-1].removeprefix("sha256:") \
                    if layer_digests else image.id.removeprefix("sha256:")
            docker_entries.append({
                "Config": _blob_name(image.id),
                "RepoTags": tags or None,
                "Layers": [_blob_name(d) for d in layer_digests],
            })
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": index_entries}
        try:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_dir(tar, "blobs")
                _add_dir(tar, "blobs/sha256")
                for digest in blobs:
                    path = store.blob_path(digest)
                    with open(path, "rb") as f:
                        info = _info(_blob_name(digest), os.fstat(f.fileno()).st_size)
                        tar.addfile(info, f)
                for name, obj in (("index.json", index), ("manifest.json", docker_entries),
                                  ("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                                  ("repositories", repositories)):
                    data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
                    tar.addfile(_info(name, len(data)), io.BytesIO(data))
        except FileNotFoundError as e:
            raise ImageError(f"the store lacks a blob of an image ({e.filename}): remove the image and "
                             "load it again") from None


def _normal(name: str) -> str | None:
    try:
        return str(parse_reference(name))
    except InvalidArgument:
        return None


def save_to_file(store: ImageStore, names: list[str], path: str | Path) -> None:
    """:func:`save` into ``path``, through a temp file renamed into place
    (an error leaves no half-written archive)."""
    from engine.records import atomic_file

    path = Path(path)
    try:
        with atomic_file(path) as f:
            save(store, names, f)
    except OSError as e:
        raise ImageError(f"cannot write {path}: {e.strerror or e}") from None


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, FIXED_MTIME
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
    info.uname = info.gname = ""
    tar.addfile(info)


__all__ = ["load", "save", "save_to_file"]
