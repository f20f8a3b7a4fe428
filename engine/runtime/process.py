"""The stages that make the process the container's command.

``tty`` (its terminal, opened in its own /dev/pts), ``seccomp`` (the system
call filter, and no-new-privileges), ``capabilities`` (Docker's default 14
kept, every other dropped), ``init`` (``--init``: tini as PID 1, from a sealed
copy in memory) and ``exec`` (the user switched to, the working directory,
then execve). Mixed into :class:`~engine.runtime.builder.Builder`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import struct
import termios
from typing import NoReturn

from .. import sealed, seccomp
from .. import syscalls as sc
from .lookup import _env_dict, _find_executable, _resolve_user
from .spec import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, send

# Docker's default capability set (moby oci/caps/defaults.go): CapEff 0xa80425fb.
DEFAULT_CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
}
DEFAULT_CAP_MASK = sum(1 << bit for bit in DEFAULT_CAPS.values())

# docker's default PATH: a container's environment gets it when its image sets
# none (engine.supervisor.create); the exec stage falls back on it.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


class ProcessStages:
    """The process stages of the :class:`~engine.runtime.builder.Builder`."""

    def stage_tty(self, *, console: bool = True) -> None:
        """Open the container's terminal in its own /dev/pts and send the master back."""
        self.begin("tty", "Open a pseudo-terminal inside the container")
        master, slave = os.openpty()
        rows, cols = self.spec.winsize
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        name = os.ttyname(slave)
        self.t.op("openpty", f"# open /dev/ptmx -> {name}", device=name)
        if console:
            self.mount(name, "/dev/console", None, sc.MS_BIND)
        if self.chan is not None:
            socket.send_fds(self.chan, [json.dumps({"pty": name}).encode()], [master])
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)

    def stage_seccomp(self) -> None:
        """Before the capabilities go: installing a filter without
        no_new_privs takes CAP_SYS_ADMIN, which the next stage drops."""
        s = self.spec
        if not s.seccomp and not s.no_new_privs:
            return
        self.begin("seccomp", "Filter the system calls the container may make (seccomp)")
        if s.no_new_privs:
            self.t.op("prctl", "setpriv --no-new-privs", option="PR_SET_NO_NEW_PRIVS", value=1)
            self.k.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if s.seccomp:
            names, count = seccomp.refused(os.uname().machine), len(s.seccomp) // 8
            self.t.op("seccomp", f"# prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, <{count} BPF "
                      f"instructions: {len(names)} calls refused, clone of namespaces refused, "
                      f"{' and '.join(seccomp.REFUSED_FAMILIES)} sockets refused>)",
                      mode="SECCOMP_MODE_FILTER", refused=names, instructions=count)
            try:
                self.k.seccomp_filter(s.seccomp)
            except OSError as e:
                self.fail(f"cannot install the system call filter: {os.strerror(e.errno)}")

    def stage_capabilities(self) -> None:
        self.begin("capabilities", "Keep only Docker's default capabilities")
        last = _cap_last_cap()
        dropped = [c for c in range(last + 1) if not DEFAULT_CAP_MASK & (1 << c)]
        self.t.op("prctl", f"capsh --drop=<{len(dropped)} capabilities> (keep {', '.join(DEFAULT_CAPS)})",
                  option="PR_CAPBSET_DROP", dropped=dropped, kept=sorted(DEFAULT_CAPS))
        for cap in dropped:
            self.k.prctl(sc.PR_CAPBSET_DROP, cap)
        self.k.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        mask = DEFAULT_CAP_MASK
        self.k.capset(mask, mask, 0)

    def stage_init(self) -> None:
        """``--init``: PID 1 will be tini, a real init (Docker's --init), run
        from the supervisor's sealed in-memory copy -- never a fork of the
        supervisor, whose memory holds every container's configuration, and
        never a host file the container could write (:mod:`engine.sealed`)."""
        s = self.spec
        self.begin("init", "Run a real init as PID 1 (tini), from a sealed copy in memory")
        self.t.op("fcntl", f"# {s.init_path}: a copy in memory (memfd), sealed against any write",
                  option="F_GET_SEALS", seals=["F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE"])
        if s.init_fd < 0 or not sealed.is_sealed(s.init_fd):
            self.fail("--init: the supervisor's copy of tini is missing or not sealed")

    def stage_exec(self) -> NoReturn:
        s = self.spec
        self.begin("exec", "Become the user and run the command")
        env = _env_dict(s.env)
        uid, gid, groups, home = _resolve_user(s.user, self)
        if "HOME" not in env:
            env["HOME"] = home
        cwd = s.cwd or "/"
        try:
            os.makedirs(cwd, exist_ok=True)
            os.chdir(cwd)
        except OSError as e:
            self.fail(f"cannot change to working directory {cwd}: {os.strerror(e.errno)}", EXIT_CANNOT_EXEC)
        if (uid, gid) != (0, 0) or s.user:
            self.t.op("setuid", f"setpriv --reuid={uid} --regid={gid} --groups={','.join(map(str, groups)) or ''}",
                      uid=uid, gid=gid, groups=groups)
            try:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
            except OSError as e:
                self.fail(f"cannot switch to user {s.user}: {os.strerror(e.errno)}")
        path = _find_executable(s.argv[0], env.get("PATH", DEFAULT_PATH), self)
        exe, argv = path, s.argv
        if s.init:
            # tini finds the command on the same PATH; -s where it is not PID 1
            # (--pid shared), so that orphans are still handed to it.
            exe, argv = s.init_fd, ["init", *([] if os.getpid() == 1 else ["-s"]), "--", *s.argv]
            self.t.op("execveat", "exec " + " ".join(shlex.quote(a) for a in ["tini", *argv[1:]]),
                      path=f"{s.init_path} (sealed copy)", argv=argv, flags="AT_EMPTY_PATH")
        else:
            self.t.op("execve", "exec " + " ".join(shlex.quote(a) for a in s.argv), path=path, argv=s.argv)
        self.checkpoint()
        send(self.chan, {"transcript": self.t.done()})
        try:
            os.execve(exe, argv, env)
        except OSError as e:
            code = EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
            self.fail(f'exec: "{s.argv[0]}": {os.strerror(e.errno).lower()}', code)
