"""The end of a container: its exit reaped and recorded, waiting clients
told, then what it held tidied (its mounts, cgroup and, with ``--rm``, its
files) off the critical path; signals and removal.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import sys
import time
from pathlib import Path

from ..container import Container
from ..errors import EngineError
from ..events import now
from ..namespaces import inode as _ns_inode


class Reaping:
    """Exits, tidying and removal."""

    def reap(self, pid: int, pidfd: int) -> None:
        """Reap a child that has failed or been killed, now if it is gone,
        else when its pidfd says so -- never waiting for it."""
        try:
            done = os.waitpid(pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            done = True
        if done:
            if pidfd >= 0:
                os.close(pidfd)
            return
        if pidfd < 0:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                return
        self.sel.register(pidfd, selectors.EVENT_READ, ("reap", pid))

    def on_reap(self, pidfd, pid: int) -> None:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            pass
        self.sel.unregister(pidfd)
        os.close(pidfd)

    def on_exit(self, _fileobj, c: Container) -> None:
        """PID 1 of ``c`` has exited: reap it and record how."""
        if c.adopted:
            self.finish(c, 255, error="exit status unknown: the supervisor restarted while it ran")
            return
        try:
            pid, status = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = c.pid, 255 << 8
        if pid == 0:
            return
        self.finish(c, os.waitstatus_to_exitcode(status))

    def wait_exit(self, c: Container, timeout: float = 10.0) -> int:
        """At shutdown only: wait (at most ``timeout`` s) until ``c``, just sent
        SIGKILL, has exited; its exit code (255 if unknown). Requests never
        wait here: rm -f answers when the loop sees the exit.

        The kernel lets a PID namespace's first process finish dying only once
        every process in the namespace is reaped -- and processes started by
        ``exec`` are the supervisor's children: reap those meanwhile, or both
        would wait for each other."""
        deadline = time.monotonic() + timeout
        # Containers started with --pid container:<c> die with it, and are ours to reap too.
        pidns = _ns_inode(c.pid, "pid")
        guests = [g for g in self.containers.values()
                  if g is not c and g.pidfd >= 0 and pidns and _ns_inode(g.pid, "pid") == pidns]
        while time.monotonic() < deadline:
            execs = [e for e in self.execs.values() if e.container is c]
            guests = [g for g in guests if g.pidfd >= 0]
            ready, _, _ = select.select([c.pidfd] + [e.pidfd for e in execs] + [g.pidfd for g in guests],
                                        [], [], 0.5)
            for e in execs:
                if e.pidfd in ready:
                    self.on_exec_exit(None, e)
            for g in guests:
                if g.pidfd in ready:
                    self.on_exit(None, g)
            if c.pidfd in ready:
                break
        if c.adopted:                     # not our child: its pidfd said it is gone
            return 255
        try:
            pid, status = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            return 255
        return os.waitstatus_to_exitcode(status) if pid else 255

    def finish(self, c: Container, code: int, error: str = "") -> None:
        """Record the exit and tell who waits; then release what the container held.

        The slow part (letting its mounts go, removing the cgroup and, with
        --rm, the files) is queued for :meth:`tidy_one`: done while the next
        container is being built, when nothing else waits, or before the next
        request that looks at containers -- a client never sees it undone."""
        if c.pidfd >= 0:
            try:
                self.sel.unregister(c.pidfd)
            except (KeyError, ValueError):
                pass
            os.close(c.pidfd)
            c.pidfd = -1
        for fd in list(c.outputs):
            self.drain_rest(c, fd)
            os.close(fd)
            self.end_sink(fd)
        c.outputs = {}
        if c.pty >= 0:
            if c.drain_pty:
                self.drain_rest(c, c.pty)
            os.close(c.pty)
            c.pty, c.drain_pty = -1, False
        self.close_proxies(c.id)            # its ports are free again at once (the rest of its network: tidy_one)
        log = self.logs.pop(c.id, None)
        if log is not None:
            self.try_step(c, "flush log", log.flush)
        self.budget.pop(c.id, None)
        self.throttled.discard(c.id)
        c.exit_code = code if code >= 0 else 128 - code
        c.error = error or c.error
        c.stop_deadline = None
        cgroup, c.cgroup = c.cgroup, None
        if cgroup is not None:
            self.check_limits(c, cgroup)      # recorded even when --rm removes it right after
            c.oom_killed = self.try_step(c, "read OOM count", cgroup.oom_killed) or False
        c.status, c.finished, c.pid, c.pid_start, c.adopted = "exited", now(), 0, 0, False
        self.emit("exited", c, exit_code=c.exit_code, oom_killed=c.oom_killed)
        if c.config.remove:
            self.containers.pop(c.id, None)
            self.emit("removed", c)
        else:
            self.try_step(c, "save record", c.save)
        for conn in list(c.attached):
            conn.send({"event": "exit", **self.exit_info(c)})
        c.attached.clear()
        for conn in self.rm_waiters.pop(c.id, ()):      # rm -f: it has gone now
            if c.config.remove and c.id not in self.containers:
                conn.send({"ok": True, "id": c.id, "name": c.name})
            else:
                self.remove(c)
                conn.send({"ok": True, "id": c.id, "name": c.name})
        mntns, c.mntns = c.mntns, -1
        self.tidying.append((c, mntns, cgroup))

    def tidy_one(self) -> None:
        """Release what one exited container held: its mount namespace (the
        kernel unmounts its ~30 mounts now), its cgroup and, with --rm, its
        files. Queued by :meth:`finish`, so that a client waiting for an exit,
        or for its next container to start, does not wait for this too."""
        c, mntns, cgroup = self.tidying.popleft()
        if mntns >= 0:
            os.close(mntns)
        if c.status not in ("running", "starting"):      # (not started again meanwhile)
            self.unplug(c)
        if cgroup is not None:
            self.try_step(c, "remove cgroup", cgroup.destroy)
        if c.config.remove and c.id not in self.containers:
            self.try_step(c, "remove files", lambda: self.remove_files(c))

    def tidy_all(self) -> None:
        while self.tidying:
            self.tidy_one()

    def try_step(self, c: Container, what: str, step):
        """Run one teardown step; a failure is logged and the next step still runs
        (gc sweeps what is left)."""
        try:
            return step()
        except (OSError, EngineError) as e:
            print(f"container {c.id[:12]}: {what} failed: {e}", file=sys.stderr)
            return None

    def drain_rest(self, c: Container, fd: int) -> None:
        """What is left in an output pipe of a container that has exited (at
        most a pipe's worth: its writers are gone), logged and copied."""
        self.unwatch_output(fd)
        os.set_blocking(fd, False)
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.output(c, fd, data)

    def exit_info(self, c: Container) -> dict:
        return {"id": c.id, "exit_code": c.exit_code, "oom_killed": c.oom_killed, "error": c.error}

    def signal(self, c: Container, sig: int) -> None:
        """Send ``sig`` to the container's PID 1 (via its pidfd: never a reused pid)."""
        self.emit("kill", c, signal=sig)
        try:
            signal.pidfd_send_signal(c.pidfd, sig)
        except ProcessLookupError:
            pass

    def remove(self, c: Container) -> None:
        self.unplug(c)
        self.containers.pop(c.id, None)
        self.remove_files(c)
        self.emit("removed", c)

    def remove_debris(self, cdir: Path) -> None:
        import shutil

        try:
            self.cgroups.open(cdir.name, parent=self.cgroup_parent).destroy()
        except EngineError:             # CgroupError, or a name no cgroup can have
            pass
        shutil.rmtree(cdir, ignore_errors=True)

    def remove_files(self, c: Container) -> None:
        import shutil

        if c.cgroup is not None:
            c.cgroup.destroy()
            c.cgroup = None
        shutil.rmtree(c.dir, ignore_errors=True)


