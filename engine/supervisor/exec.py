"""``exec``: a process started in a running container, its start seen
through like a container's (:mod:`.start`), its exit reaped and told to its
attached clients.
"""

from __future__ import annotations

import copy
import errno
import os
import secrets
import selectors

from .. import runtime
from ..errors import InvalidArgument, NotRunning
from ..policy import PolicyRefused
from ..spec import check_argv, check_process_options
from .start import _pipe, _winsize
from .state import Exec, Starting


class Execs:
    """Starting and reaping processes in running containers."""

    def op_exec(self, conn, msg, fds):
        c = self.find(msg.get("id"), conn)
        if not c.status.can_exec():
            raise NotRunning(f"container {c.id} is not running")
        try:                # the process gets the container's namespaces, cgroup and filter
            conn.policy.admit(copy.copy(c.config))
        except PolicyRefused as e:
            raise PolicyRefused(f"cannot exec in container {c.name}: it was started with what this client "
                                f"may not have: {e.message}") from None
        opts = msg.get("exec") or {}
        if not isinstance(opts, dict):
            raise InvalidArgument("exec options must be an object")
        argv = opts.get("cmd") or []
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise InvalidArgument("exec needs a command")
        check_argv(argv)
        extra_env, workdir, user = opts.get("env") or [], opts.get("workdir"), opts.get("user")
        check_process_options(extra_env, workdir, user)
        extra_env = list(extra_env)
        tty, detach = bool(opts.get("tty")), bool(opts.get("detach"))
        env = dict(item.partition("=")[::2] for item in c.process["env"])
        if tty:
            env.setdefault("TERM", "xterm")
        env.update(item.partition("=")[::2] for item in extra_env)
        spec = runtime.ChildSpec(
            id=c.id, rootfs="", lowerdir="", upperdir="", workdir="", hostname=c.process["hostname"],
            argv=argv, env=[f"{k}={v}" for k, v in env.items()],
            cwd=workdir or c.process["cwd"], user=user or c.process["user"] or None,
            tty=tty, winsize=_winsize(msg),
            procs_files=[str(p) for p in c.cgroup.procs_files()] if c.cgroup else [],
            userns=bool(c.process.get("userns")), **self.filters(c.config, []))
        if tty or detach or len(fds) < 2:
            stdio = (self.devnull,) * 3
        else:
            # Pipes only (the client relays its own terminal and files): an
            # exec'd process gets them as they are, nothing is logged.
            interactive = opts.get("interactive") and len(fds) == 3
            stdin = _pipe(fds[0], "standard input") if interactive else self.devnull
            stdio = (stdin, _pipe(fds[-2], "standard output"), _pipe(fds[-1], "standard error"))
        # Its PID 1 may have exited with the exit not handled yet (both ready at
        # once): its namespace files are gone, or its PID namespace takes no
        # new process (ENOMEM from fork).
        try:
            pidns = os.open(f"/proc/{c.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise NotRunning(f"container {c.id} is not running") from None
        try:
            pid, chan = self.fork_into(pidns, lambda ch: runtime.exec_main(spec, c.pid, ch, stdio, self.kernel))
        except OSError as e:
            if e.errno != errno.ENOMEM:
                raise
            raise NotRunning(f"container {c.id} is not running") from None
        finally:
            os.close(pidns)
        e = Exec(secrets.token_hex(32), c, pid, argv, tty)
        self.watch_start(Starting(conn, chan, None, not detach, container=c, pid=pid, exec_=e))
        return None                     # answered by end_exec_start

    def end_exec_start(self, st: Starting) -> None:
        """An exec'd process has reached execve (it runs) or failed: tell its client."""
        e, c = st.exec, st.container
        error = st.error
        if error is None and not st.stages:
            error = {"error": "the process died before it could start", "stage": "", "exit_code": 125}
        if error:
            self.reap(e.pid, e.pidfd)
            if st.pty >= 0:
                os.close(st.pty)
            if st.client is not None:
                st.client.send({"ok": False, "error": str(error.get("error")), "kind": "StartError",
                                "exit_code": int(error.get("exit_code", 126)), "stage": error.get("stage", "")})
            return
        self.execs[e.id] = e
        e.pty = st.pty
        self.sel.register(e.pidfd, selectors.EVENT_READ, ("exec_exit", e))
        self.events.append("exec", **c.event_fields() | {"argv": e.argv, "tty": e.tty}, exec_id=e.id)
        if st.client is None:
            return
        reply_fds = []
        if st.attach:
            e.attached.add(st.client)
            if e.pty >= 0:
                reply_fds = [e.pty]
        st.client.send({"ok": True, "id": c.id, "name": c.name, "exec_id": e.id, "pid": e.pid, "warnings": []},
                       reply_fds)

    def on_exec_exit(self, _fileobj, e: Exec) -> None:
        try:
            pid, status = os.waitpid(e.pid, os.WNOHANG)
            if pid == 0:
                return                   # not yet (its pidfd says it has exited: the next look reaps it)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = -9
        code = code if code >= 0 else 128 - code
        self.sel.unregister(e.pidfd)
        os.close(e.pidfd)
        if e.pty >= 0:
            os.close(e.pty)
        self.execs.pop(e.id, None)
        c = e.container
        self.events.append("exec-exited", **c.event_fields() | {"argv": e.argv, "tty": e.tty},
                           exec_id=e.id, exit_code=code)
        for conn in list(e.attached):
            conn.send({"event": "exit", "id": c.id, "exec_id": e.id, "exit_code": code, "oom_killed": False,
                       "error": ""})

