"""Where a container starts. ``run`` creates it (:mod:`.create`) and
:meth:`Start.launch` starts it: the cgroup with its limits, the child forked
into its PID namespace (:meth:`Start.fork_into`), the cgroup joined while the
child mounts, then the loop watches the start channel (:meth:`Start.on_starting`)
until the child has exec'd or failed, and :meth:`Start.end_start` answers the
client -- at once, or stage by stage for ``run --explain`` (``proceed``).
The child's own side of the start is :mod:`engine.runtime`.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import socket
import stat

from .. import runtime, sealed
from .. import syscalls as sc
from ..container import Container, process_start_time
from ..errors import EngineError, InvalidArgument, NotRunning, StartError
from ..events import now
from ..spec import ContainerConfig
from ..transcript import Transcript
from ..transcript import save as save_transcript
from .create import _config_from
from .state import Sink, Starting


class Start:
    """Forking a container's first process and seeing its start through."""

    def op_run(self, conn, msg, fds):
        config = _config_from(msg.get("config"))
        conn.policy.admit(config)
        self.prepare_seat(conn, config)
        for kind, mode in (("pid", config.pid_mode), ("ipc", config.ipc_mode), ("net", config.network)):
            self.sharing(mode, kind)        # refused before anything is made, as docker does
        self.check_network_config(config)
        if msg.get("stepwise") and config.tty:
            raise InvalidArgument("a stage-by-stage start cannot give the container a terminal (-t)")
        c = self.create(config)
        c.volume_resolve = conn.policy.volume_resolve()
        return self.launch(c, conn, msg, fds)

    def launch(self, c: Container, conn, msg, fds):
        """Start ``c``: the reply is sent once its first process has exec'd or
        failed (see :meth:`end_start`); attached, the client is handed the
        terminal, or its pipes get the output.

        With ``stepwise`` the reply comes at once and the start goes on one
        stage at a time: the client gets a ``{"event": "stage"}`` after each
        stage and sends ``proceed`` for the next (see :class:`Stepwise`)."""
        winsize = _winsize(msg)
        attach = bool(msg.get("attach"))
        stepwise = bool(msg.get("stepwise"))
        try:
            st = self.start(c, conn, fds, winsize, attach, stepwise)
        except EngineError:
            if c.config.remove:
                self.remove(c)
            raise
        if stepwise:
            return {"id": c.id, "name": c.name, "pid": c.pid, "stepwise": True, "warnings": c.warnings,
                    "stages": st.transcript.done()}, []     # the supervisor's own, done already
        return None

    def filters(self, cfg: ContainerConfig, warnings: list[str]) -> dict:
        """The system call filter (packed BPF) and no_new_privs of a container's
        processes (its first one and every exec), as ChildSpec fields."""
        program = None
        if cfg.seccomp == "default":
            program = self.seccomp_program
            if program is None:
                warnings.append(f"no system call filter for this machine's architecture ({self.machine}): "
                                "the container runs without seccomp")
        return {"seccomp": program, "no_new_privs": cfg.no_new_privileges}

    def fork_into(self, pidns_fd: int | None, child) -> tuple[int, socket.socket]:
        """Fork a child into a PID namespace: a new one (``None``) or the one
        ``pidns_fd`` refers to; ``child(channel)`` runs in it and never returns.

        unshare(CLONE_NEWPID) and setns(pidns) change where the caller's next
        child goes, not the caller: right after the fork the supervisor
        returns to its own PID namespace."""
        parent_chan, child_chan = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self.rootless and pidns_fd != self.pidns_fd:      # --pid host: a plain fork, below
            try:
                pid = self.fork_by_helper(pidns_fd, child, child_chan, parent_chan)
            finally:
                child_chan.close()
            return pid, parent_chan
        if pidns_fd is None:
            self.kernel.unshare(sc.CLONE_NEWPID)
        elif pidns_fd != self.pidns_fd or not self.rootless:
            self.kernel.setns(pidns_fd, sc.CLONE_NEWPID)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                parent_chan.close()
                child(child_chan)
        finally:
            if pid != 0 and not self.rootless:
                self.kernel.setns(self.pidns_fd, sc.CLONE_NEWPID)
        child_chan.close()
        return pid, parent_chan

    def record_userns(self, transcript: Transcript) -> None:
        """The rootless engine's own user namespace, made when it started
        (engine.supervisor.daemon), as the first stage of every start."""
        from .. import userns

        transcript.stage("rootless", "The engine's user namespace: root inside, you outside")
        transcript.op("unshare", "unshare --user  # once, when the engine started", flags=["CLONE_NEWUSER"],
                      by="supervisor")
        for name, tool in (("uid_map", "newuidmap"), ("gid_map", "newgidmap")):
            lines = userns.id_map(f"/proc/self/{name}")
            if len(lines) > 1:
                shell = f"{tool} {os.getpid()} " + " ".join(f"{a} {b} {c}" for a, b, c in lines)
            else:
                shell = f"echo '{' '.join(map(str, lines[0]))}' > /proc/{os.getpid()}/{name}"
            transcript.op("write", shell, path=f"/proc/PID/{name}", value=lines, by="supervisor")

    def fork_by_helper(self, pidns_fd: int | None, child, child_chan, parent_chan) -> int:
        """:meth:`fork_into` for the rootless engine. Its user namespace owns
        the PID namespaces it makes but not the host's, so it could not set
        its own back after a fork: a helper forks instead -- unshare or setns,
        fork the child, say its pid, exit -- and the child, an orphan, comes
        to this process (a child subreaper) as a direct one would."""
        r, w = os.pipe()
        helper = os.fork()
        if helper == 0:
            try:
                os.close(r)
                parent_chan.close()
                if pidns_fd is None:
                    self.kernel.unshare(sc.CLONE_NEWPID)
                else:
                    self.kernel.setns(pidns_fd, sc.CLONE_NEWPID)
                pid = os.fork()
                if pid == 0:
                    os.close(w)
                    child(child_chan)
                os.write(w, b"%d" % pid)
            except BaseException as e:  # noqa: BLE001 - nothing may escape into the supervisor's code
                os.write(w, f"E{e}".encode()[:4000])
            finally:
                os._exit(0)
        os.close(w)
        try:
            answer = os.read(r, 4096).decode(errors="replace")
        finally:
            os.close(r)
            os.waitpid(helper, 0)        # once it is gone, its child is ours
        if not answer[:1].isdigit():
            raise OSError(errno.EPERM, answer[1:] or "the fork helper failed")
        return int(answer)

    def start(self, c: Container, conn, fds: list[int], winsize, attach: bool, stepwise: bool) -> Starting:
        """Fork the container's PID 1 and watch its start channel: the loop
        completes the start (:meth:`end_start`) once the child has exec'd or
        failed. Whatever goes wrong, nothing is left behind: no process, no cgroup."""
        try:
            return self._start(c, conn, fds, winsize, attach, stepwise)
        except EngineError:
            raise
        except Exception:  # noqa: BLE001 - a bug or an unexpected answer from the kernel
            self.report(f"starting container {c.id[:12]} failed")
            if c.pid and c.status != "running":
                try:
                    os.kill(c.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.reap(c.pid, -1)
            for fd in [c.pidfd, *c.outputs]:
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            c.pidfd, c.outputs = -1, {}
            self.fail_start(c, f"internal error while starting (an engine bug; details in {self.log_path})", "")

    def _start(self, c: Container, conn, fds: list[int], winsize, attach: bool, stepwise: bool) -> Starting:
        cfg = c.config
        # Namespaces to share are looked up first: a refusal leaves nothing made.
        shared = self.shared_namespaces(cfg)
        pidns_fd, fork_title, fork_ops = self.pid_namespace(cfg)
        try:
            return self._start_in(c, conn, fds, winsize, attach, stepwise, shared,
                                  (pidns_fd, fork_title, fork_ops))
        finally:
            if pidns_fd not in (None, self.pidns_fd):
                os.close(pidns_fd)

    def _start_in(self, c: Container, conn, fds, winsize, attach, stepwise, shared, fork) -> Starting:
        from ..cgroups import Limits

        pidns_fd, fork_title, fork_ops = fork
        cfg = c.config
        try:                  # --init runs tini from a sealed copy, made once
            init_fd, init_path = sealed.init_copy() if cfg.init else (-1, "")
        except OSError as e:
            self.fail_start(c, str(e), "init")
        stdio, outputs, sinks = self.stdio_for(c, fds, attach)       # checked before anything is made
        c.exit_code, c.oom_killed, c.error, c.finished = None, False, "", ""
        c.seen = {"oom_kills": 0, "pids_max_hits": 0}
        try:
            transcript = Transcript()
            if self.rootless:
                self.record_userns(transcript)
            transcript.stage("limits", "Create the container's control group and write its limits")
            limits = Limits(memory=cfg.memory, memory_swap=cfg.memory_swap, pids=cfg.pids_limit, cpus=cfg.cpus)
            try:
                c.cgroup = self.cgroups.create(c.id, limits, parent=self.cgroup_parent_of(c))
            except EngineError as e:
                self.fail_start(c, str(e), "cgroup")
            for hier, path in c.cgroup.paths.items():
                transcript.op("mkdir", f"mkdir {path}", path=str(path), hierarchy=hier)
            for path, value in c.cgroup.writes:
                transcript.op("write", f"echo {value} > {path}", path=str(path), value=value)
            c.warnings = list(c.cgroup.warnings)
            if self.rootless and cfg.userns_mode == "private":
                c.warnings.append("--userns private adds nothing without root: every container already runs "
                                  "in your engine's user namespace (root inside is you outside)")
            self.crash_point("after-cgroup")
            if cfg.joins_network() and self.bridgeless:
                try:                                # rootless without pasta: a loopback of its own
                    self.bridgeless_network(c)
                except EngineError as e:
                    self.fail_start(c, str(e), "network")
                shared["new_ns"] = [*shared["new_ns"], "net"]
            elif cfg.joins_network():
                try:
                    netns = self.plug_in(c, transcript)
                    if self.rootless:
                        self.publish_outside(c)     # the host's ports, through pasta (rootless_net.py)
                except EngineError as e:
                    self.fail_start(c, str(e), "network")
                if netns is None:                   # no networking here: a loopback of its own, as --network none
                    shared["new_ns"] = [*shared["new_ns"], "net"]
                else:
                    shared["join_ns"] = {**shared["join_ns"], "net": netns}
            spec = runtime.ChildSpec(
                id=c.id, rootfs=str(c.dir / "rootfs"), lowerdir=c.process["lowerdir"],
                upperdir=str(c.dir / "upper"), workdir=str(c.dir / "work"), hostname=c.process["hostname"],
                argv=c.process["argv"], env=c.process["env"], cwd=c.process["cwd"],
                user=c.process["user"] or None, tty=cfg.tty, winsize=winsize,
                init=cfg.init, init_fd=init_fd, init_path=init_path,
                procs_files=[str(p) for p in c.cgroup.procs_files()],
                cgroup_mounts=[m.as_dict() for m in self.cgroups.container_mounts()],
                volumes=[v.to_dict() | {"resolve": c.volume_resolve} for v in cfg.volumes],
                etc_files={f"/etc/{n}": str(c.dir / n) for n in ("hostname", "hosts", "resolv.conf")},
                crash_at=self.crash_at, join_by_parent=True, timens=cfg.timens, pause=stepwise,
                userns=bool(c.process.get("userns")), rootless=self.rootless,
                **self.filters(cfg, c.warnings), **shared)
            transcript.stage("fork", fork_title)
            for op in fork_ops:
                transcript.op(**op)
            c.outputs = outputs             # closed by start() if anything below fails
            try:
                pid, chan = self.fork_into(pidns_fd, lambda ch: runtime.child_main(spec, ch, stdio, self.kernel))
                c.pid = pid
                self.crash_point("after-fork")
            finally:
                for fd in set(stdio) - {self.devnull}:
                    os.close(fd)          # the child has its own copies
                stdio = ()
                for target in shared["join_ns"].values():
                    if "fd" in target:
                        os.close(target.pop("fd"))
        except BaseException:
            for target in shared["join_ns"].values():
                if "fd" in target:
                    os.close(target.pop("fd"))
            for fd in set(stdio) - {self.devnull}:
                os.close(fd)
            for fd in sinks.values():
                os.close(fd)
            if not c.outputs:
                for fd in outputs:
                    os.close(fd)
            raise
        transcript.stage("cgroup", "Put the first process in the container's control group")
        joined = self.join_cgroup(c, pid, transcript)
        try:
            chan.send(json.dumps(joined).encode())
        except OSError:
            pass              # the child has already failed; its error is waiting in the channel
        transcript.done()
        c.pid_start = process_start_time(pid) or 0
        c.pidfd = os.pidfd_open(pid)
        c.status = "starting"
        st = Starting(conn, chan, transcript, attach, container=c, pid=pid, stepwise=stepwise, sinks=sinks)
        c.starting = st
        self.watch_start(st)
        return st

    def watch_start(self, st: Starting) -> None:
        st.chan.setblocking(False)
        self.starts[id(st)] = st
        self.sel.register(st.chan, selectors.EVENT_READ, ("starting", st))

    def on_starting(self, chan: socket.socket, st: Starting) -> None:
        """A message from a child on its way to execve: a stage done (run
        --explain: passed on to the client, which answers with ``proceed``),
        an id-map request, the terminal, its transcript or its error; or the
        end of the channel (exec'd or failed)."""
        try:
            data, fds, _f, _a = socket.recv_fds(chan, 1 << 20, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self.end_start(st)
            return
        for fd in fds[1:]:
            os.close(fd)
        if fds:
            if st.pty >= 0:
                os.close(st.pty)
            st.pty = fds[0]
        try:
            msg = json.loads(data)
        except ValueError:
            msg = {}
        if not isinstance(msg, dict):
            msg = {}
        if "crash" in msg:
            self.crash_point(msg["crash"])
        if isinstance(msg.get("stage"), dict) and "error" not in msg and st.stepwise and st.client is not None:
            if not st.client.send({"event": "stage", "id": st.container.id, "stage": msg["stage"], "paused": True}):
                self.abandon_start(st.container)
        if "userns" in msg and st.exec is None:
            try:
                chan.send(json.dumps(self.map_user_namespace(st.container, st.pid)).encode())
            except OSError:
                pass
        if "transcript" in msg:
            st.stages = msg["transcript"]
        if "error" in msg:
            st.error = msg

    def end_start(self, st: Starting) -> None:
        """The start channel has closed (or the deadline passed): complete the
        start and answer its client."""
        if self.starts.pop(id(st), None) is None:
            return
        try:
            self.sel.unregister(st.chan)
        except (KeyError, ValueError):
            pass
        st.chan.close()
        if st.exec is not None:
            self.end_exec_start(st)
            return
        c = st.container
        c.starting = None
        if st.error is None and not st.stages:
            st.error = {"error": "the container's first process died before it could start", "stage": "",
                        "exit_code": 125}
        try:
            try:
                pty = self.complete_start(c, st.transcript, st.pty, st.error, st.stages, stepwise=st.stepwise)
            except EngineError:
                raise
            except Exception:  # noqa: BLE001 - a bug: end the start cleanly, as start() does
                self.report(f"completing the start of container {c.id[:12]} failed")
                self.fail_start(c, f"internal error while starting (an engine bug; details in {self.log_path})", "")
        except EngineError as e:
            for fd in st.sinks.values():
                os.close(fd)
            for conn in list(c.attached):         # wait/stop clients of a container that never ran
                conn.send({"event": "exit", **self.exit_info(c)})
            c.attached.clear()
            if c.config.remove or st.abandoned:
                self.remove(c)
            for conn in self.rm_waiters.pop(c.id, ()):
                conn.send({"ok": True, "id": c.id, "name": c.name})
            if st.client is not None:
                if st.stepwise:
                    st.client.send({"event": "start-failed", "id": c.id, "error": e.message,
                                    "stage": getattr(e, "stage", ""), "exit_code": e.exit_code})
                else:
                    st.client.send(self.error_reply(e))
            return
        reply_fds = []
        if st.attach and st.client is not None:
            c.attached.add(st.client)
            if pty >= 0:
                reply_fds = [pty]
            for fd, stream in c.outputs.items():
                if stream in st.sinks:
                    self.sinks[fd] = Sink(st.sinks.pop(stream), st.client, c)
        elif pty >= 0:
            self.start_draining(c, pty)
        for fd in st.sinks.values():
            os.close(fd)
        if st.client is None:
            return
        if st.stepwise:
            st.client.send({"event": "started", "id": c.id, "name": c.name, "pid": c.pid, "warnings": c.warnings})
        else:
            st.client.send({"ok": True, "id": c.id, "name": c.name, "pid": c.pid, "warnings": c.warnings},
                           reply_fds)

    def complete_start(self, c: Container, transcript, pty: int, error: dict | None, child_stages: list, *,
                       stepwise: bool = False) -> int:
        """The child has exec'd (or failed): record its transcript; then either
        clean up after the failure, or watch it run. Returns the terminal master or -1.
        A start made stage by stage (``run --explain``) says so in its event
        (``explained``), so a lesson can tell that the learner watched it."""
        pid, outputs = c.pid, c.outputs
        stages = transcript.done() + child_stages
        save_transcript(c.dir, stages)
        if error:
            self.reap(pid, c.pidfd)
            c.pidfd = -1
            for fd in list(outputs) + ([pty] if pty >= 0 else []):
                os.close(fd)
            c.outputs = {}
            self.fail_start(c, str(error.get("error")), error.get("stage", ""), error.get("exit_code", 125))
        c.status, c.started, c.adopted = "running", now(), False
        # Hold the container's mount namespace: when its last process exits, the
        # kernel then need not unmount its ~30 mounts before telling us -- we let
        # it go after the exit event is sent (finish), off the critical path.
        try:
            c.mntns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            c.mntns = -1
        c.pty = pty
        c.outputs = outputs
        for fd in outputs:
            os.set_blocking(fd, False)
        self.pace_output(c)
        self.sel.register(c.pidfd, selectors.EVENT_READ, ("exit", c))
        c.save()
        self.emit("started", c, pid=pid, **({"explained": True} if stepwise else {}))
        return pty

    def op_proceed(self, conn, msg, fds):
        """Let a container started stage by stage go on to its next stage."""
        c = self.find(msg.get("id"), conn)
        if c.starting is None or not c.starting.stepwise:
            raise NotRunning(f"container {c.name} is not being started stage by stage")
        try:
            c.starting.chan.send(json.dumps({"go": True}).encode())
        except OSError:
            pass                # it has just failed: the end of its channel is on its way
        return {"id": c.id}, []

    def abandon_start(self, c: Container) -> None:
        """End a half-built container (its stage-by-stage client went away, or
        rm -f); once its start has failed, it is removed (it never ran)."""
        if c.starting is not None:
            c.starting.abandoned = True
        if c.pidfd >= 0:
            try:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            except OSError:
                pass

    def join_cgroup(self, c: Container, pid: int, transcript) -> dict:
        """Write the child's pid into each cgroup.procs (the child mounts meanwhile)."""
        for path in c.cgroup.procs_files():
            transcript.op("write", f"echo {pid} > {path}", path=str(path), value=str(pid))
        try:
            c.cgroup.join(pid)
        except (OSError, EngineError) as e:
            return {"joined": False, "error": f"cannot put the container in its cgroup: {e}"}
        return {"joined": True}

    def crash_point(self, name: str) -> None:
        """For the crash-safety tests: die here, as the OOM killer would
        (``NAME``), or fail here, as a bug would (``raise-NAME``)."""
        if self.crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.crash_at == f"raise-{name}":
            raise RuntimeError(f"injected failure at {name}")

    def fail_start(self, c: Container, message: str, stage: str, code: int = 125):
        self.unplug(c)
        if c.cgroup is not None:
            c.cgroup.destroy()
            c.cgroup = None
        c.status, c.exit_code, c.error, c.finished, c.pid = "exited", code, message, now(), 0
        c.save()
        self.emit("exited", c, exit_code=code, oom_killed=False, error=message)
        raise StartError(message, stage=stage, exit_code=code)

    def stdio_for(self, c: Container, fds: list[int], attach: bool
                  ) -> tuple[tuple[int, int, int], dict[int, str], dict[str, int]]:
        """The child's 0, 1, 2; the pipe ends the supervisor reads (logged, and
        copied to an attached client); and the attached client's own pipes for
        that copy, by stream. A client's fds never reach the container: only
        pipes are accepted, and only a client's stdin pipe is handed over."""
        cfg = c.config
        if cfg.tty:
            return (self.devnull,) * 3, {}, {}
        stdin, sinks = self.devnull, {}
        if attach and len(fds) >= 2:
            out, err = _pipe(fds[-2], "standard output"), _pipe(fds[-1], "standard error")
            if cfg.interactive and len(fds) == 3:
                stdin = _pipe(fds[0], "standard input")
            sinks = {"stdout": os.dup(out), "stderr": os.dup(err)}
            for fd in sinks.values():
                os.set_blocking(fd, False)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        if stdin != self.devnull:
            stdin = os.dup(stdin)
        return (stdin, out_w, err_w), {out_r: "stdout", err_r: "stderr"}, sinks


def _winsize(msg: dict) -> tuple[int, int]:
    size = msg.get("winsize") or (24, 80)
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 16 for n in size):
        raise InvalidArgument("winsize must be [rows, columns]")
    return tuple(size)


def _pipe(fd: int, what: str) -> int:
    """``fd`` if it is a pipe (a client's relay pipe), else an InvalidArgument:
    a client's own terminal or file never goes to a container."""
    try:
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode) and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        is_pipe = False
    if not is_pipe:
        raise InvalidArgument(f"an attached container's {what} must be a pipe (the client copies its own "
                              "terminal or file to and from it)")
    return fd

