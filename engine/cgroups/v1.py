"""cgroup v1, the legacy layout: one hierarchy per controller, each its own
mount (``memory``, ``pids``, ``cpu,cpuacct`` ...), so a container's cgroup is
a directory in every one of them.

:class:`V1Driver` writes ``memory.limit_in_bytes`` (and
``memory.memsw.limit_in_bytes`` or ``memory.swappiness`` for swap),
``pids.max`` and the CFS quota; :class:`V1Cgroup` reads usage back from each
hierarchy's files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.errors import CgroupError

from .base import DEFAULT_PARENT, USAGE_KEYS, Cgroup, Driver
from .files import _check_names, _errno_text, _Log, _mkdir_p, _read, _read_int, _read_key, _read_keyed, _read_max
from .limits import CPU_PERIOD, Limits
from .mounts import RO_FLAGS, Mount, Symlink

# v1 "unlimited" is a huge page-aligned number (9223372036854771712 with 4 KiB
# pages); anything this large means "no limit" whatever the page size.
_V1_UNLIMITED = 1 << 62
_WANTED_V1 = ("memory", "pids", "cpu", "cpuacct")


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
        out: dict = dict.fromkeys(USAGE_KEYS)
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

    def memory_stat(self) -> dict[str, int]:
        mem = self._dir("memory")
        return _read_keyed(mem / "memory.stat") if mem else {}

    def io_bytes(self) -> tuple[int, int] | None:
        """Read and Write bytes of ``blkio.throttle.io_service_bytes_recursive``
        ("8:0 Read 4096" lines), when the container has a blkio cgroup."""
        blkio = self._dir("blkio")
        if blkio is None:
            return None
        for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive",
                     "blkio.throttle.io_service_bytes"):
            text = _read(blkio / name)
            if text is not None:
                break
        else:
            return None
        totals = {"Read": 0, "Write": 0}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in totals and parts[2].isdigit():
                totals[parts[1]] += int(parts[2])
        return totals["Read"], totals["Write"]


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

