"""Which cgroup layout this machine has: :func:`detect` reads
/proc/self/mountinfo and returns the driver for it -- v2, v1 (or hybrid, whose
limits live in v1), or a :class:`.NoDriver` that says why nothing can be
limited.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..userns import host_uid
from .base import Driver, NoDriver
from .files import _errno_text, _read
from .v1 import V1Driver
from .v2 import V2Driver


@dataclass(frozen=True)
class _MountEntry:
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]


_V1_CONTROLLERS = {"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer",
                   "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma", "misc"}


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _read_mountinfo(path: Path) -> list[_MountEntry]:
    """Parse mountinfo lines: ``id parent dev root point opts [tags] - type src superopts``."""
    entries = []
    for line in path.read_text().splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        opts = tuple(tail[2].split(",")) if len(tail) > 2 else ()
        entries.append(_MountEntry(_unescape(fields[4]), tail[0], opts))
    return entries


def _v1_hierarchies(entries: list[_MountEntry], root: Path) -> dict[str, Path]:
    """Controller list -> mount point of each v1 hierarchy (under ``root`` first)."""
    found: dict[str, Path] = {}
    under_root = sorted((e for e in entries if e.fstype == "cgroup"),
                        key=lambda e: not Path(e.mount_point).is_relative_to(root))
    for e in under_root:
        controllers = [o for o in e.super_options if o in _V1_CONTROLLERS]
        if controllers:
            found.setdefault(",".join(controllers), Path(e.mount_point))
    return found


def detect(root: Path = Path("/sys/fs/cgroup"),
           mountinfo: Path = Path("/proc/self/mountinfo")) -> Driver:
    """The driver for this machine's cgroups.

    ``root`` itself a cgroup2 mount with controllers -> :class:`V2Driver`;
    else v1 memory or pids hierarchies mounted -> :class:`V1Driver`;
    else (or when not writable) a :class:`NoDriver` that says why.
    """
    root = Path(root)
    try:
        entries = _read_mountinfo(Path(mountinfo))
    except OSError as e:
        return NoDriver(f"cannot read {mountinfo}: {_errno_text(e)}")
    at_root = [e for e in entries if Path(e.mount_point) == root]
    if at_root and at_root[-1].fstype == "cgroup2":
        if (_read(root / "cgroup.controllers") or "").split():
            if os.access(root, os.W_OK):
                return V2Driver(root)
            return NoDriver(f"cgroup v2 at {root} is not writable by uid {host_uid()}: "
                            "limits need root or a delegated cgroup")
    hierarchies = _v1_hierarchies(entries, root)
    main = [p for name, p in hierarchies.items() if {"memory", "pids"} & set(name.split(","))]
    if main:
        if all(os.access(p, os.W_OK) for p in main):
            return V1Driver(hierarchies)
        return NoDriver(f"cgroup v1 hierarchies under {root} are not writable by uid "
                        f"{host_uid()}: limits need root")
    if at_root and at_root[-1].fstype == "cgroup2":
        return NoDriver(f"cgroup v2 at {root} has no controllers enabled")
    return NoDriver(f"no cgroup v2 at {root} and no cgroup v1 memory or pids hierarchy mounted")
