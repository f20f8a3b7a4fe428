"""What the checks may look at: the engine's state and event log, and the kernel.

:class:`EngineView` is the one seam between :mod:`lessons.checks` and the real
world. It reads through :class:`engine.client.Client` (events, inspect, ps,
networks, snapshot, diff) and, for what the engine does not report, straight from the
kernel: a container's hostname (its UTS namespace, entered by a short-lived
helper process so no thread of ours changes namespace), the processes a
container can see (its own ``/proc``, read through ``/proc/PID/root``) and
how often its CPU limit held it back (``cpu.stat`` in its cgroup). Every method returns plain data and is safe to call from
any thread; a test may pass a fake with the same methods.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from engine import namespaces

# Runs in a fresh interpreter: join the UTS namespace of PID argv[1], print its hostname.
# Not root, the container is in the user namespace of the user's rootless
# engine: its owner joins that first (setns of a UTS namespace needs
# CAP_SYS_ADMIN in the namespace that owns it).
_HOSTNAME_HELPER = """\
import ctypes, os, socket, sys
pid, libc = int(sys.argv[1]), ctypes.CDLL(None, use_errno=True)
if os.geteuid() != 0 and os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
    if libc.setns(os.open(f"/proc/{pid}/ns/user", os.O_RDONLY), 0x10000000) != 0:
        sys.exit(f"setns user: {os.strerror(ctypes.get_errno())}")
fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
if libc.setns(fd, 0x04000000) != 0:
    sys.exit(f"setns: {os.strerror(ctypes.get_errno())}")
print(socket.gethostname())
"""


class EngineView:
    """Read-only access to what really happened, for checks."""

    def __init__(self, client=None):
        if client is None:
            from engine.client import Client
            client = Client()
        self.client = client

    # -- the engine ----------------------------------------------------------------
    def cursor(self) -> int:
        """The sequence number of the newest event: a step begins here."""
        return int(self.client.ping().get("events_seq", 0))

    def events(self, after: int) -> list[dict]:
        return list(self.client.events(after=after))

    def container(self, ref: str) -> dict | None:
        """The container's inspect record, or None when there is none by that name."""
        from engine import errors
        try:
            return self.client.inspect(ref)
        except errors.ContainerNotFound:
            return None

    def containers(self) -> list[dict]:
        return self.client.ps(all=True)

    def networks(self) -> list[str]:
        """The names of the engine's networks (``bridge`` and those made with ``network create``)."""
        return [n["Name"] for n in self.client.networks()]

    def snapshot(self, ref: str) -> dict:
        return self.client.snapshot(ref)

    def diff(self, ref: str) -> list[tuple[str, str]]:
        return self.client.diff(ref, record=False)     # a check's look is not the learner's

    # -- the kernel ----------------------------------------------------------------
    def host_hostname(self) -> str:
        return socket.gethostname()

    def hostname_of(self, pid: int) -> str | None:
        """The hostname inside the UTS namespace of host PID ``pid``."""
        try:
            proc = subprocess.run([sys.executable, "-c", _HOSTNAME_HELPER, str(pid)], capture_output=True,
                                  text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    def namespace_inode(self, pid: int | str, kind: str) -> int | None:
        return namespaces.inode(pid, kind)

    def cpu_throttled(self, record: dict) -> tuple[int, int] | None:
        """(periods in which the kernel throttled the container, periods so
        far) from ``cpu.stat`` in its cgroup (v1 ``cpu``, or v2), or None when
        there is no CPU controller to ask (no limit, or the container is gone)."""
        paths = record.get("cgroup") or {}
        dirs = [p for key, p in paths.items() if "cpu" in key.split(",")] + \
               [p for key, p in paths.items() if key == "unified"]
        for d in dirs:
            try:
                with open(os.path.join(d, "cpu.stat")) as f:
                    stat = dict(line.split() for line in f if len(line.split()) == 2)
            except OSError:
                continue
            if "nr_throttled" in stat and "nr_periods" in stat:
                return int(stat["nr_throttled"]), int(stat["nr_periods"])
        return None

    def host_namespaces(self) -> dict[str, int]:
        from engine.observe import reference_namespaces
        return reference_namespaces()[0]

    def visible_processes(self, pid: int | None) -> list[tuple[int, list[str]]]:
        """(PID as seen there, argv) of every process visible from inside the
        container whose first process is host PID ``pid`` (None: the host)."""
        proc = "/proc" if pid is None else f"/proc/{pid}/root/proc"
        out = []
        for name in _pids(proc):
            try:
                with open(f"{proc}/{name}/cmdline", "rb") as f:
                    raw = f.read()
                if not raw:
                    with open(f"{proc}/{name}/comm", "rb") as f:
                        raw = b"[" + f.read().strip() + b"]"
            except OSError:
                continue
            out.append((int(name), raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")))
        return sorted(out)

    def process_states(self, pid: int) -> list[tuple[int, str, str]]:
        """(PID as seen there, state letter, command name) of every process
        visible from inside the container whose first process is host PID
        ``pid``, from ``/proc/N/stat`` (the state after the name in parentheses)."""
        proc = f"/proc/{pid}/root/proc"
        out = []
        for name in _pids(proc):
            try:
                with open(f"{proc}/{name}/stat", "rb") as f:
                    raw = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            head, _, tail = raw.rpartition(")")
            comm = head.partition("(")[2]
            fields = tail.split()
            if fields:
                out.append((int(name), fields[0], comm))
        return sorted(out)


def _pids(proc: str) -> list[str]:
    """The process directories of the /proc at ``proc`` (none when it cannot be read)."""
    try:
        return [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return []
