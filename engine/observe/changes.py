"""What changed: between two snapshots (processes started and exited, new
mounts, interfaces, CPU used), and in a container's writable layer against
its image (``docker diff``)."""

from __future__ import annotations

import os
import stat as stat_mod


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
