"""An image's layers one by one, and what each changed: ``image layers``.

An image is a stack of layers. Each layer is a directory of files (the
store keeps them unpacked, an overlayfs lowerdir each) that holds only what
its build step changed, relative to the layers below:

- a path that no layer below shows is *added* (``A``);
- a path that a layer below shows, held again here, is *changed* (``C``):
  the whole file is copied into this layer, even to change one byte
  (copy-on-write); a directory is changed when anything under it is;
- a path deleted by this step is a *whiteout* (``D``): overlayfs's 0/0
  character device (the OCI tar's ``.wh.NAME`` entry as the unpacker wrote
  it), or, in a container's writable layer made inside another overlay, an
  empty file marked ``overlay.whiteout``. The file below is still there,
  hidden -- deleting never makes an image smaller;
- an *opaque* directory (``overlay.opaque=y``) hides everything below it
  under that path: a directory deleted and made again.

The changes are found by walking each layer once (``os.scandir`` of each
directory, opened with ``openat2`` inside the layer) against
a tree of what the layers below show -- nested dicts, name -> dict for a
directory, None for anything else -- updated as each layer is applied, the
way overlayfs merges them. A container's writable layer (its upperdir) is
compared with the tree of its image, which :func:`image_stack` returns so a
caller that looks again (the app's lab panel) walks the image only once.

Each layer is paired with the history entry of the step that made it, as
``history`` pairs them; the steps that changed no file (``ENV``, ``CMD``
...) come in order, with no layer (``empty``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from engine.errors import EngineError
from engine.images.store import Image, ImageStore
from engine.images.unpack import is_opaque, is_whiteout, is_xattr_whiteout
from engine.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

# Mount points the runtime makes in a container's writable layer when the
# image lacks them: never a change (the build's layers leave them out too).
RUNTIME_DIRS = ("proc", "sys", "dev")
RUNTIME_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf")

WRITABLE = "writable"            # the id of a container's writable layer
_IN_LAYER = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS


class Layer(TypedDict):
    """One row of ``image layers``: a build step and the layer it made (if any)."""

    index: int | None            # the layer's place, 0 = bottom; None for a step with no layer
    id: str                      # the layer's diff_id; "writable" for a container's; "" for none
    created_by: str              # the instruction (history's CREATED BY)
    created: str                 # RFC 3339
    comment: str
    empty: bool                  # a step that changed no file (ENV, CMD ...): no layer
    size: int                    # bytes of the layer's files
    changes: list[tuple[str, str]]   # (A|C|D, absolute path), sorted by path
    opaque: list[str]            # directories whose lower contents this layer hides


def counts(layer: Layer) -> dict[str, int]:
    """How many paths the layer added, changed and deleted: ``{"A": n, "C": n, "D": n}``."""
    out = {"A": 0, "C": 0, "D": 0}
    for kind, _path in layer["changes"]:
        out[kind] += 1
    return out


@dataclass
class Stack:
    """An image's layers, as :func:`image_stack` read them, and what they show merged."""

    layers: list[Layer]
    tree: dict = field(repr=False)   # the merged tree of every layer (see the module docstring)


def paired_history(config: dict, n_layers: int) -> list[dict]:
    """The config's history entries, one per build step, bottom first, each
    with ``empty_layer`` telling whether it owns a layer. A history that does
    not match the layers (or none) becomes one entry per layer, as ``history`` shows it."""
    entries = [h for h in config.get("history") or [] if isinstance(h, dict)]
    if sum(1 for h in entries if not h.get("empty_layer")) != n_layers:
        return [{"created": config.get("created", "")} for _ in range(n_layers)]
    return entries


def layer_changes(root: str | Path, tree: dict, *, apply: bool = True, upper: bool = False,
                  sizes: bool = True) -> tuple[list[tuple[str, str]], list[str], int]:
    """The changes the layer directory ``root`` makes to ``tree`` (what the
    layers below show): ``(changes, opaque directories, bytes of its files)``.
    ``apply``: update ``tree`` to show this layer on top (else it is only
    read). ``upper``: ``root`` is a container's writable layer (the runtime's
    mount points are left out, and an ``overlay.whiteout`` file is a whiteout).
    ``sizes=False``: the bytes are not counted (0), and a file or a
    directory is told by its directory entry's type, with no ``stat``.

    A running container may change its writable layer while it is read: each
    directory is opened inside ``root`` with no symlink followed
    (``openat2``), so a directory swapped for a symlink is never walked."""
    changes: list[tuple[str, str]] = []
    opaque: list[str] = []
    size = 0
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return changes, opaque, size
    stack: list[tuple[str, dict]] = [("", tree)]
    try:
        while stack:
            rel, below = stack.pop()
            try:
                fd = openat2(root_fd, rel[1:] or ".", os.O_RDONLY | os.O_DIRECTORY, resolve=_IN_LAYER)
            except OSError:
                continue                            # gone, or no longer a directory
            try:
                with os.scandir(fd) as it:
                    entries = sorted(it, key=lambda e: e.name)
                here = f"/proc/self/fd/{fd}/"       # its entries' xattrs, read without following them
                for e in entries:
                    path = f"{rel}/{e.name}"
                    try:
                        st = e.stat(follow_symlinks=False) if sizes or not _plain(e) else None
                        is_dir = stat.S_ISDIR(st.st_mode) if st is not None else e.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    if st is not None and (is_whiteout(st) or (upper and is_xattr_whiteout(here + e.name, st))):
                        changes.append(("D", path))
                        if apply:
                            below.pop(e.name, None)
                        continue
                    there = e.name in below
                    if is_dir:
                        if upper and not rel and e.name in RUNTIME_DIRS and _empty(fd, e.name):
                            continue
                        hides = is_opaque(here + e.name)
                        if hides:
                            opaque.append(path)
                        changes.append(("C" if there else "A", path))
                        was = below.get(e.name)
                        child = was if isinstance(was, dict) and not hides else {}
                        if apply:
                            below[e.name] = child
                        stack.append((path, child))
                        continue
                    if st is not None and upper and stat.S_ISREG(st.st_mode) and st.st_size == 0 \
                            and path[1:] in RUNTIME_FILES:
                        continue
                    changes.append(("C" if there else "A", path))
                    if apply:
                        below[e.name] = None
                    if st is not None and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                        size += st.st_size
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    changes.sort(key=lambda c: c[1])
    opaque.sort()
    return changes, opaque, size


def _plain(e: os.DirEntry) -> bool:
    """A directory, a regular file or a symlink, told by the directory entry alone
    (no whiteout: that is a character device, or, in a writable layer, needs its xattrs)."""
    return e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False) or e.is_symlink()


def _empty(dir_fd: int, name: str) -> bool:
    """Whether the directory ``name`` in ``dir_fd`` is empty (opened without following a symlink)."""
    try:
        fd = openat2(dir_fd, name, os.O_RDONLY | os.O_DIRECTORY, resolve=_IN_LAYER)
    except OSError:
        return False
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def stack_of(layer_dirs: Sequence[str | Path], config: dict,
             size_of: Callable[[Path], int] | None = None) -> Stack:
    """The layers ``layer_dirs`` (bottom first) paired with ``config``'s history.
    ``size_of``: a layer's bytes as the store recorded them (then its files
    are not stat'ed one by one); else they are counted on the walk."""
    tree: dict = {}
    rows: list[Layer] = []
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    i = 0
    for h in paired_history(config, len(layer_dirs)):
        row = Layer(index=None, id="", created_by=str(h.get("created_by", "")), created=str(h.get("created", "")),
                    comment=str(h.get("comment", "")), empty=bool(h.get("empty_layer")), size=0,
                    changes=[], opaque=[])
        if not row["empty"]:
            changes, opaque, size = layer_changes(layer_dirs[i], tree, sizes=size_of is None)
            if size_of is not None:
                size = size_of(Path(layer_dirs[i]))
            row.update(index=i, id=diff_ids[i] if i < len(diff_ids) else "", changes=changes, opaque=opaque,
                       size=size)
            i += 1
        rows.append(row)
    return Stack(rows, tree)


def image_stack(store: ImageStore, image: Image) -> Stack:
    """``image``'s layers, bottom first, each with the step that made it and its changes."""
    _manifest, config = store.manifest_and_config(image)
    with store.reading():           # no layer removed while it is read
        return stack_of(image.layers, config, store.layer_size)


def image_layers(store: ImageStore, image: Image) -> list[Layer]:
    """``image``'s build steps, bottom first: each layer and what it changed (see :func:`image_stack`)."""
    return image_stack(store, image).layers


def writable_layer(upper: str | Path, stack: Stack) -> Layer:
    """A container's writable layer (its upperdir) compared with its image's ``stack``."""
    changes, opaque, size = layer_changes(upper, stack.tree, apply=False, upper=True)
    return Layer(index=len([r for r in stack.layers if not r["empty"]]), id=WRITABLE, created_by="", created="",
                 comment="", empty=False, size=size, changes=changes, opaque=opaque)


def container_stack(store: ImageStore, record: dict) -> Stack:
    """The image part of a container's layers (``record``: its inspect record):
    the layers it runs on, with its image's history while the store still has
    that image (else one row per layer, no instruction)."""
    layer_dirs = list((record.get("rootfs") or {}).get("layers") or record["image"].get("layers") or [])
    config: dict = {}
    try:
        image = store.find(record["image"]["id"])
        if len(image.layers) == len(layer_dirs):
            config = store.manifest_and_config(image)[1]
    except EngineError:             # removed (rmi -f) or damaged: the layers without their steps
        config = {}
    with store.reading():
        return stack_of(layer_dirs, config, store.layer_size)


def container_layers(store: ImageStore, record: dict, cache: dict | None = None) -> list[Layer]:
    """A container's image layers, bottom first, and its writable layer on top.
    ``cache``: a dict kept by the caller, where the image part is kept by
    image id and layers (an image's layers never change)."""
    key = (record["image"].get("id", ""), tuple((record.get("rootfs") or {}).get("layers") or ()))
    stack = cache.get(key) if cache is not None else None
    if stack is None:
        stack = container_stack(store, record)
        if cache is not None:
            cache[key] = stack
    upper = (record.get("rootfs") or {}).get("upper")
    return [*stack.layers, writable_layer(upper, stack)] if upper else list(stack.layers)
