"""An image as a build holds it between steps: the whole OCI config and the
layer descriptors (:class:`State`), and how it goes into the store.

Every state is stored the one way images from elsewhere are:
:meth:`ImageStore.add_image` -- each new layer blob checked against its
digest and diff_id and unpacked by the store's extractor, all published at
once under the store's lock. A new layer goes in with a name of the
build's own (:func:`store_state`), which the build drops again at its end
(:meth:`ImageStore.untag`); the final image goes in under its tags.

The config is written with sorted keys and no spaces, so the same state
always gives the same bytes, the same image id (the config's sha256) and
the same manifest digest: an unchanged rebuild gives the image it gave before.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import ImageError
from engine.images.store import CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPES, MANIFEST_MEDIA_TYPE

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def now() -> str:
    """The time, RFC 3339 in UTC, as configs and history entries record it."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class State:
    """An image being built: its OCI config and layer descriptors."""

    config: dict
    layers: list[dict]
    key: str = ""                 # the build cache's key of how it was reached
    stored: str | None = None     # a store name whose image has exactly these layers
    extra: dict = field(default_factory=dict)

    def copy(self) -> State:
        return State(copy.deepcopy(self.config), copy.deepcopy(self.layers), self.key, self.stored)

    @property
    def settings(self) -> dict:
        """The config's ``config`` object (Env, Cmd, WorkingDir ...), made if missing."""
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.settings.get("Env") or []:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def set_env(self, key: str, value: str) -> None:
        env = [e for e in self.settings.get("Env") or [] if e.partition("=")[0] != key]
        self.settings["Env"] = env + [f"{key}={value}"]

    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    def add_history(self, created_by: str, *, empty: bool, comment: str = "", when: str | None = None) -> None:
        when = when or now()
        entry = {"created": when, "created_by": created_by}
        if comment:
            entry["comment"] = comment
        if empty:
            entry["empty_layer"] = True
        self.config.setdefault("history", []).append(entry)
        self.config["created"] = when

    def add_layer(self, descriptor: dict, diff_id: str) -> None:
        self.layers.append(descriptor)
        self.config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
        self.stored = None

    def config_bytes(self) -> bytes:
        return json.dumps(self.config, sort_keys=True, separators=(",", ":")).encode()

    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config_bytes()).hexdigest()

    def manifest_bytes(self) -> bytes:
        config = self.config_bytes()
        return json.dumps({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": self.layers,
        }, sort_keys=True, separators=(",", ":")).encode()


def scratch() -> State:
    """``FROM scratch``: no layer; PATH set, as BuildKit sets it."""
    return State({
        "architecture": _ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Env": [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }, [], key="scratch")


def _oci_layer(desc: dict) -> dict:
    """A layer descriptor under its OCI media type (a Docker one names the same bytes)."""
    kind = LAYER_MEDIA_TYPES.get(desc.get("mediaType"), "none")
    media = LAYER_MEDIA_TYPE + ("+gzip" if kind == "gzip" else "")
    if "nondistributable" in str(desc.get("mediaType")):
        media = desc["mediaType"]
    return {"mediaType": media, "digest": desc["digest"], "size": desc["size"]}


def from_image(store, image) -> State:
    """The state of a stored image (its whole config, its layers)."""
    manifest, config = store.manifest_and_config(image)
    config = copy.deepcopy(config)
    config.setdefault("config", {})
    config.setdefault("history", [])
    return State(config, [_oci_layer(d) for d in manifest["layers"]], key=f"image:{image.id}")


def from_digest(store, digest: str) -> State:
    """The state of the image whose manifest is ``digest``, tagged or not
    (a container's image after ``rmi -f``, while its blobs last)."""
    with store.reading():
        try:
            manifest = json.loads(store.blob_path(digest).read_bytes())
            config = json.loads(store.blob_path(manifest["config"]["digest"]).read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            raise ImageError(f"the image {digest[:19]}... is no longer in the store (removed with rmi?)") from None
    config.setdefault("config", {})
    config.setdefault("history", [])
    return State(config, [_oci_layer(d) for d in manifest["layers"]], key=f"image:{manifest['config']['digest']}")


def store_state(store, state: State, names: list[str], new_blobs: dict[str, Path] | None = None,
                warn=None):
    """Put ``state`` into the store as an image named ``names`` (none: kept
    untagged; its new layer blobs in ``new_blobs``: digest -> file); the stored Image."""
    image = store.add_image(names, state.manifest_bytes(), state.config_bytes(), dict(new_blobs or {}),
                            warn=warn)
    state.stored = image.ref
    return image
