"""Namespaces a container shares or maps: ``--network``, ``--ipc``, ``--uts``
and ``--pid`` with ``container:NAME`` or ``host``, and the id maps of a new
user namespace (``--userns private``).
"""

from __future__ import annotations

import os
import signal

from ..container import Container
from ..errors import ContainerNotFound, NotRunning
from ..spec import ContainerConfig


class Sharing:
    """Which namespaces a new container joins, and its user namespace's id maps."""

    def sharing(self, mode: str, kind: str) -> Container | None:
        """The running container a ``container:NAME`` mode names (None for other modes)."""
        from ..spec import shared_container

        ref = shared_container(mode)
        if ref is None:
            return None
        try:
            other = self.find(ref)
        except ContainerNotFound:
            raise ContainerNotFound(f"cannot join the {kind} namespace of container {ref}: "
                                    f"no such container") from None
        if other.status != "running" or not other.pid:
            raise NotRunning(f"cannot join the {kind} namespace of container {ref}: it is not running")
        return other

    def shared_namespaces(self, cfg: ContainerConfig) -> dict:
        """ChildSpec fields for --network, --ipc and --uts: which namespaces the
        child creates, which it joins (by path and expected inode), /dev/shm."""
        new_ns, join_ns, shm = [], {}, None
        for kind, mode, private in (("uts", cfg.uts_mode, ("private",)),
                                    ("ipc", cfg.ipc_mode, ("private", "shareable")),
                                    ("net", cfg.network, ("none",))):
            other = self.sharing(mode, kind)
            if other is not None:
                path = f"/proc/{other.pid}/ns/{kind}"
                join_ns[kind] = {"path": path, "inode": os.stat(path).st_ino}
                # (/dev/shm stays the container's own: the kernel binds no mount
                # of another mount namespace. SysV IPC is what is shared.)
            elif mode in private:
                new_ns.append(kind)
            elif kind == "ipc":
                shm = "/dev/shm"            # --ipc host: the host's POSIX shared memory
        return {"new_ns": new_ns, "join_ns": join_ns, "shm_source": shm}

    def pid_namespace(self, cfg: ContainerConfig) -> tuple[int | None, str, list[dict]]:
        """The PID namespace to fork into -- None for a new one, ours for --pid
        host, another container's for --pid container:NAME (an fd, checked
        against that container's pidfd so a reused pid is never joined) --
        with the transcript's title and operations for the fork."""
        other = self.sharing(cfg.pid_mode, "pid")
        if other is not None:
            path = f"/proc/{other.pid}/ns/pid"
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                signal.pidfd_send_signal(other.pidfd, 0)
            except OSError:
                os.close(fd)
                raise NotRunning(f"cannot join the pid namespace of container {other.name}: it has stopped") from None
            return fd, f"Fork the first process into the PID namespace of container {other.name}", [
                {"call": "setns", "shell": f"nsenter --pid={path} --fork", "flags": ["CLONE_NEWPID"],
                 "namespace": "pid", "path": path}]
        if cfg.pid_mode == "host":
            return self.pidns_fd, "Fork the first process in the host's PID namespace (--pid host)", [
                {"call": "fork", "shell": "# fork: no new PID namespace"}]
        return None, "Fork the first process into a new PID namespace", [
            {"call": "unshare", "shell": "unshare --pid --fork", "flags": ["CLONE_NEWPID"]}]

    def map_user_namespace(self, c: Container, pid: int) -> dict:
        """Write the id maps of the child's new user namespace: ids 0..size-1
        inside are base..base+size-1 on the host (as root may, no setgroups deny)."""
        userns = c.process.get("userns") or {}
        line = f"0 {userns.get('base')} {userns.get('size')}\n"
        try:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(line)
        except (OSError, TypeError) as e:
            return {"mapped": False, "error": f"cannot map the user namespace's ids: {e}"}
        return {"mapped": True, "uid_map": line, "gid_map": line, "pid": pid}

