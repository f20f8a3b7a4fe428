"""The Mounts tab: the overlay spelled out (image layers, the writable layer,
its changes) and the mount table as the container sees it."""

from __future__ import annotations

from collections.abc import Sequence

from ..strings import tr
from ..table import Cell, Column, Row, Table, sized


def overlay_of(snapshot: dict | None) -> dict | None:
    """The root overlay's ``{lower, upper, work}`` (lower: top layer first), or None."""
    for m in (snapshot or {}).get("mounts") or []:
        if m.get("target") == "/" and m.get("overlay"):
            return m["overlay"]
    return None


def layer_name(path: str) -> str:
    """A layer directory as its short digest (the store names layers by sha256)."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return base[:12] if len(base) >= 32 and all(ch in "0123456789abcdef" for ch in base) else path


def mount_table(snapshot: dict | None, diff: Sequence[Sequence[str]] | None, lang: str,
                width: int | None = None) -> Table:
    """The overlay spelled out -- image layers (read-only), the writable layer,
    its changes (``docker diff``) -- then the mount table as the container sees it.
    ``width``: the headings are wrapped to it (else each is one line)."""
    from engine import explain

    def heading(text: str) -> list[Row]:
        """A section heading: wrapped to ``width``, never cut."""
        lines = explain.wrap(text, max(12, width)) if width else [text]
        return [Row((line,), style="section", span=True) for line in lines]

    rows: list[Row] = []
    overlay = overlay_of(snapshot)
    if overlay:
        rows += heading(tr("mnt.layers", lang))
        lower = overlay.get("lower") or []
        for n, path in enumerate(lower):
            rows.append(Row((Cell(tr("mnt.layer", lang, n=len(lower) - n), "dim"),
                             Cell(layer_name(path), "layer"), "", Cell(path, "dim")), key=f"layer:{n}"))
        rows += heading(tr("mnt.upper", lang))
        rows.append(Row((Cell(tr("mnt.writable", lang), "dim"), Cell("upper", "upper"), "",
                         Cell(overlay.get("upper", ""), "dim")), key="upper"))
    if diff is not None:
        rows += heading(tr("mnt.changes", lang))
        if not diff:
            rows.append(Row((Cell("  " + tr("mnt.no_changes", lang), "dim"),), span=True))
        for kind, path in diff:
            style = {"A": "added", "C": "changed-file", "D": "deleted"}.get(kind, "")
            rows.append(Row((Cell(f"{kind} {tr('mnt.change.' + kind, lang)}" if kind in "ACD" else kind, style),
                             Cell(path, style), "", ""), key=f"diff:{path}"))
    mounts = (snapshot or {}).get("mounts") or []
    if mounts:
        rows += heading(tr("mnt.table", lang))
        rows.append(Row(tuple(tr(k, lang) for k in ("col.fstype", "col.target", "col.source", "col.options")),
                        style="subheader"))
    for m in mounts:
        rows.append(Row((Cell(m.get("fstype", ""), "overlay" if m.get("fstype") == "overlay" else ""),
                         Cell(m.get("target", ""), "target"), m.get("source", ""), Cell(m.get("options", ""), "dim")),
                        key=f"mount:{m.get('id')}"))
    cols = (Column(""), Column(""), Column("", priority=2), Column("", priority=1, flex=True, min_width=12))
    note = tr("mnt.note", lang) if overlay else (tr("mnt.none", lang) if snapshot is not None and not mounts else "")
    return Table(sized(cols, rows, cap=48), tuple(rows), note, header=False)
