"""Control groups: how the kernel limits and accounts a group of processes.

A cgroup is a directory in a special file system. Writing a pid into its
``cgroup.procs`` file moves that process (and every child it forks later) into
the group; writing a number into a control file such as ``pids.max`` makes the
kernel enforce it. Namespaces decide what a container can *see*; cgroups decide
how much it can *use* -- memory, processes, CPU time.

There are two layouts of that file system:

- **v1** (legacy): one hierarchy per controller, each its own mount --
  ``/sys/fs/cgroup/memory/...``, ``/sys/fs/cgroup/pids/...`` -- sometimes
  several controllers share one (``cpu,cpuacct``). A process has one cgroup in
  *each* hierarchy, so a container is a directory in every one of them.
- **v2** (unified): a single tree at ``/sys/fs/cgroup``. A parent hands
  controllers down to its children by writing ``+memory`` into its
  ``cgroup.subtree_control``; the files are ``memory.max``, ``pids.max``,
  ``cpu.max``. Most current distributions use v2 only.
- *hybrid* machines mount the v1 hierarchies and an (often controller-less)
  cgroup2 at ``/sys/fs/cgroup/unified``; the limits then live in v1.

:func:`detect` returns a :class:`Driver` for what this machine has --
:class:`V2Driver`, :class:`V1Driver`, or :class:`NoDriver` when no cgroup can
be written (rootless without a delegated cgroup): that one applies nothing
and says so in ``why_not()`` and in each cgroup's ``warnings``.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.errors import CgroupError, InvalidArgument
from engine.spec import parse_size  # noqa: F401 - part of this module's API

__all__ = [
    "Limits", "parse_size", "detect", "Driver", "V1Driver", "V2Driver", "NoDriver",
    "Cgroup", "V1Cgroup", "V2Cgroup", "NoCgroup", "Mount", "Symlink", "DEFAULT_PARENT", "CPU_PERIOD",
    "MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "RO_FLAGS",
]

DEFAULT_PARENT = "container-lab"
CPU_PERIOD = 100_000            # microseconds: the CFS period docker uses

# mount(2) flags, as plain numbers so the runtime can pass them straight on.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
RO_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC

# v1 "unlimited" is a huge page-aligned number (9223372036854771712 with 4 KiB
# pages); anything this large means "no limit" whatever the page size.
_V1_UNLIMITED = 1 << 62
_KILL_TIMEOUT = 2.0             # seconds to wait for a group to empty / rmdir
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_WANTED_V1 = ("memory", "pids", "cpu", "cpuacct")
_WANTED_V2 = ("memory", "pids", "cpu")
_FEATURES = ("memory", "pids", "cpu", "swap")


# -- limits --------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """What a container may use. ``None`` everywhere means no limit at all.

    ``memory_swap`` follows docker: memory *plus* swap. Left ``None`` with a
    memory limit it equals the limit (no swap); ``-1`` allows unlimited swap.
    ``cpus=0.5`` means half of one CPU: 50 ms of every 100 ms period.
    """

    memory: int | None = None
    memory_swap: int | None = None
    pids: int | None = None
    cpus: float | None = None

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory <= 0:
            raise InvalidArgument(f"invalid memory limit: {self.memory} (must be > 0)")
        if self.pids is not None and self.pids <= 0:
            raise InvalidArgument(f"invalid pids limit: {self.pids} (must be > 0)")
        if self.cpus is not None and not self.cpus >= 0.01:
            raise InvalidArgument(f"invalid cpus: {self.cpus} (the smallest is 0.01)")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise InvalidArgument("a memory+swap limit needs a memory limit too")
            if self.memory_swap < self.memory:
                raise InvalidArgument(
                    f"memory+swap limit ({self.memory_swap}) must be at least "
                    f"the memory limit ({self.memory})")

    @property
    def swap(self) -> int | None:
        """Swap bytes allowed on top of memory: 0 = swap off, None = unlimited."""
        if self.memory is None or self.memory_swap == -1:
            return None
        if self.memory_swap is None:
            return 0
        return self.memory_swap - self.memory

    @property
    def cpu_quota(self) -> int | None:
        """Microseconds of CPU per :data:`CPU_PERIOD`, or None for no limit."""
        return None if self.cpus is None else round(self.cpus * CPU_PERIOD)


# -- what the runtime mounts inside the container ------------------------------

@dataclass(frozen=True)
class Mount:
    """One mount(2) call, with ``target`` relative to the container's root.

    ``flags`` are the final ones. A tmpfs that must hold mount points and
    symlinks is mounted writable first and remounted read-only at the end
    (runc does the same).
    """

    source: str
    target: str
    fstype: str
    flags: int
    data: str

    def as_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "fstype": self.fstype,
                "flags": self.flags, "data": self.data}


@dataclass(frozen=True)
class Symlink:
    """A symlink ``link`` (relative to the container's root) pointing at ``target``."""

    target: str
    link: str

    def as_dict(self) -> dict:
        return {"symlink": self.target, "target": self.link}


# -- small file helpers --------------------------------------------------------

def _errno_text(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    return f"{name} ({e.strerror})"


def _write(path: Path, value: str) -> None:
    """Write a control file in one write(2). Never creates it: on a cgroup file
    system every control file already exists, so a missing one is an error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {_errno_text(e)}") from e


class _Log(list):
    """The control-file writes a create() made, in order, as (path, value):
    the supervisor's transcript shows them as ``echo value > path``."""

    def write(self, path: Path, value: str) -> None:
        _write(path, value)
        self.append((path, value))


def _read(path: Path) -> str | None:
    """A control file's text, or None when it does not exist."""
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _read_max(path: Path) -> int | None:
    """A v2 limit file: a number, or "max" (and missing) meaning None."""
    text = _read(path)
    if text is None or text.strip() == "max":
        return None
    return int(text.split()[0])


def _read_key(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat keyed file ("oom_kill 3" lines)."""
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


def _read_pids(path: Path) -> set[int]:
    text = _read(path)
    return {int(p) for p in text.split()} if text else set()


def _mkdir_p(root: Path, rel: str, mkdir: Callable[[Path], None]) -> None:
    """Make each directory of ``rel`` under ``root`` that is missing."""
    path = root
    for part in rel.split("/"):
        path = path / part
        try:
            mkdir(path)
        except FileExistsError:
            pass
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {path}: {_errno_text(e)}") from e


def _check_names(cid: str, parent: str) -> None:
    """Refuse names that could point anywhere but one directory under the parent."""
    if not _NAME.fullmatch(cid or ""):
        raise InvalidArgument(f"invalid cgroup name: {cid!r}")
    if not parent or not all(_NAME.fullmatch(p) for p in parent.split("/")):
        raise InvalidArgument(f"invalid cgroup parent: {parent!r}")


# -- cgroups -------------------------------------------------------------------

class Cgroup:
    """One container's cgroup: a directory in each hierarchy (one on v2).

    ``paths`` maps hierarchy name -> directory, for ``inspect``; ``warnings``
    lists every requested limit that could NOT be applied -- show them;
    ``writes`` are the (file, value) pairs create() wrote, in order.
    """

    layout = "none"

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

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process in here."""
        return bool(self.usage()["oom_kills"])

    def kill_all(self) -> bool:
        """SIGKILL every process, again and again until none is left (bounded).

        A process may fork between the read and the kill, hence the loop; the
        pids limit keeps even a fork bomb finite. True once the group is empty.
        """
        deadline = time.monotonic() + _KILL_TIMEOUT
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
        deadline = time.monotonic() + _KILL_TIMEOUT
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


class V2Cgroup(Cgroup):
    """A cgroup in the unified (v2) tree."""

    layout = "v2"

    @property
    def _dir(self) -> Path:
        return self.paths["unified"]

    def usage(self) -> dict:
        d = self._dir
        usec = _read_key(d / "cpu.stat", "usage_usec")
        return {
            "memory_current": _read_int(d / "memory.current"),
            "memory_limit": _read_max(d / "memory.max"),
            "memory_peak": _read_int(d / "memory.peak"),
            "pids_current": _read_int(d / "pids.current"),
            "pids_limit": _read_max(d / "pids.max"),
            "cpu_usage_ns": None if usec is None else usec * 1000,
            "oom_kills": _read_key(d / "memory.events", "oom_kill"),
            "pids_max_hits": _read_key(d / "pids.events", "max"),
        }

    def kill_all(self) -> bool:
        """Write "1" to ``cgroup.kill`` (Linux 5.14+): the kernel kills the whole
        group at once, no race with fork. Older kernels: the signal loop."""
        kill = self._dir / "cgroup.kill"
        if kill.exists() and self.pids():
            try:
                _write(kill, "1")
            except CgroupError:
                pass                        # gone meanwhile, or refused: loop below
            deadline = time.monotonic() + _KILL_TIMEOUT
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().kill_all()


class V1Cgroup(Cgroup):
    """A cgroup in v1: one directory per hierarchy, keyed by its controllers."""

    layout = "v1"

    def _dir(self, controller: str) -> Path | None:
        for name, path in self.paths.items():
            if controller in name.split(","):
                return path
        return None

    def usage(self) -> dict:
        mem, pids, acct = self._dir("memory"), self._dir("pids"), self._dir("cpuacct")
        out: dict = dict.fromkeys(("memory_current", "memory_limit", "memory_peak", "pids_current",
                                   "pids_limit", "cpu_usage_ns", "oom_kills", "pids_max_hits"))
        if mem:
            limit = _read_int(mem / "memory.limit_in_bytes")
            out.update(
                memory_current=_read_int(mem / "memory.usage_in_bytes"),
                memory_limit=None if limit is None or limit >= _V1_UNLIMITED else limit,
                memory_peak=_read_int(mem / "memory.max_usage_in_bytes"),
                oom_kills=_read_key(mem / "memory.oom_control", "oom_kill"))
        if pids:
            out.update(
                pids_current=_read_int(pids / "pids.current"),
                pids_limit=_read_max(pids / "pids.max"),
                pids_max_hits=_read_key(pids / "pids.events", "max"))
        if acct:
            out["cpu_usage_ns"] = _read_int(acct / "cpuacct.usage")
        return out


class NoCgroup(Cgroup):
    """Stands in for a cgroup that could not be made: joins nothing, limits
    nothing, knows nothing (usage values are None, never a made-up 0)."""

    def __init__(self, cid: str, parent: str, warnings: Iterable[str] = ()):
        super().__init__(cid, parent, {}, warnings=warnings)

    def usage(self) -> dict:
        return dict.fromkeys(("memory_current", "memory_limit", "memory_peak", "pids_current",
                              "pids_limit", "cpu_usage_ns", "oom_kills", "pids_max_hits"))


# -- drivers -------------------------------------------------------------------

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
        warnings = [f"{what} limit NOT applied: {self.reason}"
                    for what, value in asked.items() if value is not None]
        return NoCgroup(cid, parent, warnings)

    def open(self, cid: str, parent: str = DEFAULT_PARENT) -> Cgroup:
        _check_names(cid, parent)
        return NoCgroup(cid, parent)


class V2Driver(Driver):
    """The unified hierarchy mounted at ``root`` (normally /sys/fs/cgroup)."""

    name = "v2"

    def __init__(self, root: Path, **seams):
        super().__init__(**seams)
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<V2Driver {self.root}>"

    def _controllers(self, path: Path) -> list[str]:
        return (_read(path / "cgroup.controllers") or "").split()

    def why_not(self) -> dict[str, str]:
        have = self._controllers(self.root)
        out = {c: f"the {c} controller is not available in {self.root}/cgroup.controllers"
               for c in _WANTED_V2 if c not in have}
        if "memory" in out:
            out["swap"] = out["memory"]
        elif not self._swap_accounting():
            out["swap"] = "memory.swap.max is missing: the kernel does not account swap"
        return out

    def _swap_accounting(self) -> bool:
        """Swap is limitable when cgroups with memory.current also have
        memory.swap.max; with no such cgroup yet, create() finds out."""
        try:
            for entry in os.scandir(self.root):
                child = Path(entry.path)
                if entry.is_dir() and (child / "memory.current").exists():
                    return (child / "memory.swap.max").exists()
        except OSError:
            pass
        return True

    def _roots(self) -> list[Path]:
        return [self.root]

    def _cgroup(self, cid: str, parent: str) -> Cgroup:
        return V2Cgroup(cid, parent, {"unified": self.root / parent / cid}, rmdir=self._rmdir)

    def _delegate(self, path: Path, log: _Log) -> list[str]:
        """Enable our controllers for ``path``'s children; return those enabled."""
        have = self._controllers(path)
        enabled = (_read(path / "cgroup.subtree_control") or "").split()
        missing = [c for c in _WANTED_V2 if c in have and c not in enabled]
        if missing:
            log.write(path / "cgroup.subtree_control", " ".join("+" + c for c in missing))
        return [c for c in _WANTED_V2 if c in have]

    def create(self, cid: str, limits: Limits, parent: str = DEFAULT_PARENT) -> Cgroup:
        _check_names(cid, parent)
        log = _Log()
        enabled = self._delegate(self.root, log)
        _mkdir_p(self.root, parent, self._mkdir)
        path = self.root
        for part in parent.split("/"):
            path = path / part
            enabled = self._delegate(path, log)
        cg = self._cgroup(cid, parent)
        d = cg.paths["unified"]
        try:
            self._mkdir(d)
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {d}: {_errno_text(e)}") from e
        warnings: list[str] = []
        try:
            if limits.memory is not None:
                if "memory" in enabled:
                    log.write(d / "memory.max", str(limits.memory))
                    swap = limits.swap
                    if swap is not None:
                        if (d / "memory.swap.max").exists():
                            log.write(d / "memory.swap.max", str(swap))
                        else:
                            warnings.append("swap limit NOT applied: memory.swap.max is missing "
                                            "(the kernel does not account swap)")
                else:
                    warnings.append(f"memory limit NOT applied: {self.why_not()['memory']}")
            if limits.pids is not None:
                if "pids" in enabled:
                    log.write(d / "pids.max", str(limits.pids))
                else:
                    warnings.append(f"pids limit NOT applied: {self.why_not()['pids']}")
            if limits.cpu_quota is not None:
                if "cpu" in enabled:
                    log.write(d / "cpu.max", f"{limits.cpu_quota} {CPU_PERIOD}")
                else:
                    warnings.append(f"cpu limit NOT applied: {self.why_not()['cpu']}")
        except CgroupError as e:
            raise self._rollback([d], e) from e
        cg.warnings, cg.writes = tuple(warnings), tuple(log)
        return cg

    def container_mounts(self) -> list[Mount | Symlink]:
        return [Mount("cgroup", "sys/fs/cgroup", "cgroup2", RO_FLAGS, "")]


class V1Driver(Driver):
    """v1 hierarchies: ``{"memory": Path, "pids": Path, "cpu,cpuacct": Path}``.

    Each key is a hierarchy's controller list as the kernel reports it, each
    value where it is mounted. Only memory, pids, cpu and cpuacct are used.
    """

    name = "v1"

    def __init__(self, hierarchies: Mapping[str, Path], **seams):
        super().__init__(**seams)
        ours = [name for name in hierarchies if set(name.split(",")) & set(_WANTED_V1)]
        ours.sort(key=lambda name: min(_WANTED_V1.index(c) for c in name.split(",")
                                       if c in _WANTED_V1))
        self.hierarchies = {name: Path(hierarchies[name]) for name in ours}

    def __repr__(self) -> str:
        return f"<V1Driver {sorted(self.hierarchies)}>"

    def _hierarchy(self, controller: str) -> Path | None:
        for name, path in self.hierarchies.items():
            if controller in name.split(","):
                return path
        return None

    def why_not(self) -> dict[str, str]:
        out = {c: f"no cgroup v1 {c} hierarchy is mounted"
               for c in ("memory", "pids", "cpu") if self._hierarchy(c) is None}
        mem = self._hierarchy("memory")
        if mem is None:
            out["swap"] = out["memory"]
        elif not (mem / "memory.memsw.limit_in_bytes").exists():
            out["swap"] = ("memory.memsw.* is missing (kernel booted without swapaccount=1): "
                           "swap can only be discouraged with memory.swappiness=0")
        return out

    def _roots(self) -> list[Path]:
        return list(self.hierarchies.values())

    def _cgroup(self, cid: str, parent: str) -> Cgroup:
        paths = {name: root / parent / cid for name, root in self.hierarchies.items()}
        return V1Cgroup(cid, parent, paths, rmdir=self._rmdir)

    def create(self, cid: str, limits: Limits, parent: str = DEFAULT_PARENT) -> Cgroup:
        _check_names(cid, parent)
        cg = self._cgroup(cid, parent)
        made: list[Path] = []
        warnings: list[str] = []
        log = _Log()
        try:
            for name, root in self.hierarchies.items():
                _mkdir_p(root, parent, self._mkdir)
                d = cg.paths[name]
                try:
                    self._mkdir(d)
                except OSError as e:
                    raise CgroupError(f"cannot create cgroup {d}: {_errno_text(e)}") from e
                made.append(d)
            mem, pids, cpu = (cg._dir(c) for c in ("memory", "pids", "cpu"))
            if limits.memory is not None:
                if mem is None:
                    warnings.append(f"memory limit NOT applied: {self.why_not()['memory']}")
                else:
                    warnings += self._write_memory(mem, limits, log)
            if limits.pids is not None:
                if pids is None:
                    warnings.append(f"pids limit NOT applied: {self.why_not()['pids']}")
                else:
                    log.write(pids / "pids.max", str(limits.pids))
            if limits.cpu_quota is not None:
                if cpu is None:
                    warnings.append(f"cpu limit NOT applied: {self.why_not()['cpu']}")
                else:
                    log.write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD))
                    log.write(cpu / "cpu.cfs_quota_us", str(limits.cpu_quota))
        except CgroupError as e:
            raise self._rollback(made, e) from e
        cg.warnings, cg.writes = tuple(warnings), tuple(log)
        return cg

    @staticmethod
    def _write_memory(d: Path, limits: Limits, log: _Log) -> list[str]:
        """memory first, then memory+swap (which may never be below memory)."""
        log.write(d / "memory.limit_in_bytes", str(limits.memory))
        swap = limits.swap
        if swap is None:
            return []
        if (d / "memory.memsw.limit_in_bytes").exists():
            log.write(d / "memory.memsw.limit_in_bytes", str(limits.memory + swap))
            return []
        if swap == 0:
            log.write(d / "memory.swappiness", "0")
            return ["swap only discouraged (memory.swappiness=0), not limited: "
                    "memory.memsw.* is missing (kernel booted without swapaccount=1)"]
        return ["swap limit NOT applied: memory.memsw.* is missing "
                "(kernel booted without swapaccount=1)"]

    def container_mounts(self) -> list[Mount | Symlink]:
        """A tmpfs at /sys/fs/cgroup, one cgroup mount per hierarchy, and a
        symlink per controller of a shared one (cpu -> cpu,cpuacct).

        Only hierarchies the container has its own cgroup in are mounted: in
        any other, its cgroup namespace root would be the host's whole tree.
        """
        out: list[Mount | Symlink] = [
            Mount("tmpfs", "sys/fs/cgroup", "tmpfs", RO_FLAGS, "mode=755")]
        links: list[Mount | Symlink] = []
        for name in self.hierarchies:
            out.append(Mount("cgroup", f"sys/fs/cgroup/{name}", "cgroup", RO_FLAGS, name))
            if "," in name:
                links += [Symlink(name, f"sys/fs/cgroup/{c}") for c in name.split(",")]
        return out + links


# -- detection -----------------------------------------------------------------

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
            return NoDriver(f"cgroup v2 at {root} is not writable by uid {os.geteuid()}: "
                            "limits need root or a delegated cgroup")
    hierarchies = _v1_hierarchies(entries, root)
    main = [p for name, p in hierarchies.items() if {"memory", "pids"} & set(name.split(","))]
    if main:
        if all(os.access(p, os.W_OK) for p in main):
            return V1Driver(hierarchies)
        return NoDriver(f"cgroup v1 hierarchies under {root} are not writable by uid "
                        f"{os.geteuid()}: limits need root")
    if at_root and at_root[-1].fstype == "cgroup2":
        return NoDriver(f"cgroup v2 at {root} has no controllers enabled")
    return NoDriver(f"no cgroup v2 at {root} and no cgroup v1 memory or pids hierarchy mounted")
