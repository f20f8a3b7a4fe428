"""What a container is using right now, counted the way ``docker stats`` counts it.

:func:`sample` reads one container's counters at one moment; :func:`figures`
turns two samples of it into what ``docker stats`` prints:

- **CPU %**: the container's CPU time over the whole machine's CPU time
  between the samples (from /proc/stat), times the number of CPUs: one busy
  loop is ~100 %, two are ~200 % (docker's ``calculateCPUPercentUnix``);
- **memory**: the cgroup's usage minus the page cache it could drop at once
  (``total_inactive_file`` on v1, ``inactive_file`` on v2, as docker
  subtracts them), over its limit, or over the machine's memory when the
  limit is higher or there is none;
- **net I/O**: the bytes received and sent by every interface in the
  container's network namespace but ``lo`` (/proc/PID/net/dev is that
  namespace's table, read from out here);
- **block I/O**: bytes read from and written to block devices: ``io.stat``
  (v2), ``blkio`` (v1, when the container has a blkio cgroup), otherwise the
  ``read_bytes``/``write_bytes`` of /proc/PID/io of its live processes;
- **PIDs**: the processes and threads in its cgroup (``pids.current``).

A container that is not running samples as all zeros, as docker shows it.
"""

from __future__ import annotations

import os
import time

from .procfs import _read as read_text

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def system_cpu_ns() -> int:
    """The machine's CPU time (all CPUs, busy and idle) since boot, in ns: the
    first seven fields of /proc/stat's ``cpu`` line, as docker sums them."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(v) for v in line.split()[1:8])
                return ticks * 1_000_000_000 // _CLK_TCK
    return 0


def online_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def host_memory() -> int:
    """MemTotal of /proc/meminfo, in bytes (0 when unread)."""
    text = read_text("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def net_io(pid: int) -> tuple[int, int]:
    """Bytes received and sent by the interfaces (but lo) of ``pid``'s network namespace."""
    text = read_text(f"/proc/{pid}/net/dev") or ""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def proc_io(pids: list[int]) -> tuple[int, int]:
    """read_bytes and write_bytes of /proc/PID/io, summed over ``pids``."""
    read = written = 0
    for pid in pids:
        text = read_text(f"/proc/{pid}/io") or ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "read_bytes":
                read += int(value)
            elif key == "write_bytes":
                written += int(value)
    return read, written


def sample(record: dict, cgroup=None) -> dict:
    """One container's counters now, from its ``inspect``/``ps`` record and its
    :class:`engine.cgroups.Cgroup` (None: no cgroup to read: usage counts as 0)."""
    pid = record.get("pid") or 0
    out = {"id": record["id"], "name": record["name"], "running": False, "time": time.monotonic(),
           "system_ns": system_cpu_ns(), "cpus": online_cpus(), "cpu_ns": 0, "memory": 0,
           "memory_limit": 0, "net_rx": 0, "net_tx": 0, "block_read": 0, "block_write": 0, "pids": 0}
    if record.get("status") not in ("running", "starting") or pid <= 0:
        return out
    out["running"] = True
    usage: dict = {}
    if cgroup is not None:
        try:
            usage = cgroup.usage()
            stat = cgroup.memory_stat()
            io = cgroup.io_bytes()
            members = cgroup.pids()
        except OSError:
            usage, stat, io, members = {}, {}, None, []
    else:
        stat, io, members = {}, None, [pid]
    out["cpu_ns"] = usage.get("cpu_usage_ns") or 0
    memory = usage.get("memory_current") or 0
    cache = stat.get("total_inactive_file", stat.get("inactive_file"))
    if cache is not None and cache < memory:
        memory -= cache
    out["memory"] = memory
    machine = host_memory()
    limit = usage.get("memory_limit")
    out["memory_limit"] = min(limit, machine) if limit and machine else (limit or machine)
    out["pids"] = usage.get("pids_current") or len(members)
    out["net_rx"], out["net_tx"] = net_io(pid)
    out["block_read"], out["block_write"] = io if io is not None else proc_io(members or [pid])
    return out


def figures(before: dict | None, now: dict) -> dict:
    """What ``docker stats`` shows of a container, from two of its samples
    (``before`` None: the first sample, CPU % still 0)."""
    cpu = 0.0
    if before is not None and now["running"] and before["running"]:
        cpu_delta = now["cpu_ns"] - before["cpu_ns"]
        system_delta = now["system_ns"] - before["system_ns"]
        if cpu_delta > 0 and system_delta > 0:
            cpu = cpu_delta / system_delta * now["cpus"] * 100.0
    limit = now["memory_limit"]
    return {"id": now["id"], "name": now["name"], "running": now["running"], "cpu_percent": cpu,
            "memory": now["memory"], "memory_limit": limit,
            "memory_percent": now["memory"] / limit * 100.0 if limit else 0.0,
            "net_rx": now["net_rx"], "net_tx": now["net_tx"],
            "block_read": now["block_read"], "block_write": now["block_write"], "pids": now["pids"]}
