"""Removing images: which index entries a removal drops (:func:`drop`, for
``rmi``; :func:`prune`, for ``image prune``) and then deleting what no
entry and no container still needs (:func:`sweep`) -- blobs, unpacked
layers, their recorded sizes, and the id-shifted copies made for private
user namespaces. Called with the store's exclusive lock held (by
:meth:`.ImageStore.delete`, :meth:`.ImageStore.prune` and
:meth:`.ImageStore.collect_garbage`).

The safety rule is the caller's ``used`` (image id -> a container that
uses it): an image a container uses is never dropped from the index (only
its names, with ``force``); its layers are in ``keep`` besides.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images.reference import familiar_reference, parse_reference

from .names import is_untagged, untagged_key


def image_id(store, digest: str) -> str | None:
    """The id (config digest) of the manifest ``digest``; None if it is damaged."""
    try:
        return store._read_image(digest)[0]["config"]["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _entries_of(store, repos: dict[str, str], name: str) -> tuple[list[str], bool]:
    """The index keys ``name`` removes, and whether it named an image id:
    a reference's own entries (``app``; ``app@sha256:...``: app's tags of that
    digest), else every entry of the image whose id ``name`` starts
    (``1a2b``, ``sha256:1a2b...``)."""
    from .imagestore import _matches

    try:
        r = parse_reference(familiar_reference(name))
    except InvalidArgument:
        r = None
    if r is not None:
        keys = [k for k, d in repos.items() if not is_untagged(k) and _matches(r, k, d)]
        if keys:
            return keys, False
    hexpart = name.removeprefix("sha256:")
    if not (0 < len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)):
        raise ImageNotFound(f"No such image: {r or name}")
    ids = {d: image_id(store, d) for d in set(repos.values())}
    found = {i for i in ids.values() if i and i.removeprefix("sha256:").startswith(hexpart)}
    if len(found) > 1:
        raise ImageError(f"the image id prefix {name} is ambiguous: {len(found)} images start with it")
    if not found:
        raise ImageNotFound(f"No such image: {name}")
    wanted = found.pop()
    return [k for k, d in repos.items() if ids[d] == wanted], True


def drop(store, repos: dict[str, str], name: str, *, used: Mapping[str, str], force: bool) -> dict:
    """``rmi name`` in the index ``repos`` (changed in place): its names go;
    an image left with none is dropped too -- or kept untagged when a
    container uses it (only with ``force``). Returns ``untagged`` (names)
    and ``deleted`` (image ids) in docker's order."""
    keys, by_id = _entries_of(store, repos, name)
    names = sorted(k for k in keys if not is_untagged(k))
    if by_id and len(names) > 1 and not force:
        raise ImageError(f"conflict: unable to delete {name} (must be forced) - image is referenced in "
                         f"multiple repositories ({', '.join(names)})")
    digests = {repos[k] for k in keys}
    left = {k: d for k, d in repos.items() if k not in keys}
    orphans = [d for d in sorted(digests) if d not in left.values() or
               all(is_untagged(k) for k, v in left.items() if v == d)]
    for d in orphans:
        ident = image_id(store, d)
        user = used.get(ident) if ident else None
        if user and not force:
            raise ImageError(f"conflict: unable to remove image {name} (must force): container {user} uses it")
    deleted = []
    for k in keys:
        del repos[k]
    for d in orphans:
        ident = image_id(store, d)
        if ident and used.get(ident):
            repos[untagged_key(d)] = d          # a container's: kept, dangling
        else:
            repos.pop(untagged_key(d), None)
            if ident and ident not in deleted:
                deleted.append(ident)
    return {"untagged": names, "deleted": deleted}


def prune(store, repos: dict[str, str], *, used: Mapping[str, str], every: bool) -> dict:
    """``image prune`` in the index ``repos`` (changed in place): drop every
    dangling image (``every``: every image) that no container uses.
    Returns ``untagged`` and ``deleted`` as :func:`drop` does."""
    untagged, deleted = [], []
    for d in sorted(set(repos.values())):
        keys = [k for k, v in repos.items() if v == d]
        names = [k for k in keys if not is_untagged(k)]
        ident = image_id(store, d)
        if ident is None or used.get(ident) or (names and not every):
            continue                            # damaged (rmi it by name), in use, or not dangling
        for k in keys:
            del repos[k]
        untagged += sorted(names)
        if ident not in deleted:
            deleted.append(ident)
    return {"untagged": untagged, "deleted": deleted}


def sweep(store, repos: dict[str, str], keep: frozenset[str] | set[str] = frozenset()) -> int:
    """Delete every blob and layer that no manifest in ``repos`` reaches,
    except the layer directories named in ``keep``; return the bytes freed."""
    blobs, layers = set(), {f"sha256:{name}" for name in keep}
    freed = 0
    for digest in set(repos.values()):
        try:
            manifest, config = store._read_image(digest)
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # cannot tell what a damaged image needs: delete nothing
        blobs |= {digest, manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
        layers |= set(config["rootfs"]["diff_ids"])
    for blob in store.blobs.iterdir():
        if "sha256:" + blob.name not in blobs:
            freed += blob.stat().st_size
            blob.unlink()
    for d in store.layers.iterdir():
        if "sha256:" + d.name not in layers:
            freed += store.layer_size(d)
            # Out of sight first, so a crash mid-delete leaves debris in
            # tmp/ (cleared by the next writer), never a half layer.
            doomed = Path(tempfile.mkdtemp(dir=store.tmp)) / d.name
            os.rename(d, doomed)
            shutil.rmtree(doomed.parent)
    for f in store.sizes.iterdir():
        if "sha256:" + f.name not in layers:
            f.unlink()
    shifted = store.root / "userns"
    for d in (shifted.glob("*/*") if shifted.is_dir() else ()):
        if "sha256:" + d.name not in layers:
            doomed = Path(tempfile.mkdtemp(dir=store.tmp)) / d.name
            os.rename(d, doomed)
            shutil.rmtree(doomed.parent)
    return freed
