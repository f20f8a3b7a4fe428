"""The Layers tab: the container's layers as a stack, top first -- its own
writable layer (copy-on-write: what it changed), then its image's layers,
each with the build step that made it, its size and what it added (A),
changed (C) and deleted (D, a whiteout that hides the file below). Layers
are numbered from 1 at the bottom, as the Mounts tab numbers them.

The data is :func:`engine.images.layers.container_layers`'s: bottom first,
the writable layer last (``id == "writable"``)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from ..strings import tr
from ..table import Cell, Column, Row, Table, sized
from .formatting import human_bytes

SHOWN_WRITABLE = 12            # paths listed under the writable layer, the rest counted
SHOWN_IMAGE = 5                # under each image layer
_STYLE = {"A": "added", "C": "changed-file", "D": "deleted"}
_ORDER = {"D": 0, "C": 1, "A": 2}       # when a layer has too many: whiteouts first


def _counts(changes: Sequence[Sequence[str]]) -> str:
    n = {"A": 0, "C": 0, "D": 0}
    for kind, _path in changes:
        n[kind] = n.get(kind, 0) + 1
    return f"+{n['A']} ~{n['C']} -{n['D']}"


def _shown(changes: Sequence[Sequence[str]], limit: int) -> tuple[list[Sequence[str]], int]:
    """At most ``limit`` changes, whiteouts first (in path order), and how many are left out."""
    if len(changes) <= limit:
        return list(changes), 0
    picked = {tuple(c) for c in heapq.nsmallest(limit, changes, key=lambda c: (_ORDER.get(c[0], 3), c[1]))}
    return [c for c in changes if tuple(c) in picked], len(changes) - limit


def layer_table(layers: Sequence[dict] | None, lang: str, *, error: str | None = None) -> Table:
    """The stack of layers, top first (see the module docstring); ``None``:
    not read yet; ``error``: why they could not be read."""
    cols = (Column(""), Column("", justify="right"), Column("", priority=1),
            Column("", priority=0, flex=True, min_width=12))
    if error:
        return Table(cols, (), tr("lyr.error", lang, error=error), header=False)
    if layers is None:
        return Table(cols, (), tr("lyr.loading", lang), header=False)
    rows: list[Row] = []
    top_first = list(reversed(layers))
    writable = [layer for layer in top_first if layer.get("id") == "writable"]
    image = [layer for layer in top_first if layer.get("id") != "writable"]
    for layer in writable:
        rows.append(Row((tr("mnt.upper", lang),), style="section", span=True))
        rows += _layer_rows(layer, Cell(tr("lyr.writable", lang), "upper"), lang, SHOWN_WRITABLE,
                            Cell(tr("lyr.writable.what", lang), "dim"))
    if image:
        rows.append(Row((tr("mnt.layers", lang),), style="section", span=True))
    for n, layer in enumerate(image):
        created_by = " ".join(str(layer.get("created_by", "")).split())
        if layer.get("empty"):
            rows.append(Row((Cell(tr("lyr.no_layer", lang), "dim"), "", "", Cell(created_by, "dim")),
                            key=f"step:{n}"))
            continue
        rows += _layer_rows(layer, Cell(tr("mnt.layer", lang, n=(layer.get("index") or 0) + 1), "layer"), lang,
                            SHOWN_IMAGE, created_by)
    note = tr("lyr.note", lang) if rows else tr("lyr.none", lang)
    return Table(sized(cols, rows, cap=48), tuple(rows), note, header=False)


def _layer_rows(layer: dict, name: Cell, lang: str, limit: int, what) -> list[Row]:
    """A layer's line (name, size, counts, step) and its changed paths under it."""
    changes = layer.get("changes") or []
    key = "layer:writable" if layer.get("id") == "writable" else f"layer:{layer.get('index')}"
    rows = [Row((name, human_bytes(layer.get("size", 0)), _counts(changes), what), key=key)]
    if not changes:
        rows.append(Row((Cell("  " + tr("mnt.no_changes", lang), "dim"),), span=True, key=f"{key}:none"))
    opaque = set(layer.get("opaque") or ())
    shown, more = _shown(changes, limit)
    for kind, path in shown:
        style = _STYLE.get(kind, "")
        text = path + ("  " + tr("lyr.opaque", lang) if path in opaque else "")
        rows.append(Row((Cell(f"  {kind} {tr('mnt.change.' + kind, lang)}" if kind in _STYLE else kind, style),
                         "", "", Cell(text, style)), key=f"{key}:{path}"))
    if more:
        rows.append(Row((Cell("  " + tr("lyr.more", lang, n=more), "dim"),), span=True, key=f"{key}:more"))
    return rows
