"""What ``image inspect`` and ``history`` show: an image described from its config.

An image's config is its metadata: the default command, environment and
working directory (``Config``), the platform, ``rootfs.diff_ids`` (one per
layer, bottom first) and ``history`` -- one entry per build step, newest
last; a step that changed no file (``ENV``, ``CMD`` ...) is marked
``empty_layer`` and owns no layer. Both views follow Docker's field names.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from engine.images.layers import paired_history
from engine.images.store import Image, ImageStore
from engine.images.store.names import UNTAGGED


def layer_size(path: Path) -> int:
    """Bytes of the files of an unpacked layer (what ``docker history`` shows as SIZE)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    total += st.st_size
    return total


def inspect_record(store: ImageStore, image: Image) -> dict:
    """Docker's ``image inspect`` object for ``image``."""
    manifest, config = store.manifest_and_config(image)
    names = store.tags_of(image) or ([] if image.ref.startswith(UNTAGGED) else [image.ref])
    return {
        "Id": image.id,
        "RepoTags": [t for t in names if "@" not in t],
        "RepoDigests": sorted({t if "@" in t else f"{t.rpartition(':')[0]}@{image.digest}" for t in names}),
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": image.size,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": image.lowerdir()}},
        "RootFS": {"Type": "layers", "Layers": list(config["rootfs"]["diff_ids"])},
        "Descriptor": {"mediaType": manifest.get("mediaType", ""), "digest": image.digest,
                       "size": store.blob_path(image.digest).stat().st_size},
    }


def history(store: ImageStore, image: Image) -> list[dict]:
    """The image's build steps, newest first: ID (the image's id on the
    newest, ``<missing>`` below, as Docker shows), CreatedAt, CreatedBy,
    Size (bytes of the layer the step made; 0 for an empty one), Comment."""
    _manifest, config = store.manifest_and_config(image)
    layers = list(image.layers)
    rows, i = [], 0
    for h in paired_history(config, len(layers)):
        size = 0
        if not h.get("empty_layer"):
            size = layer_size(layers[i])
            i += 1
        rows.append({"CreatedAt": str(h.get("created", "")), "CreatedBy": str(h.get("created_by", "")),
                     "Size": size, "Comment": str(h.get("comment", ""))})
    rows.reverse()
    for n, row in enumerate(rows):
        row["ID"] = image.id if n == 0 else "<missing>"
    return rows


def since(created: str, now: datetime | None = None) -> str:
    """``2 weeks ago`` for an RFC 3339 time, as Docker says it; '' if unreadable."""
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        return f"{int(seconds)} seconds ago"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute ago"
    if minutes < 60:
        return f"{int(minutes)} minutes ago"
    hours = minutes / 60
    if hours < 2:
        return "About an hour ago"
    if hours < 48:
        return f"{int(hours)} hours ago"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days ago"
    if days < 60:
        return f"{int(days / 7)} weeks ago"
    if days < 365 * 2:
        return f"{int(days / 30)} months ago"
    return f"{int(days / 365)} years ago"
