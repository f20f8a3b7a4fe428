"""What the snapshots of a container remember between calls: each of its
processes' kept /proc/PID/stat fd and last fields (:class:`_Watch`), and its
network watcher -- for at most :data:`_MAX_WATCHED` containers, within a
budget of open fds. :func:`forget` drops a container's (``rm`` calls it).
See "How it stays cheap" in :mod:`.procs`.
"""

from __future__ import annotations

import os
import threading

_MAX_WATCHED = 32          # containers whose processes are remembered between snapshots


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

