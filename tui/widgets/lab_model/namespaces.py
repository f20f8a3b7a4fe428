"""The Namespaces tab: each namespace kind, the container's inode beside the
host's, isolated or shared (with whom), and which changed lately."""

from __future__ import annotations

from engine.namespaces import KINDS as NAMESPACE_ORDER

from ..strings import tr
from ..table import Cell, Column, Row, Table, sized


def namespace_state(entry: dict) -> tuple:
    """What of one namespace entry is compared between refreshes. A namespace
    shared with the host is shared with every container that has the host's
    too, so which other containers those are is not news."""
    if entry.get("shared_with_host"):
        return (entry.get("inode"), True, ())
    return (entry.get("inode"), False, tuple(entry.get("shared_with") or ()))


def namespace_changes(before: dict | None, after: dict | None) -> set[str]:
    """The namespace kinds whose inode or sharing differs between two snapshots
    of the same container (none across different containers)."""
    if not before or not after or before.get("id") != after.get("id"):
        return set()
    old, new = before.get("namespaces") or {}, after.get("namespaces") or {}
    if not old or not new:
        return set()
    return {k for k in new if k in old and namespace_state(old[k]) != namespace_state(new[k])}


def namespace_status(entry: dict, lang: str) -> Cell:
    """"isolated" or "shared with host" / "shared with db" (with its style)."""
    others = entry.get("shared_with") or []
    if entry.get("shared_with_host"):
        return Cell(tr("ns.shared_host", lang), "shared")
    if others:
        return Cell(tr("ns.shared_with", lang, names=", ".join(others)), "shared")
    return Cell(tr("ns.isolated", lang), "isolated")


def namespace_table(snapshot: dict | None, lang: str, *, changed: set | frozenset = frozenset()) -> Table:
    """Each namespace kind: the container's inode beside the host's, isolated or
    shared (with the host or other containers), what it isolates. ``changed``:
    kinds that changed lately (highlighted). Key: the kind."""
    spaces = (snapshot or {}).get("namespaces") or {}
    kinds = [k for k in NAMESPACE_ORDER if k in spaces] + sorted(k for k in spaces if k not in NAMESPACE_ORDER)
    rows = []
    for kind in kinds:
        e = spaces[kind]
        status = namespace_status(e, lang)
        if kind in changed:
            status = Cell(f"{status.text} · {tr('ns.changed', lang)}", status.style)
        same = e.get("inode") == e.get("host")
        rows.append(Row((Cell(kind, "kind"), Cell(str(e.get("inode", "?")), "shared" if same else "isolated"),
                         Cell(str(e.get("host") or "?"), "dim"), status,
                         tr(f"ns.what.{kind}", lang) if f"ns.what.{kind}" in _NS_WHAT else ""),
                        style="changed" if kind in changed else "", key=kind))
    cols = (Column(tr("col.ns", lang)), Column(tr("col.ns_container", lang), justify="right"),
            Column(tr("col.ns_host", lang), justify="right", priority=1),
            Column(tr("col.ns_status", lang)),
            Column(tr("col.ns_what", lang), priority=2, flex=True, min_width=12))
    note = ""
    if rows:
        ref = (snapshot or {}).get("reference", "")
        where = tr("ns.ref.host", lang) if "PID 1" in ref else tr("ns.ref.self", lang)
        note = tr("ns.note", lang, reference=where)
    elif snapshot is not None:
        note = tr("ns.none", lang)
    return Table(sized(cols, rows), tuple(rows), note)


_NS_WHAT = {f"ns.what.{k}" for k in NAMESPACE_ORDER}
