"""A container's processes: each one's PIDs (on the host and inside), uid,
state, command and memory, read from /proc -- cheaply enough to repeat
several times a second.

How it stays cheap
------------------
A refresh of a container with hundreds of processes has to cost little (the
lab panel polls several times a second), so each process costs ONE pread()
of /proc/PID/stat per snapshot -- state, parent, start time, threads,
memory. The rest is remembered from the previous snapshot of the same
container, keyed by host PID and start time (a reused PID is another
process):

- the /proc/PID/stat file stays open between snapshots (within a budget of
  fds, see :class:`.watch._Watch`): one system call instead of open, read, close;
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
"""

from __future__ import annotations

import os
import time

from .. import userns
from .procfs import _read, _read_bytes
from .watch import _BUDGET, _FDS, _WATCHED_LOCK, _fd_budget, _Watch

REFRESH_FIRST = 1.0        # argv and uid of a process that did not exec: read again after this,
REFRESH_MAX = 16.0         # then after twice as long each time, up to this (each +-25 %)
OVERFLOW_UID = 65534       # what the kernel shows for a uid with no mapping
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_BOOT_TIME: list[float] = []
_IDENTITY = userns.IDENTITY              # the initial user namespace's uid_map


def _boot_time() -> float:
    if not _BOOT_TIME:
        text = _read("/proc/stat") or ""
        _BOOT_TIME.append(next((float(line.split()[1]) for line in text.splitlines()
                                if line.startswith("btime ")), 0.0))
    return _BOOT_TIME[0]


def id_map(pid: int, kind: str = "uid") -> list[tuple[int, int, int]]:
    """/proc/PID/uid_map (or gid_map) as (inside, outside, count) ranges; the
    identity map when the process has no user namespace of its own."""
    return userns.id_map(f"/proc/{pid}/{kind}_map")


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

