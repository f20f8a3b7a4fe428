"""The entry points of a forked child, and what they share.

The supervisor forks; the child runs :func:`child_main` (the first process of
a container) or :func:`exec_main` (a process started in a running one). Each
is one list of stages, in the order the kernel needs them (see
:mod:`engine.runtime`), run by :func:`_child`: only stdio and the start
channel cross into the container, signals are reset, and whatever happens,
the child never returns into the supervisor's code -- a failure goes back
over the channel, then ``_exit``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from typing import NoReturn

from .. import syscalls as sc
from ..transcript import Transcript
from .builder import Builder
from .namespaces import _NS_OPTION
from .spec import EXIT_ENGINE, ChildSpec, StageError, send


def _reset_signals() -> None:
    """A forked Python process ignores SIGPIPE and has handlers for others:
    give the container the default dispositions and an empty mask."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _crash_point(spec: ChildSpec, chan: socket.socket, name: str) -> None:
    """Crash tests only: have the supervisor die while this child is at ``name``
    (the supervisor's pid is out of sight from the new PID namespace, so ask it)."""
    if spec.crash_at == name:
        send(chan, {"crash": name})


def _enter_child(stdio: tuple[int, int, int], chan: socket.socket, keep: tuple[int, ...] = ()) -> socket.socket:
    """First steps of every forked child: only 0-2 and the start channel may
    cross into the container (and the fds in ``keep``, as 4, 5 ...,
    close-on-exec: the sealed init, the network namespace made for it);
    default signal dispositions."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 8) for fd in keep]     # out of the way of 0-7
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    os.dup2(chan.fileno(), 3, inheritable=False)
    for n, fd in enumerate(moved):
        os.dup2(fd, 4 + n, inheritable=False)
    os.closerange(4 + len(moved), 1 << 20)
    _reset_signals()
    return socket.socket(fileno=3)


def _child(stdio: tuple[int, int, int], chan: socket.socket, spec: ChildSpec, kernel, stages) -> NoReturn:
    """Run ``stages(builder)`` in a freshly forked child and never return into
    the supervisor's code: a failure goes back over the channel, then _exit."""
    code = EXIT_ENGINE
    transcript = Transcript()
    b = None
    try:
        kept = [spec.init_fd] if spec.init and spec.init_fd >= 0 else []
        made = [t for t in spec.join_ns.values() if "fd" in t]
        chan = _enter_child(stdio, chan, tuple(kept + [t["fd"] for t in made]))
        if kept:
            spec.init_fd = 4
        for n, target in enumerate(made):
            target["fd"] = 4 + len(kept) + n
        b = Builder(spec, kernel or sc.Syscalls(), transcript, chan)
        stages(b)
        failure = {"error": "the command returned", "stage": "exec", "exit_code": EXIT_ENGINE}
    except StageError as e:
        failure = {"error": e.message, "stage": e.stage, "exit_code": e.code}
        code = e.code
    except BaseException as e:  # noqa: BLE001 - nothing may escape into the supervisor's code
        failure = {"error": f"{type(e).__name__}: {e}", "stage": "", "exit_code": EXIT_ENGINE}
    try:
        if b is not None:
            b.await_join()
        send(chan, {**failure, "transcript": transcript.done()})
    finally:
        os._exit(code)


def exec_main(spec: ChildSpec, target_pid: int, chan: socket.socket, stdio: tuple[int, int, int],
              kernel=None) -> NoReturn:
    """Entry point of a forked ``exec`` child, already in the container's PID
    namespace: join its cgroup and every other namespace, then run the command
    as the container's own first process was run."""
    def stages(b: Builder) -> None:
        b.stage_cgroup()
        b.begin("namespaces", "Join the container's namespaces")
        # Not dumpable before setns: nothing inside may ptrace this process or
        # read its /proc files while it still holds the host's resources.
        b.t.op("prctl", "# prctl(PR_SET_DUMPABLE, 0)", option="PR_SET_DUMPABLE", value=0)
        b.k.prctl(sc.PR_SET_DUMPABLE, 0)
        # Open every namespace first: after joining the mount namespace, the
        # host's /proc/PID is out of sight.
        kinds = ("ipc", "uts", "net", "cgroup", "mnt") + (("user",) if spec.userns else ())
        fds = {kind: os.open(f"/proc/{target_pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
               for kind in kinds}
        for kind, fd in fds.items():
            if os.fstat(fd).st_ino == os.stat(f"/proc/self/ns/{kind}").st_ino:
                os.close(fd)            # the container shares ours (--network host ...): in it already
                continue
            b.t.op("setns", f"nsenter --{_NS_OPTION[kind]}={target_pid}", namespace=kind)
            try:
                b.k.setns(fd, sc.NAMESPACE_FLAGS[kind])
            except OSError as e:
                b.fail(f"cannot join the container's {kind} namespace: {os.strerror(e.errno)}")
            os.close(fd)
        if spec.userns:           # joined last: after it, no power over the host's namespaces is left
            b.become_userns_root()
        os.chdir("/")
        if spec.tty:
            b.stage_tty(console=False)
        else:
            os.setsid()
        b.stage_seccomp()
        b.stage_capabilities()
        b.stage_exec()
    _child(stdio, chan, spec, kernel, stages)


def child_main(spec: ChildSpec, chan: socket.socket, stdio: tuple[int, int, int], kernel=None) -> NoReturn:
    """Entry point of the forked first process of a container."""
    def stages(b: Builder) -> None:
        # Not dumpable until the execve (which makes the command dumpable
        # again): until then this process is a copy of the supervisor, and
        # nothing in a container may read its memory or open /proc/PID/exe.
        b.k.prctl(sc.PR_SET_DUMPABLE, 0)
        if not spec.join_by_parent:
            b.stage_cgroup()
        b.stage_namespaces()
        b.stage_propagation()
        b.stage_rootfs()
        b.stage_proc()
        b.stage_dev()
        b.stage_cgroupns()
        b.stage_sys()
        _crash_point(spec, b.chan, "after-mounts")
        b.stage_pivot_root()
        b.stage_hostname()
        if spec.tty:
            b.stage_tty()
        else:
            os.setsid()
        if spec.userns:
            b.stage_userns()
        _crash_point(spec, b.chan, "before-exec")
        b.stage_seccomp()                 # the init and the command alike
        b.stage_capabilities()
        if spec.init:
            # tini runs the command as its child, forwards signals to it,
            # reaps orphans, exits as the command did; with -t it makes the
            # command the terminal's foreground job.
            b.stage_init()
        b.stage_exec()
    _child(stdio, chan, spec, kernel, stages)
