"""After a crash: make the kernel match the records again.

A supervisor killed with SIGKILL leaves what it made: attachment records
(leases) of containers that are gone, veth pairs whose container is dead
(the container end vanished with its namespace, but a half-made pair can be
whole), bridges of networks since removed, elements and chains in our
nftables table. Because every kernel object is derived from a record and
marked as ours (names ``cl-*``/``vcl*``, an ifalias naming the data
directory, one table of our own), :func:`sweep` can decide from the records
alone what should exist, and remove the rest:

1. each attachment whose container is not alive is torn down -- the very
   same :func:`.bridge.teardown` that ``rm`` runs: port elements, veth,
   then the record (the lease) itself;
2. each link of ours (ifalias of this data directory) that no live
   attachment or network record explains is deleted;
3. in our table, chains and elements that no network or live attachment
   explains are deleted; with no network left, the whole table goes;
4. temporary files of interrupted atomic writes, and attachment records
   that cannot be read (a power cut may tear one: they are not fsync-ed), are
   removed.

"Alive" is the caller's to say (the supervisor knows its containers); by
default a container is alive when the PID recorded with its attachment is
still the same process (its start time, field 22 of /proc/PID/stat, is the
one recorded). A lease with no PID yet counts as alive for
:data:`GRACE` seconds -- another process may be between its lease and its
attach.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..container import process_start_time
from . import bridge
from .records import BRIDGE_PREFIX, VETH_PREFIX, Attachment, Store

GRACE = 60.0


def pid_alive(att: Attachment, now: float | None = None) -> bool:
    """The default liveness test: the recorded PID is still the recorded process."""
    if att.pid <= 0:
        return (time.time() if now is None else now) - att.created < GRACE
    ticks = process_start_time(att.pid)
    return ticks is not None and (not att.start_ticks or ticks == att.start_ticks)


def our_links(store: Store) -> dict[str, str]:
    """Links of this data directory in the host namespace: name -> ifalias."""
    out = {}
    with bridge._ipr() as ipr:
        for msg in ipr.get_links():
            name, alias = msg.get_attr("IFLA_IFNAME"), msg.get_attr("IFLA_IFALIAS") or ""
            if name and name.startswith((BRIDGE_PREFIX, VETH_PREFIX)) and \
                    (alias == store.owner or alias.startswith(store.owner + " ")):
                out[name] = alias
    return out


def sweep(store: Store, alive: Callable[[Attachment], bool] | None = None) -> dict[str, list[str]]:
    """Remove whatever no live record explains; returns what was removed, by kind."""
    alive = alive or pid_alive
    removed: dict[str, list[str]] = {"attachments": [], "links": [], "nft": [], "files": []}
    if not store.root.exists():
        return removed
    with store.lock():          # no lease or attach of another process runs meanwhile
        return _sweep(store, alive, removed)


def _sweep(store: Store, alive: Callable[[Attachment], bool], removed: dict[str, list[str]]) -> dict[str, list[str]]:
    for att in store.attachments():
        if not alive(att):
            bridge.teardown(store, att)
            removed["attachments"].append(f"{att.name} on {att.network} ({att.address})")
    for path in store.unreadable_attachments():
        path.unlink(missing_ok=True)
        removed["files"].append(str(path))
    networks = store.networks()
    live = store.attachments()
    wanted_links = {n.bridge for n in networks} | {a.veth for a in live}
    for name in sorted(our_links(store)):
        if name not in wanted_links and bridge._delete_link(name):
            removed["links"].append(name)
    removed["nft"] = _sweep_table(store, networks, live)
    for directory in (store.networks_dir, store.attachments_dir):
        for tmp in directory.glob(".*.tmp") if directory.exists() else ():
            pid = tmp.name.rsplit(".", 2)[-2]
            if not (pid.isdigit() and os.path.exists(f"/proc/{pid}")):
                tmp.unlink(missing_ok=True)
                removed["files"].append(str(tmp))
    return removed


def _sweep_table(store: Store, networks, live: list[Attachment]) -> list[str]:
    objects = bridge.nft_table(store.table)
    if objects is None:
        return []
    t = f"inet {store.table}"
    if not networks:
        bridge.nft(f"delete table {t}\n")
        return [f"table {t}"]
    chains, elements = bridge._existing(objects)
    bridges = {n.bridge for n in networks}
    script, gone = [], []
    for name in ("masq_from", "forward_from", "bridges", "internal"):
        for key in sorted(elements.get(name, set())):
            if key.strip('"') not in bridges:
                script.append(f'delete element {t} {name} {{ "{key.strip(chr(34))}" }}')
                gone.append(f"{name} element {key}")
    for chain in sorted(chains):
        if chain.startswith(("nat-", "fwd-")) and chain[4:] not in bridges:
            script.append(f"delete chain {t} {chain}")
            gone.append(f"chain {chain}")
    wanted = {(m, k) for a in live for m, k, _v in bridge._port_elements(a)}
    for name in ("ports_any", "ports_ip"):
        for key in sorted(elements.get(name, set())):
            if (name, key) not in wanted:
                script.append(f"delete element {t} {name} {{ {key} }}")
                gone.append(f"{name} element {key}")
    if script:
        bridge.nft("\n".join(script) + "\n")
    return gone
