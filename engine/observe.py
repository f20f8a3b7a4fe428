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
- its writable layer is the overlay's upper directory.

:func:`snapshot` returns plain, JSON-serialisable data (schema
:data:`VERSION`); :func:`diff_layer` lists the writable layer's changes the
way ``docker diff`` does. Safe to call from any thread: it only reads files.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time

VERSION = 1
NAMESPACES = ("pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time")


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def reference_namespaces() -> tuple[dict[str, int], str]:
    """The host's namespaces to compare with, and where they were read: PID 1's
    when readable (root), else this process's own (a normal user's view)."""
    for source, pid in (("host (PID 1)", 1), ("this process", "self")):
        inodes = {k: ino for k in NAMESPACES if (ino := _ns_inode(pid, k)) is not None}
        if inodes:
            return inodes, source
    return {}, "unknown"


def process(pid: int) -> dict | None:
    """One process as the lab panel shows it; None if it has gone meanwhile."""
    status = _read(f"/proc/{pid}/status")
    cmdline = _read(f"/proc/{pid}/cmdline")
    stat = _read(f"/proc/{pid}/stat")
    if status is None or cmdline is None or stat is None:
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    nspid = fields.get("NSpid", str(pid)).split()
    uids = fields.get("Uid", "0").split()
    after = stat[stat.rindex(")") + 2:].split()
    return {
        "pid": int(nspid[-1]),                 # inside the innermost PID namespace
        "host_pid": int(nspid[0]),
        "ppid_host": int(fields.get("PPid", "0")),
        "uid": int(uids[0]),
        "state": fields.get("State", "?").split()[0],
        "name": fields.get("Name", ""),
        "cmd": cmdline.rstrip("\0").split("\0") if cmdline else [f"[{fields.get('Name', '')}]"],
        "start_ticks": int(after[19]),
        "threads": int(fields.get("Threads", "1")),
        "rss_kb": int(fields.get("VmRSS", "0 kB").split()[0]),
    }


def processes(pids: list[int]) -> list[dict]:
    """The processes of ``pids`` still there, with a parent *inside* the container
    (``ppid``: 0 for PID 1 and for processes joined from outside, like exec)."""
    procs = [p for p in (process(pid) for pid in sorted(pids)) if p is not None]
    inside = {p["host_pid"]: p["pid"] for p in procs}
    for p in procs:
        p["ppid"] = inside.get(p["ppid_host"], 0)
    return sorted(procs, key=lambda p: p["pid"])


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


def snapshot(record: dict, *, cgroup=None, others: dict[str, int] | None = None) -> dict:
    """Everything the lab panel shows of one container, from its ``inspect`` record.

    ``cgroup``: the container's :class:`engine.cgroups.Cgroup` (for usage and
    its member processes); ``others``: name -> PID 1 of other containers."""
    taken = time.time()
    pid = record.get("pid") or 0
    running = record.get("status") == "running" and pid > 0
    reference, ref_source = reference_namespaces()
    snap = {"version": VERSION, "time": taken, "id": record["id"], "name": record["name"],
            "status": record.get("status"), "pid": pid, "reference": ref_source,
            "processes": [], "namespaces": {}, "mounts": [], "resources": None}
    if not running:
        return snap
    members = cgroup.pids() if cgroup is not None else []
    if pid not in members:
        members = sorted(set(members) | {pid})
    snap["processes"] = processes(members)
    snap["namespaces"] = namespaces(pid, reference, others)
    snap["mounts"] = mounts(pid)
    if cgroup is not None:
        try:
            snap["resources"] = cgroup.usage()
        except OSError:
            snap["resources"] = None
    return snap


def cpu_rate(before: dict, after: dict) -> float | None:
    """CPU used between two snapshots, in cores (1.0 = one core fully busy)."""
    try:
        used = after["resources"]["cpu_usage_ns"] - before["resources"]["cpu_usage_ns"]
        return used / 1e9 / (after["time"] - before["time"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def compare(before: dict, after: dict) -> dict:
    """What changed between two snapshots: processes started and exited, new mounts."""
    key = lambda p: (p["host_pid"], p["start_ticks"])  # noqa: E731 - a pid may be reused
    was = {key(p): p for p in before.get("processes", [])}
    now = {key(p): p for p in after.get("processes", [])}
    old_mounts = {m["target"] for m in before.get("mounts", [])}
    return {"started": [now[k] for k in now.keys() - was.keys()],
            "exited": [was[k] for k in was.keys() - now.keys()],
            "mounted": [m for m in after.get("mounts", []) if m["target"] not in old_mounts],
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
