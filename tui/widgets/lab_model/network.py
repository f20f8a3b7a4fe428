"""The Network tab: the interfaces, addresses and routes of the container's
network namespace, and a note on whose namespace it is."""

from __future__ import annotations

from ..strings import tr
from ..table import Cell, Column, Row, Table, sized
from .formatting import human_bytes


def network_table(snapshot: dict | None, lang: str) -> Table:
    """Interfaces, addresses and routes of the container's network namespace.
    Copes with a snapshot that has no ``network`` (an older engine) or None."""
    snap = snapshot or {}
    net = snap.get("network")
    if not isinstance(net, dict):
        why = snap.get("network_error")
        note = tr("net.unavailable", lang, why=why) if why and snap.get("status") == "running" else ""
        return Table((Column(tr("col.if", lang)),), (), note)
    def heading(*keys: str) -> Row:
        return Row(tuple(tr(k, lang) if k else "" for k in keys), style="subheader")

    rows: list[Row] = [Row((tr("net.interfaces", lang),), style="section", span=True),
                       heading("col.if", "col.kind", "col.if_state", "col.mtu", "col.mac", "col.rxtx")]
    for i in net.get("interfaces") or []:
        up = i.get("up")
        state = tr("if.up", lang) if up else tr("if.down", lang)
        kind = i.get("kind") or i.get("type") or ""
        rows.append(Row((Cell(i.get("name", "?"), "if"), kind, Cell(state, "ok" if up else "warn"),
                         str(i.get("mtu", "")), Cell(i.get("mac") or "", "dim"),
                         f"{human_bytes(i.get('rx_bytes'))} / {human_bytes(i.get('tx_bytes'))}"),
                        key=f"if:{i.get('index')}"))
    rows.append(Row((tr("net.addresses", lang),), style="section", span=True))
    rows.append(heading("col.if", "col.family", "col.address", "", "col.scope", ""))
    for a in net.get("addresses") or []:
        rows.append(Row((Cell(a.get("interface") or str(a.get("index", "")), "if"), a.get("family", ""),
                         Cell(f"{a.get('address')}/{a.get('prefixlen')}", "address"), "",
                         Cell(a.get("scope") or "", "dim"), ""),
                        key=f"addr:{a.get('address')}/{a.get('prefixlen')}"))
    rows.append(Row((tr("net.routes", lang),), style="section", span=True))
    routes = net.get("routes") or []
    if routes:
        rows.append(heading("col.dev", "col.family", "col.dst", "col.gateway", "col.scope", "col.prefsrc"))
    if not routes:
        rows.append(Row((Cell("  " + tr("net.no_routes", lang), "dim"),), span=True))
    for r in routes:
        via = r.get("gateway") or ""
        rows.append(Row((Cell(r.get("dev") or "", "if"), r.get("family", ""),
                         Cell(r.get("dst") or "", "address"), via, Cell(r.get("scope") or "", "dim"),
                         r.get("prefsrc") or ""),
                        key=f"route:{r.get('dst')}:{r.get('dev')}:{r.get('metric')}"))
    # Three lists share the columns; each section has its own heading row.
    cols = (Column(""), Column("", priority=2), Column(""), Column("", priority=3),
            Column("", priority=4), Column("", priority=5))
    ifaces = net.get("interfaces") or []
    if net.get("entered") is False:
        note = tr("net.note.host", lang)
    elif all((i.get("type") == "loopback" or i.get("name") == "lo") for i in ifaces):
        note = tr("net.note.none", lang)
    else:
        note = tr("net.note.own", lang)
    return Table(sized(cols, rows, cap=40), tuple(rows), note, header=False)
