"""A container's namespaces -- the inodes behind /proc/PID/ns/*, compared
with the host's and other containers' (equal inodes: the same namespace) --
and its hostname, read on a thread that joins its UTS namespace for a moment.
"""

from __future__ import annotations

import os
import threading

from engine.namespaces import KINDS as NAMESPACES
from engine.namespaces import inode as _ns_inode


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


def hostname(pid: int) -> str | None:
    """The hostname process ``pid`` sees: its UTS namespace's, read on a
    short-lived thread that joins that namespace (UTS membership belongs to
    each thread) and comes back. None when it cannot be read."""
    from engine.netinfo import Unavailable, _in_namespace

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

