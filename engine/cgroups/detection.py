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
            delegated, why = delegated_subtree(root)
            if delegated is not None:
                return V2Driver(delegated)
            return NoDriver(f"cgroup v2 at {root} is not writable by uid {host_uid()} and {why}: "
                            "limits need root or a delegated cgroup (systemd-run --user --scope -p Delegate=yes "
                            "container-lab ...)")
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


def own_cgroup(proc_cgroup: Path = Path("/proc/self/cgroup")) -> str | None:
    """This process's cgroup in the unified tree (the ``0::/path`` line)."""
    try:
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None


def delegated_subtree(root: Path, own: str | None = None) -> tuple[Path | None, str]:
    """Rootless on cgroup v2: the topmost cgroup at or above this process's
    that this user may manage -- the directory and its cgroup.procs and
    cgroup.subtree_control theirs, as systemd delegates user@UID.service or a
    ``Delegate=yes`` scope. (None, why) when there is none, or when it holds
    processes (the kernel lets no cgroup both hold processes and hand
    controllers down: :func:`claim_leaf` first, in the supervisor)."""
    own = own_cgroup() if own is None else own
    if own is None:
        return None, "this process is in no cgroup v2"
    uid, best = os.geteuid(), None
    path = root / own.lstrip("/")
    while path != root and path.is_relative_to(root):
        try:
            st = path.stat()
        except OSError:
            break
        writable = all(os.access(path / f, os.W_OK) for f in ("cgroup.procs", "cgroup.subtree_control"))
        if st.st_uid != uid or not writable:
            break
        best = path
        path = path.parent
    if best is None:
        return None, f"its cgroup {own} is not delegated to it"
    if (_read(best / "cgroup.procs") or "").split():
        return None, f"the delegated cgroup {best} holds processes (they belong in a leaf below it)"
    return best, ""


def claim_leaf(root: Path = Path("/sys/fs/cgroup")) -> str:
    """The rootless supervisor, alone in a delegated cgroup (a ``Delegate=yes``
    scope made for it), moves into a leaf below it, so that containers' cgroups
    may be made beside that leaf. Returns what it did, for the log ("" when
    nothing was to be done)."""
    own = own_cgroup()
    if own is None or own == "/":
        return ""
    path = root / own.lstrip("/")
    if path.stat().st_uid != os.geteuid() or not os.access(path / "cgroup.procs", os.W_OK):
        return ""
    if (_read(path / "cgroup.procs") or "").split() != [str(os.getpid())]:
        return ""
    leaf = path / "supervisor"
    try:
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(f"{os.getpid()}\n")
    except OSError as e:
        return f"could not move into {leaf}: {_errno_text(e)}"
    return f"moved into {leaf}, so that containers' cgroups may be made beside it"
