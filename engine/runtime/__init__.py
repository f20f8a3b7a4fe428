"""How a container starts: the stages that turn a forked process into one.

A container is an ordinary process that the kernel has been asked to isolate.
The supervisor forks it (already inside a new PID namespace, so it is PID 1
there) and the child then runs :func:`child_main`, which walks these stages
in order -- the order matters:

1. ``cgroup``      join the container's control group (the supervisor does it
                   while the next stages run; it must precede ``cgroupns``).
2. ``namespaces``  unshare mount, UTS, IPC and network namespaces.
3. ``propagation`` make every mount private, BEFORE any mount: on a host whose
                   ``/`` is shared (systemd), mounts would otherwise leak out.
4. ``rootfs``      overlayfs: read-only image layers below, a writable layer on
                   top; bind the volumes and /etc/hostname, hosts, resolv.conf.
5. ``proc``        a fresh /proc for the new PID namespace, with the paths a
                   container must not see masked or read-only (as Docker does).
6. ``dev``         a small tmpfs /dev with only the safe devices, a private
                   /dev/pts and /dev/shm.
   ``cgroupns``    a cgroup namespace, rooted at the cgroup joined in 1.
7. ``sys``         /sys read-only, and the container's own cgroup tree at
                   /sys/fs/cgroup so its limits are readable inside.
8. ``pivot_root``  make the new root the root, and detach the old one.
9. ``hostname``    set the hostname in the new UTS namespace.
10. ``user``       (``--userns private`` only) a new user namespace: ids 0..
                   inside are an unprivileged range on the host.
11. ``capabilities`` keep only Docker's default 14 capabilities.
12. ``exec``       switch user, change directory, execve the command.

Sharing on purpose (``--pid``/``--ipc``/``--network container:NAME`` or
``host``, ``--uts host``): the supervisor forks into the chosen PID
namespace, and ``namespaces`` joins (setns) or leaves out the others; a
time namespace (``--timens``) is made there too.

Every kernel operation is written to a transcript (with the equivalent shell
command), which the child sends to the supervisor before it execs; the
course's "What happened" view reads it.

Mount targets inside the container's root are resolved with openat2(2) and
RESOLVE_IN_ROOT, so a symlink in an image can never send a mount to the host.
Everything mounted here lives only in the container's mount namespace: when
the container's last process exits, the kernel takes all of it away.

Where each part lives (one file per concern, each opening with what it holds):

- ``spec.py``        what the supervisor hands the child (:class:`ChildSpec`),
                     the start channel's :func:`send`, :class:`StageError`
                     and the exit codes
- ``builder.py``     the :class:`Builder`: a stage's beginning, pause and
                     failure, recorded mounts, paths resolved inside the root
- ``namespaces.py``  stages cgroup, namespaces (and time), cgroupns,
                     hostname, user
- ``mounts.py``      stages propagation, rootfs (and volumes), proc, dev,
                     sys, pivot_root
- ``process.py``     stages tty, seccomp, capabilities, init, exec
- ``lookup.py``      the exec stage's look-ups in the container's own files:
                     the user and groups, the command on PATH
- ``child.py``       the entry points of a forked child: :func:`child_main`
                     (a container's first process) and :func:`exec_main`
                     (a process started in a running container) -- each one
                     list of stages, in order

Why the :class:`Builder` is one class made of mixins: every stage works on
the same few things (the spec, the kernel, the transcript, the channel, the
root's fd) through the same helpers (``begin``, ``fail``, ``mount``,
``in_root``), and the entry points call the stages as ``b.stage_rootfs()``.

The supervisor imports all of this before it forks, and the child runs it
between the fork and the execve of the container's command: keep its imports
to the few it has (no new heavy module on that path). Everything is
importable from here (``runtime.ChildSpec``, ``runtime.child_main``,
``runtime.exec_main``, ``runtime.DEFAULT_PATH`` ...).
"""

from __future__ import annotations

from ..transcript import Transcript  # also imported from here by older code
from .builder import Builder, _mount_flags_text
from .child import _child, _crash_point, _enter_child, _reset_signals, child_main, exec_main
from .lookup import DB_LIMIT, _env_dict, _find_executable, _read_db, _resolve_user
from .mounts import DEV_SYMLINKS, DEVICES, MASKED_PATHS, MOUNT_DATA_MAX, READONLY_PATHS, split_lowerdir
from .namespaces import _NS_OPTION, _NS_TITLES, _link_up
from .process import DEFAULT_CAP_MASK, DEFAULT_CAPS, DEFAULT_PATH, _cap_last_cap
from .spec import EXIT_CANNOT_EXEC, EXIT_ENGINE, EXIT_NOT_FOUND, ChildSpec, StageError, send

__all__ = [
    "ChildSpec", "StageError", "Builder", "Transcript", "child_main", "exec_main", "send", "split_lowerdir",
    "DEFAULT_CAPS", "DEFAULT_CAP_MASK", "DEFAULT_PATH", "MASKED_PATHS", "READONLY_PATHS", "DEVICES",
    "DEV_SYMLINKS", "MOUNT_DATA_MAX", "DB_LIMIT", "EXIT_ENGINE", "EXIT_CANNOT_EXEC", "EXIT_NOT_FOUND",
    "_NS_OPTION", "_NS_TITLES", "_mount_flags_text", "_env_dict", "_read_db", "_resolve_user", "_find_executable",
    "_cap_last_cap", "_link_up", "_reset_signals", "_crash_point", "_enter_child", "_child",
]
