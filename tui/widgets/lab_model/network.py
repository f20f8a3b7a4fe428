"""The Network tab: the networks the container is plugged into (its end and
the host's end of each veth pair, the bridge, published ports, the other
containers there), the interfaces, addresses and routes of its network
namespace, and a note on whose namespace it is."""

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

    rows: list[Row] = plugged_rows(snap.get("settings"), lang, heading)
    rows += [Row((tr("net.interfaces", lang),), style="section", span=True),
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
    plugged = any(n.get("IPAddress") for n in ((snap.get("settings") or {}).get("Networks") or {}).values())
    if net.get("entered") is False:
        note = tr("net.note.host", lang)
    elif plugged:
        note = tr("net.note.bridge", lang)
    elif all((i.get("type") == "loopback" or i.get("name") == "lo") for i in ifaces):
        note = tr("net.note.none", lang)
    else:
        note = tr("net.note.own", lang)
    return Table(sized(cols, rows, cap=40), tuple(rows), note, header=False)


def plugged_rows(settings: dict | None, lang: str, heading) -> list[Row]:
    """Each network the container is on: its end of the veth pair inside
    (eth0, address) and the host's end on the network's bridge; the ports it
    publishes; the other containers on that network. Empty when it is on none."""
    nets = {name: n for name, n in ((settings or {}).get("Networks") or {}).items() if n.get("IPAddress")}
    if not nets:
        return []
    rows = [Row((tr("net.plugged", lang),), style="section", span=True),
            heading("col.network", "col.if", "col.address", "col.gateway", "col.host_end", "col.bridge")]
    for name, n in sorted(nets.items()):
        rows.append(Row((Cell(name, "if"), Cell(n.get("InterfaceName") or "eth0", "if"),
                         Cell(f"{n['IPAddress']}/{n.get('IPPrefixLen', '')}", "address"), n.get("Gateway") or "",
                         Cell(n.get("HostInterface") or "", "if"), Cell(n.get("Bridge") or "", "dim")),
                        key=f"plug:{name}"))
    ports = [(key, b) for key, bindings in sorted(((settings or {}).get("Ports") or {}).items())
             for b in bindings or []]
    if ports:
        rows.append(Row((tr("net.ports", lang),), style="section", span=True))
        rows.append(heading("col.host_port", "", "col.container_port", "", "", ""))
        for key, b in ports:
            host = f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
            rows.append(Row((Cell(host, "address"), "→", Cell(key, "address"), "", "", ""), key=f"port:{host}"))
    for name, n in sorted(nets.items()):
        peers = n.get("Peers") or []
        rows.append(Row((tr("net.peers", lang, network=name),), style="section", span=True))
        if not peers:
            rows.append(Row((Cell("  " + tr("net.no_peers", lang), "dim"),), span=True))
        for p in sorted(peers, key=lambda p: p.get("Name", "")):
            rows.append(Row((Cell(p.get("Name", ""), "if"), "", Cell(p.get("IPAddress", ""), "address"), "", "", ""),
                            key=f"peer:{name}:{p.get('Name')}"))
    return rows
