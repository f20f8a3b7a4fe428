"""cgroup v2, the unified hierarchy: one tree at /sys/fs/cgroup.

:class:`V2Driver` hands our controllers down the tree (``+memory`` into each
``cgroup.subtree_control``) and writes ``memory.max``, ``memory.swap.max``,
``pids.max`` and ``cpu.max``; :class:`V2Cgroup` reads usage back from
``memory.current``, ``cpu.stat``, ``memory.events`` and ``pids.events`` (and,
for ``stats``, ``memory.stat`` and ``io.stat``), and
kills a whole group at once through ``cgroup.kill``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.errors import CgroupError

from .base import DEFAULT_PARENT, Cgroup, Driver
from .files import (
    _check_names,
    _errno_text,
    _Log,
    _mkdir_p,
    _read,
    _read_int,
    _read_key,
    _read_keyed,
    _read_max,
    _write,
)
from .limits import CPU_PERIOD, Limits
from .mounts import RO_FLAGS, Mount, Symlink

_WANTED_V2 = ("memory", "pids", "cpu")


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

    def memory_stat(self) -> dict[str, int]:
        return _read_keyed(self._dir / "memory.stat")

    def io_bytes(self) -> tuple[int, int] | None:
        """The rbytes and wbytes of every device in ``io.stat`` ("8:0 rbytes=4096
        wbytes=0 rios=1 ..."); None when the io controller is not enabled."""
        text = _read(self._dir / "io.stat")
        if text is None:
            return None
        read = written = 0
        for line in text.splitlines():
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            read += int(fields.get("rbytes", 0) or 0)
            written += int(fields.get("wbytes", 0) or 0)
        return read, written

    def kill_all(self) -> bool:
        """Write "1" to ``cgroup.kill`` (Linux 5.14+): the kernel kills the whole
        group at once, no race with fork. Older kernels: the signal loop."""
        kill = self._dir / "cgroup.kill"
        if kill.exists() and self.pids():
            try:
                _write(kill, "1")
            except CgroupError:
                pass                        # gone meanwhile, or refused: loop below
            deadline = time.monotonic() + self.kill_timeout
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().kill_all()


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

