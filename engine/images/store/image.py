"""An image as the store hands it out: :class:`Image`, ready to be mounted
(its unpacked layers, bottom first, and the settings its config gives)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The keys of an OCI config's "config" object that the runtime uses, with the
# value each takes when the image leaves it out.
CONFIG_DEFAULTS = {"Env": [], "Cmd": [], "Entrypoint": [], "WorkingDir": "", "User": "", "Labels": {}}


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

