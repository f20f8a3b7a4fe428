"""Seeing inside a running container, read straight from the kernel.

A container is processes on the host's kernel, so everything about it can be
read from the host's /proc and cgroup files -- no need to enter it:

- its processes are the members of its cgroup (``cgroup.procs``), and each
  one's ``NSpid`` line in /proc/PID/status gives its PID on the host AND
  inside its own PID namespace (4312 outside is 1 inside);
- its namespaces are the inodes behind /proc/PID/ns/*; two processes share a
  namespace exactly when the inodes are equal;
- its mounts are /proc/PID/mountinfo of its first process, which lists the
  mount table as the container sees it;
- its network is what netlink answers inside its network namespace: that is
  the one part that has to be read from in there (see :mod:`engine.netinfo`);
- its writable layer is the overlay's upper directory;
- its hostname is what ``uname`` says on a thread that joined its UTS
  namespace for a moment.

:func:`snapshot` returns plain, JSON-serialisable data (schema
:data:`VERSION`: :class:`Snapshot` and the TypedDicts of :mod:`.schema`);
:func:`compare` says what changed between two snapshots; :func:`diff_layer`
lists the writable layer's changes the way ``docker diff`` does.

Where each part lives:

- :mod:`.schema` -- :class:`Snapshot` and its parts, schema :data:`VERSION`;
- :mod:`.procs` -- the processes (members of the cgroup), and how reading
  them stays cheap;
- :mod:`.watch` -- what snapshots remember of a container between calls;
- :mod:`.ns` -- the namespaces, compared with the host's, and the hostname;
- :mod:`.mountinfo` -- the mount table, the overlay's layers picked out;
- :mod:`.network` -- the network, through :mod:`engine.netinfo`;
- :mod:`.changes` -- :func:`compare` and :func:`diff_layer`;
- :mod:`.usage` -- what a container uses, counted as ``docker stats`` counts it;
- :mod:`.procfs` -- reading a /proc file that may vanish mid-read;
- here -- :func:`snapshot`, which puts the parts together.

Processes that vanish mid-read are skipped. Safe to call from any thread:
snapshots of one container take turns (a lock), the network is read on a
short-lived thread of its own that ends before the call returns.
"""

from __future__ import annotations

import time

from .changes import compare, cpu_rate, diff_layer
from .mountinfo import mounts
from .network import _watched_network, read_network
from .ns import hostname, namespaces, reference_namespaces
from .procs import OVERFLOW_UID, REFRESH_FIRST, REFRESH_MAX, id_map, map_id, members, process, processes
from .schema import VERSION, Address, Interface, Namespace, Network, Process, Route, Snapshot
from .watch import _watch, forget

__all__ = [
    "VERSION", "REFRESH_FIRST", "REFRESH_MAX", "OVERFLOW_UID",
    "Snapshot", "Process", "Namespace", "Network", "Interface", "Address", "Route",
    "snapshot", "compare", "cpu_rate", "diff_layer", "forget",
    "process", "processes", "members", "id_map", "map_id",
    "mounts", "namespaces", "reference_namespaces", "hostname", "read_network",
]


def _supervisors_namespaces(record: dict) -> dict:
    """The namespaces ``inspect`` reports (read by the supervisor), for a
    client that may not read the container's own (a classroom seat: its
    containers' processes belong to other uids)."""
    out = {}
    for kind, v in (record.get("namespaces") or {}).items():
        if isinstance(v, dict) and isinstance(v.get("container"), int):
            out[kind] = {"inode": v["container"], "host": v.get("host"), "shared_with_host": bool(v.get("shared"))}
    return out


def snapshot(record: dict, *, cgroup=None, others: dict[str, int] | None = None,
             network: bool = True, inside=None) -> Snapshot:
    """Everything the lab panel shows of one container, from its ``inspect`` record.

    ``cgroup``: the container's :class:`engine.cgroups.Cgroup` (for usage and
    its member processes); ``others``: name -> PID 1 of other containers;
    ``network``: False to leave the network out (``network_error`` says so);
    ``inside``: where the hostname and network come from when this process
    may not enter the container's namespaces (the rootless engine's: a call
    to its supervisor returning hostname, network, network_error).
    Never raises for what the container does meanwhile: a process that exits
    is left out, a network that cannot be read is None with the reason."""
    taken = time.time()
    pid = record.get("pid") or 0
    running = record.get("status") in ("running", "starting") and pid > 0   # starting: run --explain
    reference, ref_source = reference_namespaces()
    snap: Snapshot = {"version": VERSION, "time": taken, "id": record["id"], "name": record["name"],
            "status": record.get("status"), "pid": pid, "reference": ref_source,
            "processes": [], "namespaces": {}, "mounts": [], "hostname": None, "network": None,
            "network_error": "the container is not running", "resources": None, "settings": None}
    if not running:
        forget(record["id"])
        return snap
    pids = members(cgroup) if cgroup is not None else []
    pids = [pid] + sorted(p for p in pids if p != pid)      # PID 1 first: its NSpid sets the level
    watch = _watch(record["id"])
    snap["processes"] = processes(pids, uid_map=id_map(pid), watch=watch)
    snap["namespaces"] = namespaces(pid, reference, others) or _supervisors_namespaces(record)
    snap["mounts"] = mounts(pid)
    if inside is not None:
        seen = inside(network)
        snap["hostname"], snap["network"], snap["network_error"] = (
            seen.get("hostname"), seen.get("network"), seen.get("network_error"))
        network = False
    else:
        snap["hostname"] = hostname(pid)
    if cgroup is not None:
        try:
            snap["resources"] = cgroup.usage()
        except OSError:
            snap["resources"] = None
    if isinstance(record.get("usage"), dict) and not any(v is not None for v in (snap["resources"] or {}).values()):
        snap["resources"] = record["usage"]          # a classroom seat's: read by the supervisor
    settings = record.get("NetworkSettings")
    snap["settings"] = settings if isinstance(settings, dict) else None
    if network:
        # On a thread of its own, waited for: run beside the /proc reading
        # above, it would only fight this thread for the GIL.
        snap["network"], snap["network_error"] = _watched_network(watch, pid, snap["processes"])
    elif inside is None:
        snap["network_error"] = "not asked for"
    return snap

