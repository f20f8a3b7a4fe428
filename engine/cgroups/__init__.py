"""Control groups: how the kernel limits and accounts a group of processes.

A cgroup is a directory in a special file system. Writing a pid into its
``cgroup.procs`` file moves that process (and every child it forks later) into
the group; writing a number into a control file such as ``pids.max`` makes the
kernel enforce it. Namespaces decide what a container can *see*; cgroups decide
how much it can *use* -- memory, processes, CPU time.

There are two layouts of that file system:

- **v1** (legacy): one hierarchy per controller, each its own mount --
  ``/sys/fs/cgroup/memory/...``, ``/sys/fs/cgroup/pids/...`` -- sometimes
  several controllers share one (``cpu,cpuacct``). A process has one cgroup in
  *each* hierarchy, so a container is a directory in every one of them.
- **v2** (unified): a single tree at ``/sys/fs/cgroup``. A parent hands
  controllers down to its children by writing ``+memory`` into its
  ``cgroup.subtree_control``; the files are ``memory.max``, ``pids.max``,
  ``cpu.max``. Most current distributions use v2 only.
- *hybrid* machines mount the v1 hierarchies and an (often controller-less)
  cgroup2 at ``/sys/fs/cgroup/unified``; the limits then live in v1.

:func:`detect` returns a :class:`Driver` for what this machine has --
:class:`V2Driver`, :class:`V1Driver`, or :class:`NoDriver` when no cgroup can
be written (rootless without a delegated cgroup): that one applies nothing

Where each part lives:

- :mod:`.limits` -- :class:`Limits`, what a container may use;
- :mod:`.base` -- a container's :class:`Cgroup` and the :class:`Driver`
  that makes it, whatever the layout; the stand-ins :class:`NoCgroup` and
  :class:`NoDriver`;
- :mod:`.v2` and :mod:`.v1` -- each layout's control files: the limits
  written, the usage and events read back;
- :mod:`.files` -- reading and writing control files, shared by both;
- :mod:`.mounts` -- the cgroup tree as a container sees it at /sys/fs/cgroup
  (:class:`Mount`, :class:`Symlink`);
- :mod:`.detection` -- :func:`detect`: which layout this machine has.

Everything is importable from here (``from engine.cgroups import Limits, detect``).
"""

from engine.spec import parse_size

from .base import DEFAULT_PARENT, Cgroup, Driver, NoCgroup, NoDriver
from .detection import detect
from .limits import CPU_PERIOD, Limits
from .mounts import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, RO_FLAGS, Mount, Symlink
from .v1 import V1Cgroup, V1Driver
from .v2 import V2Cgroup, V2Driver

__all__ = [
    "Limits", "parse_size", "detect", "Driver", "V1Driver", "V2Driver", "NoDriver",
    "Cgroup", "V1Cgroup", "V2Cgroup", "NoCgroup", "Mount", "Symlink", "DEFAULT_PARENT", "CPU_PERIOD",
    "MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "RO_FLAGS",
]
