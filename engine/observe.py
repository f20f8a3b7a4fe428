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
:data:`VERSION`: :class:`Snapshot` and the TypedDicts beside it);
:func:`compare` says what changed between two snapshots; :func:`diff_layer`
lists the writable layer's changes the way ``docker diff`` does.

(Over 600 lines on purpose: the snapshot's parts share one per-process cache,
and its schema is kept beside the code that fills it.)

How it stays cheap
------------------
A refresh of a container with hundreds of processes has to cost little (the
lab panel polls several times a second), so each process costs ONE pread()
of /proc/PID/stat per snapshot -- state, parent, start time, threads,
memory. The rest is remembered from the previous snapshot of the same
container, keyed by host PID and start time (a reused PID is another
process):

- the /proc/PID/stat file stays open between snapshots (within a budget of
  fds, see :class:`_Watch`): one system call instead of open, read, close;
- when those bytes have not changed at all (a sleeping process), neither has
  anything else shown, and last time's fields are used;
- what cannot change for the life of a process (its PIDs, its start) and what
  changes rarely (argv, uid) is read from /proc/PID/status and
  /proc/PID/cmdline again at once when the process execs -- its name or its
  argument addresses in /proc/PID/stat change. Without an exec, argv and uid
  change only when a program rewrites its own argv in place or calls
  setuid() (daemons do, as they start), so they are read again after
  :data:`REFRESH_FIRST`, then after twice as long each time -- or half the
  process's age, if longer -- up to :data:`REFRESH_MAX` (back to the start
  when something changed), each process at its own phase: such a change
  shows within about half as long as the process had been running when it
  made it, and within 20 s at most.

Processes that vanish mid-read are skipped. Safe to call from any thread:
snapshots of one container take turns (a lock), the network is read on a
short-lived thread of its own that ends before the call returns.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
import time
from typing import TypedDict

from .namespaces import KINDS as NAMESPACES
from .namespaces import inode as _ns_inode

VERSION = 1
REFRESH_FIRST = 1.0        # argv and uid of a process that did not exec: read again after this,
REFRESH_MAX = 16.0         # then after twice as long each time, up to this (each +-25 %)
OVERFLOW_UID = 65534       # what the kernel shows for a uid with no mapping
_MAX_WATCHED = 32          # containers whose processes are remembered between snapshots
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_BOOT_TIME: list[float] = []
_IDENTITY = [(0, 0, 4294967295)]         # the initial user namespace's uid_map


# -- the snapshot's schema ---------------------------------------------------------

class Process(TypedDict):
    """One process of the container (the list is sorted by ``pid``)."""

    pid: int                    # in the container's PID namespace
    host_pid: int
    nspid: list[int]            # every level, host first: a namespace nested inside shows too
    ppid: int                   # inside; 0 for PID 1 and for processes started from outside (exec)
    ppid_host: int
    uid: int                    # inside: the host uid through the uid_map (65534 when unmapped)
    uid_host: int
    state: str                  # R, S, D, Z, T ...
    name: str
    cmd: list[str]              # argv; [name] for kernel threads and zombies
    start_ticks: int            # clock ticks after boot
    started: float              # epoch seconds
    threads: int
    rss_kb: int


class Namespace(TypedDict, total=False):
    inode: int
    host: int | None            # the reference's inode of the same kind
    shared_with_host: bool
    shared_with: list[str]      # other containers' names (only when ``others`` was given)


class Interface(TypedDict):
    index: int
    name: str
    kind: str | None            # veth, bridge, dummy ...; None for lo
    type: str                   # loopback, ether ...
    state: str                  # the operstate: up, down, unknown ...
    up: bool
    lower_up: bool
    flags: list[str]
    mtu: int
    mac: str | None
    link: int | None            # a veth's peer index
    link_netnsid: int | None
    master: int | None
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


class Address(TypedDict):
    family: str                 # inet, inet6
    address: str
    prefixlen: int
    interface: str
    index: int
    scope: str


class Route(TypedDict):
    family: str
    dst: str                    # "default" or "10.0.0.0/24"
    gateway: str | None
    dev: str | None
    prefsrc: str | None
    metric: int | None
    table: int
    protocol: str
    scope: str
    type: str


class Network(TypedDict):
    inode: int                  # of the network namespace
    entered: bool               # False when it is the caller's own (--network host)
    interfaces: list[Interface]
    addresses: list[Address]
    routes: list[Route]         # of the main table


class Snapshot(TypedDict):
    """What :func:`snapshot` returns (schema :data:`VERSION`)."""

    version: int
    time: float                 # epoch seconds
    id: str
    name: str
    status: str
    pid: int                    # the host PID of the container's PID 1
    reference: str              # where the host's namespaces were read
    processes: list[Process]
    namespaces: dict[str, Namespace]    # by kind (engine.namespaces.KINDS)
    mounts: list[dict]          # the container's mountinfo, the overlay's layers picked out
    hostname: str | None
    network: Network | None     # None when it could not be read ...
    network_error: str | None   # ... and then why (exited meanwhile, no permission ...)
    resources: dict | None      # the cgroup's usage and limits (engine.cgroups.Cgroup.usage)


def _read_bytes(path: str, size: int = 4096) -> bytes | None:
    """A /proc or /sys file's bytes (one read when it fits in ``size``), or
    None when it is gone -- a process that exits between open and read gives
    ESRCH -- or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, size)
        if len(data) < size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    data = _read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def reference_namespaces() -> tuple[dict[str, int], str]:
    """The host's namespaces to compare with, and where they were read: PID 1's
    when readable (root), else this process's own (a normal user's view).
    Once PID 1's turn out unreadable, they are not tried again."""
    for source, pid in (("host (PID 1)", 1), ("this process", "self")):
        if pid in _UNREADABLE:
            continue
        inodes = {k: ino for k in NAMESPACES if (ino := _ns_inode(pid, k)) is not None}
        if inodes:
            return inodes, source
        _UNREADABLE.add(pid)
    return {}, "unknown"


_UNREADABLE: set = set()


def _boot_time() -> float:
    if not _BOOT_TIME:
        text = _read("/proc/stat") or ""
        _BOOT_TIME.append(next((float(line.split()[1]) for line in text.splitlines()
                                if line.startswith("btime ")), 0.0))
    return _BOOT_TIME[0]


def id_map(pid: int, kind: str = "uid") -> list[tuple[int, int, int]]:
    """/proc/PID/uid_map (or gid_map) as (inside, outside, count) ranges; the
    identity map when the process has no user namespace of its own."""
    text = _read(f"/proc/{pid}/{kind}_map")
    ranges = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            ranges.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return ranges or list(_IDENTITY)


def map_id(host_id: int, ranges: list[tuple[int, int, int]]) -> int:
    """A host uid (gid) as the namespace with ``ranges`` sees it."""
    for inside, outside, count in ranges:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return OVERFLOW_UID


def _parse_status(data: bytes, pid: int) -> tuple[tuple[int, ...], int]:
    """(NSpid levels, host first; real uid) from /proc/PID/status."""
    nspid: tuple[int, ...] = (pid,)
    uid = 0
    for line in data.split(b"\n"):
        if line.startswith(b"Uid:"):
            uid = int(line.split()[1])
        elif line.startswith(b"NSpid:"):
            nspid = tuple(int(p) for p in line.split()[1:])
            break                                   # NSpid comes after Uid
    return nspid, uid


def _parse_cmdline(data: bytes, name: str) -> list[str]:
    if not data:
        return [f"[{name}]"]                        # a kernel thread or a zombie: no argv
    return data.decode("utf-8", "replace").rstrip("\0").split("\0")


class _Watch:
    """What the previous snapshots of one container learned about its
    processes: host PID -> [stat fd, exec key, fixed fields, when to read
    them again, that interval, last stat bytes, last fields].

    The fd is /proc/PID/stat kept open, so a refresh is one pread() instead
    of open, read and close -- while the fd budget lasts (see
    :func:`_fd_budget`); -1 when not kept. An open fd pins that process's
    ``struct pid`` (a few hundred bytes) and so its PID namespace, never a
    PID reused later: once the process is reaped, reads give ESRCH. So the
    fds are closed as soon as a snapshot finds their process gone, when the
    container is seen stopped, or when more than :data:`_MAX_WATCHED`
    containers are watched. ``lock``: one snapshot of a container at a time.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: dict[int, list] = {}
        self.closed = False
        self.net = None             # an engine.netinfo.Watcher of its PID 1's network namespace

    def close(self) -> None:
        """Close its fds; a snapshot that still uses it afterwards keeps none."""
        with self.lock:
            self.closed = True
            _close_fds(self.procs.values())
            self.procs = {}
            if self.net is not None:
                self.net.close()
                self.net = None


_WATCHED: dict[str, _Watch] = {}
_WATCHED_LOCK = threading.Lock()
_FDS = [0]                 # stat fds kept open, all containers together


def _fd_budget() -> int:
    """How many /proc/PID/stat fds may stay open: a quarter of this process's
    soft RLIMIT_NOFILE (256 of the usual 1024), at most 4096."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, min(4096, soft // 4)) if soft != resource.RLIM_INFINITY else 4096


_BUDGET: list[int] = []


def _close_fds(entries) -> None:
    closed = 0
    for entry in entries:
        if entry[0] >= 0:
            os.close(entry[0])
            entry[0] = -1
            closed += 1
    with _WATCHED_LOCK:
        _FDS[0] -= closed


def _watch(cid: str) -> _Watch:
    with _WATCHED_LOCK:
        watch = _WATCHED.pop(cid, None) or _Watch()
        _WATCHED[cid] = watch                        # most recently used last
        evicted = [_WATCHED.pop(k) for k in list(_WATCHED)[:-_MAX_WATCHED]] if len(_WATCHED) > _MAX_WATCHED else []
    for old in evicted:
        old.close()
    return watch


def forget(cid: str) -> None:
    """Drop what is remembered of container ``cid`` (its fds are closed)."""
    with _WATCHED_LOCK:
        watch = _WATCHED.pop(cid, None)
    if watch is not None:
        watch.close()


def process(pid: int) -> dict | None:
    """One process as the lab panel shows it, read afresh; None if it has gone
    meanwhile. (``pid`` and ``ppid`` here are those of its innermost PID
    namespace; :func:`processes` places them in the container's.)"""
    procs = processes([pid], level=-1)
    return procs[0] if procs else None


def processes(pids: list[int], *, uid_map: list[tuple[int, int, int]] | None = None,
              level: int | None = None, watch: _Watch | None = None) -> list[dict]:
    """The processes of ``pids`` still there, sorted by PID inside.

    ``level``: which NSpid entry is the container's PID (by default that of
    ``pids[0]`` -- the container's PID 1 -- so ``-1`` = innermost, for a
    single process); ``ppid`` is the parent inside (0 for PID 1 and for
    processes joined from outside, like exec). ``uid_map``: the container's,
    to show ``uid`` inside. ``watch``: what earlier snapshots of the same
    container learned (see "How it stays cheap"); without it every file is
    read afresh.
    """
    if watch is None:
        watch = _Watch()
        try:
            return _processes(pids, uid_map or _IDENTITY, level, watch, keep_fds=False)
        finally:
            watch.close()
    with watch.lock:
        return _processes(pids, uid_map or _IDENTITY, level, watch, keep_fds=not watch.closed)


def _processes(pids, uid_map, level, watch: _Watch, *, keep_fds: bool) -> list[dict]:
    if keep_fds and not _BUDGET:
        _BUDGET.append(_fd_budget())
    budget = _BUDGET[0] if keep_fds else 0          # 0: close every fd right after its read
    now = time.monotonic()
    old, new = watch.procs, {}
    watch.procs = new
    opened = 0                                      # fds kept (+) and closed (-) by this call
    procs = []
    pread, close = os.pread, os.close
    try:
        for host_pid in pids:
            entry = old.pop(host_pid, None)
            data = b""
            if entry is not None and entry[0] >= 0:
                try:
                    data = pread(entry[0], 1024, 0)
                except OSError:
                    pass
                if not data:                        # that process is gone; the PID may be a new one
                    close(entry[0])
                    opened -= 1
                    entry = None
            if not data:
                fd, data = _open_stat(host_pid)
                if not data:
                    continue                        # gone meanwhile
                if _FDS[0] + opened < budget:
                    opened += 1
                else:
                    close(fd)
                    fd = -1
                if entry is None:
                    entry = [fd, None, None, 0.0, 0.0, None, None]
                else:
                    entry[0] = fd
            if data == entry[5] and now < entry[3]:    # not changed at all: a sleeping process
                new[host_pid] = entry
                p = entry[6].copy()
                p["nspid"] = list(p["nspid"])
                p["cmd"] = list(p["cmd"])
                procs.append(p)
                continue
            close_paren = data.rindex(b")")
            rest = data[close_paren + 2:].split()
            # The start time tells a reused PID; the name and the argument
            # addresses (fields 48, 49; 0 when not readable) change on exec.
            key = (rest[19], data[:close_paren], rest[45:47])
            if key != entry[1] or now >= entry[3]:
                fixed = _fixed_fields(host_pid, data, close_paren, rest, uid_map)
                if fixed is None:
                    if entry[0] >= 0:
                        close(entry[0])
                        opened -= 1
                    continue
                if key == entry[1] and fixed == entry[2]:   # a timed read that found nothing new
                    age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(rest[19]) / _CLK_TCK
                    interval = min(max(entry[4] * 2, age / 2, REFRESH_FIRST), REFRESH_MAX)
                else:
                    interval = REFRESH_FIRST
                # Each process at its own phase (+-25 %), so no snapshot reads them all.
                entry[1:5] = [key, fixed, now + interval * (0.75 + (host_pid * 0.6180339887) % 0.5), interval]
            new[host_pid] = entry
            p = entry[2].copy()
            p["state"] = rest[0].decode()
            p["ppid_host"] = int(rest[1])
            p["threads"] = int(rest[17])
            p["rss_kb"] = int(rest[21]) * _PAGE_KB
            entry[5], entry[6] = data, p
            p = p.copy()
            p["nspid"] = list(p["nspid"])
            p["cmd"] = list(p["cmd"])
            procs.append(p)
    finally:
        for entry in old.values():                  # exited since the last snapshot
            if entry[0] >= 0:
                close(entry[0])
                opened -= 1
        with _WATCHED_LOCK:
            _FDS[0] += opened
    if level is None:
        level = len(procs[0]["nspid"]) - 1 if procs and procs[0]["host_pid"] == pids[0] else -1
    inside = {}
    for p in procs:
        nspid = p["nspid"]
        p["pid"] = inside[p["host_pid"]] = nspid[level] if -len(nspid) <= level < len(nspid) else nspid[-1]
    for p in procs:
        p["ppid"] = inside.get(p["ppid_host"], 0)
    procs.sort(key=_by_pid)
    return procs


def _by_pid(p: dict) -> int:
    return p["pid"]


def _open_stat(pid: int) -> tuple[int, bytes]:
    """(fd, first read) of /proc/PID/stat; b"" when the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1, b""
    try:
        data = os.pread(fd, 1024, 0)
    except OSError:
        data = b""
    if not data:
        os.close(fd)
        return -1, b""
    return fd, data


def _fixed_fields(host_pid: int, stat: bytes, close_paren: int, rest: list[bytes],
                  uid_map) -> dict | None:
    """What stays until the process execs: PIDs, uid, name, argv, start."""
    status = _read_bytes(f"/proc/{host_pid}/status", 4096)
    cmdline = _read_bytes(f"/proc/{host_pid}/cmdline", 4096)
    if status is None or cmdline is None:
        return None
    name = stat[stat.index(b"(") + 1:close_paren].decode("utf-8", "replace")
    nspid, uid_host = _parse_status(status, host_pid)
    ticks = int(rest[19])
    return {"host_pid": host_pid, "nspid": nspid, "uid": map_id(uid_host, uid_map), "uid_host": uid_host,
            "name": name, "cmd": _parse_cmdline(cmdline, name), "start_ticks": ticks,
            "started": round(_boot_time() + ticks / _CLK_TCK, 2)}


def members(cgroup) -> list[int]:
    """The PIDs in ``cgroup`` (its ``cgroup.procs``). On v1 every hierarchy
    holds the same processes, so one is read: the pids controller's."""
    files = [str(f) for f in cgroup.procs_files()]
    files.sort(key=lambda f: "/pids/" not in f)
    for path in files:
        data = _read_bytes(path, 65536)
        if data is not None:
            return [int(p) for p in data.split()]
    return []


def mounts(pid: int) -> list[dict]:
    """The mount table as process ``pid`` sees it (/proc/PID/mountinfo), with the
    overlay's image layers, writable layer and work dir picked out."""
    text = _read(f"/proc/{pid}/mountinfo") or ""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 6 or len(rparts) < 3:
            continue
        entry = {"id": int(parts[0]), "parent": int(parts[1]), "target": _unescape(parts[4]),
                 "options": parts[5], "fstype": rparts[0], "source": _unescape(rparts[1]),
                 "super_options": rparts[2]}
        if entry["fstype"] == "overlay":
            opts = dict(o.split("=", 1) for o in _split_escaped(rparts[2], ",") if "=" in o)
            entry["overlay"] = {"lower": [_unescape(p) for p in _split_lower(opts.get("lowerdir", ""))],
                                "upper": opts.get("upperdir", ""), "work": opts.get("workdir", "")}
        out.append(entry)
    return out


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split_lower(text: str) -> list[str]:
    return [p.replace("\\:", ":").replace("\\,", ",") for p in _split_escaped(text, ":")] if text else []


def _split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep``; a backslash keeps the next character (escapes and all)."""
    if "\\" not in text:
        return text.split(sep)
    out, cur, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if text[i] == sep:
            out.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    out.append(cur)
    return out


def namespaces(pid: int, reference: dict[str, int], others: dict[str, int] | None = None) -> dict:
    """Each namespace of ``pid``: its inode, the reference's, and whether it is shared.
    ``others`` maps another container's name to its PID 1, to compare with too."""
    out = {}
    for kind in NAMESPACES:
        ino = _ns_inode(pid, kind)
        if ino is None:
            continue
        entry = {"inode": ino, "host": reference.get(kind), "shared_with_host": ino == reference.get(kind)}
        if others:
            entry["shared_with"] = sorted(name for name, opid in others.items() if _ns_inode(opid, kind) == ino)
        out[kind] = entry
    return out


def snapshot(record: dict, *, cgroup=None, others: dict[str, int] | None = None,
             network: bool = True) -> Snapshot:
    """Everything the lab panel shows of one container, from its ``inspect`` record.

    ``cgroup``: the container's :class:`engine.cgroups.Cgroup` (for usage and
    its member processes); ``others``: name -> PID 1 of other containers;
    ``network``: False to leave the network out (``network_error`` says so).
    Never raises for what the container does meanwhile: a process that exits
    is left out, a network that cannot be read is None with the reason."""
    taken = time.time()
    pid = record.get("pid") or 0
    running = record.get("status") in ("running", "starting") and pid > 0   # starting: run --explain
    reference, ref_source = reference_namespaces()
    snap: Snapshot = {"version": VERSION, "time": taken, "id": record["id"], "name": record["name"],
            "status": record.get("status"), "pid": pid, "reference": ref_source,
            "processes": [], "namespaces": {}, "mounts": [], "hostname": None, "network": None,
            "network_error": "the container is not running", "resources": None}
    if not running:
        forget(record["id"])
        return snap
    pids = members(cgroup) if cgroup is not None else []
    pids = [pid] + sorted(p for p in pids if p != pid)      # PID 1 first: its NSpid sets the level
    watch = _watch(record["id"])
    snap["processes"] = processes(pids, uid_map=id_map(pid), watch=watch)
    snap["namespaces"] = namespaces(pid, reference, others)
    snap["mounts"] = mounts(pid)
    snap["hostname"] = hostname(pid)
    if cgroup is not None:
        try:
            snap["resources"] = cgroup.usage()
        except OSError:
            snap["resources"] = None
    if network:
        # On a thread of its own, waited for: run beside the /proc reading
        # above, it would only fight this thread for the GIL.
        snap["network"], snap["network_error"] = _watched_network(watch, pid, snap["processes"])
    else:
        snap["network_error"] = "not asked for"
    return snap


def hostname(pid: int) -> str | None:
    """The hostname process ``pid`` sees: its UTS namespace's, read on a
    short-lived thread that joins that namespace (UTS membership belongs to
    each thread) and comes back. None when it cannot be read."""
    from .netinfo import Unavailable, _in_namespace

    out: list = []

    def look() -> None:
        try:
            out.append(_in_namespace(pid, lambda: os.uname().nodename, "uts")[1][0])
        except (Unavailable, OSError):
            pass

    worker = threading.Thread(target=look, name=f"uts-{pid}", daemon=True)
    worker.start()
    worker.join(2.0)
    return out[0] if out else None


def _watched_network(watch: _Watch, pid: int, procs: list[dict]) -> tuple[dict | None, str | None]:
    """The network through the container's kept :class:`engine.netinfo.Watcher`
    (made on first use, remade when PID 1 is another process): a dump only
    when the kernel announced a change. Never raises."""
    start = next((p["start_ticks"] for p in procs if p["host_pid"] == pid), None)
    if start is None:
        return None, f"process {pid} has exited: its network namespace is gone"
    with watch.lock:
        if watch.closed:
            return read_network(pid, procs)
        try:
            from . import netinfo
        except Exception as e:  # noqa: BLE001 - no pyroute2: a reason, not a crash
            return None, str(e) or type(e).__name__
        net = watch.net
        if net is not None and (net.pid, net.start_ticks) != (pid, start):
            net.close()
            net = watch.net = None
        try:
            if net is None:
                net = watch.net = netinfo.Watcher(pid, start_ticks=start)
            return net.read(), None
        except Exception as e:  # noqa: BLE001 - netinfo.Unavailable, or a bug: a reason
            return None, str(e) or type(e).__name__


def read_network(pid: int, procs: list[dict] | None = None) -> tuple[dict | None, str | None]:
    """The network of process ``pid`` as (network, None), or (None, why not).
    ``procs``: its processes just read, to be sure ``pid`` is still the same
    process. Never raises."""
    return _network_result(_start_network(pid), pid, procs)


def _start_network(pid: int):
    """A :class:`engine.netinfo.Reading` under way, or the reason there is none."""
    try:
        from . import netinfo
        return netinfo.Reading(pid)
    except Exception as e:  # noqa: BLE001 - netinfo.Unavailable (no pyroute2), or a bug: a reason
        return str(e) or type(e).__name__


def _network_result(reading, pid: int, procs: list[dict] | None) -> tuple[dict | None, str | None]:
    if isinstance(reading, str):
        return None, reading
    start = None
    if procs is not None:
        start = next((p["start_ticks"] for p in procs if p["host_pid"] == pid), None)
    try:
        network = reading.result(start_ticks=start)
    except Exception as e:  # noqa: BLE001 - netinfo.Unavailable, or a bug: a reason, not a crash
        return None, str(e) or type(e).__name__
    if procs is not None and start is None:
        return None, f"process {pid} has exited: its network namespace is gone"
    return network, None


def cpu_rate(before: dict, after: dict) -> float | None:
    """CPU used between two snapshots, in cores (1.0 = one core fully busy)."""
    try:
        used = after["resources"]["cpu_usage_ns"] - before["resources"]["cpu_usage_ns"]
        return used / 1e9 / (after["time"] - before["time"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def compare(before: dict, after: dict) -> dict:
    """What changed between two snapshots: processes started and exited, new
    mounts, interfaces added and removed (by index and name; both lists are
    empty when either snapshot has no network, or when the namespace itself
    is another one -- a container started again)."""
    key = lambda p: (p["host_pid"], p["start_ticks"])  # noqa: E731 - a pid may be reused
    was = {key(p): p for p in before.get("processes", [])}
    now = {key(p): p for p in after.get("processes", [])}
    old_mounts = {m["target"] for m in before.get("mounts", [])}
    old_net, new_net = before.get("network"), after.get("network")
    if old_net and new_net and old_net.get("inode") == new_net.get("inode"):
        ifkey = lambda i: (i["index"], i["name"])  # noqa: E731
        had = {ifkey(i) for i in old_net["interfaces"]}
        has = {ifkey(i) for i in new_net["interfaces"]}
        added = [i for i in new_net["interfaces"] if ifkey(i) not in had]
        removed = [i for i in old_net["interfaces"] if ifkey(i) not in has]
    else:
        added, removed = [], []
    return {"started": [now[k] for k in now.keys() - was.keys()],
            "exited": [was[k] for k in was.keys() - now.keys()],
            "mounted": [m for m in after.get("mounts", []) if m["target"] not in old_mounts],
            "interfaces_added": added, "interfaces_removed": removed,
            "cpu_cores": cpu_rate(before, after)}


def diff_layer(upper: str, lowers: list[str]) -> list[tuple[str, str]]:
    """The writable layer's changes against the image, as ``docker diff``:
    ``A`` added, ``C`` changed, ``D`` deleted (an overlay whiteout: a 0/0
    character device). Paths are absolute inside the container, sorted."""
    changes: list[tuple[str, str]] = []

    def in_image(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, rel)) for lower in lowers)

    for base, dirs, files in os.walk(upper):
        rel_base = os.path.relpath(base, upper)
        rel_base = "" if rel_base == "." else rel_base
        for name in sorted(dirs) + sorted(files):
            rel = os.path.join(rel_base, name)
            try:
                st = os.lstat(os.path.join(base, name))
            except FileNotFoundError:
                continue
            if stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                changes.append(("D", "/" + rel))
            elif in_image(rel):
                changes.append(("C", "/" + rel))
            else:
                changes.append(("A", "/" + rel))
    return sorted(changes, key=lambda c: c[1])
