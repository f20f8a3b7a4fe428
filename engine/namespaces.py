"""The kinds of Linux namespace, and how to tell which one a process is in.

One list for the engine: ``inspect`` (the supervisor's namespaces table),
``doctor``'s checks and :mod:`engine.observe`'s snapshot all walk it in this
order. Two processes share a namespace exactly when the inodes behind their
``/proc/PID/ns/<kind>`` are equal.
"""

from __future__ import annotations

import os

# As /proc/PID/ns names them; the order in which they are shown.
KINDS = ("pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time")


def inode(pid: int | str, kind: str) -> int | None:
    """The inode of ``pid``'s namespace of ``kind`` (``"self"`` for this
    process), or None when the process has gone or may not be looked at."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None
