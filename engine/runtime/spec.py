"""What the supervisor hands a forked child, and how the two talk.

:class:`ChildSpec` is computed by the supervisor before the fork (from the
container's record: :class:`engine.spec.ContainerConfig` is what a user asks
for, this is what the child needs to build it). The child answers over the
start channel, a socket pair, with :func:`send`: its stage reports, its
terminal, its transcript, or why it failed -- a :class:`StageError`, with the
exit code docker would give.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

# Exit codes, as docker gives them.
EXIT_ENGINE = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


@dataclass
class ChildSpec:
    """What the child needs, computed by the supervisor before the fork."""

    id: str
    rootfs: str                  # host path of the (empty) mount point
    lowerdir: str                # overlay lowerdir option: image layers, top first
    upperdir: str
    workdir: str
    hostname: str
    argv: list[str]
    env: list[str]
    cwd: str = "/"
    user: str | None = None
    tty: bool = False
    winsize: tuple[int, int] = (24, 80)
    init: bool = False
    init_fd: int = -1            # --init: the supervisor's sealed copy of tini (engine.sealed.init_copy)
    init_path: str = ""          # ... and the file it was copied from
    procs_files: list[str] = field(default_factory=list)
    cgroup_mounts: list[dict] = field(default_factory=list)   # {source,target,fstype,flags,data} or {symlink,target}
    volumes: list[dict] = field(default_factory=list)         # {source,target,readonly}
    etc_files: dict[str, str] = field(default_factory=dict)   # container path -> host file
    crash_at: str = ""           # crash tests only: the supervisor dies at this point
    # The supervisor writes this child's pid into its cgroup while the child
    # mounts (a cgroup attach can wait a whole RCU grace period, ~10 ms);
    # otherwise the child joins by itself, first thing.
    join_by_parent: bool = False
    # Namespaces: which of uts, ipc, net to create; which to join instead
    # (kind -> {"path": /proc/PID/ns/KIND, "inode": expected}); the rest stay
    # the host's (--uts host, --network host ...).
    new_ns: list[str] = field(default_factory=lambda: ["uts", "ipc", "net"])
    join_ns: dict[str, dict] = field(default_factory=dict)
    shm_source: str | None = None    # bind this as /dev/shm (an IPC namespace shared)
    timens: dict | None = None       # clock -> offset seconds, for a new time namespace
    userns: bool = False             # a private user namespace (mapped by the supervisor)
    pasta: bool = False              # rootless: ask the supervisor to plug the new network namespace in
    rootless: bool = False           # in the rootless engine's user namespace (overlayfs with userxattr;
    #                                  the host's /proc, /sys, mqueue bound where its namespace is shared)
    pause: bool = False              # stop after each stage until the supervisor says go (run --explain)
    seccomp: bytes | None = None     # the system call filter: packed BPF (engine.seccomp.pack), or none
    no_new_privs: bool = False       # --security-opt no-new-privileges


class StageError(Exception):
    """A stage failed; carries the stage id and the exit code to use."""

    def __init__(self, stage: str, message: str, code: int = EXIT_ENGINE):
        super().__init__(message)
        self.stage, self.message, self.code = stage, message, code


def send(chan: socket.socket | None, message: dict) -> None:
    """Send one message to the supervisor over the start channel (if any)."""
    if chan is not None:
        try:
            chan.send(json.dumps(message).encode())
        except OSError:
            pass
