"""What an image from elsewhere must look like: the OCI and Docker media
types read, the bounds on a manifest, and the checks of a manifest, its
config and their descriptors against each other (:func:`_check_image`)
before a byte of a layer is read. ``load`` (:mod:`engine.images.archive`) reads the same
constants.
"""

from __future__ import annotations

import hashlib

from engine.errors import ImageError
from engine.images.reference import DIGEST_RE
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
