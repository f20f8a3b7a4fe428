"""What every cgroup layout shares: a container's :class:`Cgroup` (join it,
list its processes, kill them all, remove it) and the :class:`Driver` that
makes and finds them -- and the stand-ins for a machine with no writable
cgroups (:class:`NoCgroup`, :class:`NoDriver`), which limit nothing and say so.

The layouts themselves -- where the control files are, what is written to
them, how usage is read back -- are :mod:`.v2` and :mod:`.v1`.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from engine.errors import CgroupError
from engine.spec import DEFAULT_MEMORY, DEFAULT_PIDS

from .files import _check_names, _errno_text, _read_pids, _write
from .limits import Limits
from .mounts import Mount, Symlink

DEFAULT_PARENT = "container-lab"
_FEATURES = ("memory", "pids", "cpu", "swap")
# Every key of a cgroup's usage(); a value the kernel does not report is None.
USAGE_KEYS = ("memory_current", "memory_limit", "memory_peak", "pids_current",
              "pids_limit", "cpu_usage_ns", "oom_kills", "pids_max_hits")


class Cgroup:
    """One container's cgroup: a directory in each hierarchy (one on v2).

    ``paths`` maps hierarchy name -> directory, for ``inspect``; ``warnings``
    lists every requested limit that could NOT be applied -- show them;
    ``writes`` are the (file, value) pairs create() wrote, in order.
    """

    layout = "none"
    kill_timeout = 2.0              # seconds to wait for the group to empty / rmdir

    def __init__(self, cid: str, parent: str, paths: Mapping[str, Path],
                 *, rmdir: Callable[[Path], None] = os.rmdir,
                 warnings: Iterable[str] = ()):
        self.cid, self.parent = cid, parent
        self.paths: dict[str, Path] = dict(paths)
        self.warnings: tuple[str, ...] = tuple(warnings)
        self.writes: tuple[tuple[Path, str], ...] = ()
        self._rmdir = rmdir

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.parent}/{self.cid} {self.layout}>"

    def exists(self) -> bool:
        return any(p.is_dir() for p in self.paths.values())

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files to write "0" to (meaning "me") to join.

        The container's first process writes "0" itself: it is PID 1 of its
        own pid namespace, so its pid as it sees it means nothing out here.
        """
        return [p / "cgroup.procs" for p in self.paths.values()]

    def join(self, pid: int) -> None:
        """Move process ``pid`` (as seen from here) into this cgroup."""
        for f in self.procs_files():
            _write(f, str(pid))

    def pids(self) -> list[int]:
        """Every process in the cgroup (all hierarchies), sorted."""
        found: set[int] = set()
        for f in self.procs_files():
            found |= _read_pids(f)
        return sorted(found)

    def usage(self) -> dict:
        """Current use and limits; a value the kernel does not report is None."""
        raise NotImplementedError

    def memory_stat(self) -> dict[str, int]:
        """The counters of ``memory.stat`` (cache, inactive_file ...); {} when unread."""
        return {}

    def io_bytes(self) -> tuple[int, int] | None:
        """Bytes read from and written to block devices by the group, or None
        when this layout does not account them for the container."""
        return None

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process in here."""
        return bool(self.usage()["oom_kills"])

    def kill_all(self) -> bool:
        """SIGKILL every process, again and again until none is left (bounded).

        A process may fork between the read and the kill, hence the loop; the
        pids limit keeps even a fork bomb finite. True once the group is empty.
        """
        deadline = time.monotonic() + self.kill_timeout
        while True:
            pids = [p for p in self.pids() if p > 1 and p != os.getpid()]
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def destroy(self) -> None:
        """Kill everything inside, then remove the directory in every hierarchy.

        rmdir fails with EBUSY while dying processes are still leaving, so it
        is retried for a short while. A cgroup already gone is fine.
        """
        self.kill_all()
        for path in reversed(list(dict.fromkeys(self.paths.values()))):
            self._remove(path)

    def _remove(self, path: Path) -> None:
        deadline = time.monotonic() + self.kill_timeout
        while True:
            try:
                self._rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {path}: {_errno_text(e)}") from e
            time.sleep(0.02)
            self.kill_all()



class NoCgroup(Cgroup):
    """Stands in for a cgroup that could not be made: joins nothing, limits
    nothing, knows nothing (usage values are None, never a made-up 0)."""

    def __init__(self, cid: str, parent: str, warnings: Iterable[str] = ()):
        super().__init__(cid, parent, {}, warnings=warnings)

    def usage(self) -> dict:
        return dict.fromkeys(USAGE_KEYS)


class Driver:
    """Creates and finds container cgroups in one layout.

    ``mkdir`` and ``rmdir`` are the two calls that behave specially on a cgroup
    file system (mkdir fills the directory with control files; rmdir removes a
    directory that still lists them). Tests pass stand-ins for a fake tree.
    """

    name = "none"

    def __init__(self, *, mkdir: Callable[[Path], None] = os.mkdir,
                 rmdir: Callable[[Path], None] = os.rmdir):
        self._mkdir, self._rmdir = mkdir, rmdir

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def supports(self) -> dict[str, bool]:
        """Which of memory, pids, cpu and swap limits this machine can apply."""
        return {f: f not in self.why_not() for f in _FEATURES}

    def why_not(self) -> dict[str, str]:
        """For each limit that cannot be applied, a sentence saying why."""
        raise NotImplementedError

    def create(self, cid: str, limits: Limits, parent: str = DEFAULT_PARENT) -> Cgroup:
        """Make ``<parent>/<cid>`` and write ``limits``; undone on failure."""
        raise NotImplementedError

    def open(self, cid: str, parent: str = DEFAULT_PARENT) -> Cgroup:
        """The existing cgroup ``<parent>/<cid>`` (CgroupError when there is none)."""
        _check_names(cid, parent)
        cg = self._cgroup(cid, parent)
        if not cg.exists():
            raise CgroupError(f"no cgroup {parent}/{cid} ({self.name})")
        return cg

    def list_ids(self, parent: str = DEFAULT_PARENT) -> list[str]:
        """Names of the cgroups under ``parent`` (to find leftovers for gc)."""
        names: set[str] = set()
        for root in self._roots():
            try:
                names |= {e.name for e in os.scandir(root / parent) if e.is_dir(follow_symlinks=False)}
            except (FileNotFoundError, NotADirectoryError):
                pass
        return sorted(names)

    def remove_parent_if_empty(self, parent: str = DEFAULT_PARENT) -> bool:
        """Remove ``parent`` in every hierarchy where it holds no cgroup.

        True when it is gone everywhere.
        """
        _check_names("x", parent)
        gone = True
        for root in self._roots():
            path = root / parent
            try:
                if any(e.is_dir(follow_symlinks=False) for e in os.scandir(path)):
                    gone = False
                    continue
                self._rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise CgroupError(f"cannot remove cgroup {path}: {_errno_text(e)}") from e
                gone = False
        return gone

    def container_mounts(self) -> list[Mount | Symlink]:
        """How to mount the cgroup tree at /sys/fs/cgroup inside a container
        that has entered its own cgroup namespace (it then sees only its own
        cgroup, as the root). All read-only."""
        return []

    def _roots(self) -> list[Path]:
        return []

    def _cgroup(self, cid: str, parent: str) -> Cgroup:
        raise NotImplementedError

    def _rollback(self, made: list[Path], error: CgroupError) -> CgroupError:
        """Remove the directories a failed create() made; return the error."""
        for path in reversed(made):
            try:
                self._rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                return CgroupError(f"{error.message}; and cannot remove {path}: {_errno_text(e)}")
        return error


class NoDriver(Driver):
    """No writable cgroups: nothing can be limited, and it says so."""

    name = "none"

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason

    def __repr__(self) -> str:
        return f"<NoDriver: {self.reason}>"

    def why_not(self) -> dict[str, str]:
        return dict.fromkeys(_FEATURES, self.reason)

    def create(self, cid: str, limits: Limits, parent: str = DEFAULT_PARENT) -> Cgroup:
        """A :class:`NoCgroup` whose warnings name every requested limit."""
        _check_names(cid, parent)
        asked = {"memory": limits.memory, "pids": limits.pids, "cpu": limits.cpus,
                 "swap": limits.memory_swap}
        # The engine's own safety defaults are not the user's asking: no
        # warning for them on every run (doctor says limits are off here).
        defaults = {"memory": DEFAULT_MEMORY, "pids": DEFAULT_PIDS}
        warnings = [f"{what} limit NOT applied: {self.reason}"
                    for what, value in asked.items() if value is not None and value != defaults.get(what)]
        return NoCgroup(cid, parent, warnings)

    def open(self, cid: str, parent: str = DEFAULT_PARENT) -> Cgroup:
        _check_names(cid, parent)
        return NoCgroup(cid, parent)

