"""How much an image from elsewhere may take: the bounds on one layer and on
a whole image (:class:`Limits`, raised through ``CONTAINER_LAB_MAX_*``
variables), what an image's layers used so far (:class:`Used`), and the checks
that refuse an image before it fills the disk.

``load``, ``pull`` and the store's ``add_image`` apply them before a byte is
unpacked; :mod:`.extract` applies them again as each layer is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ImageError


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

