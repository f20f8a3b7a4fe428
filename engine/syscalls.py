"""The kernel calls a container is made of, through ctypes.

Python 3.11 has no ``os.unshare`` or ``os.setns``, and ``mount(2)``,
``pivot_root(2)``, ``sethostname(2)`` and ``prctl(2)`` are not in the standard
library at all, so this module wraps them -- and nothing else. Everything in
the engine that changes kernel state goes through one :class:`Syscalls`
object, so unit tests can pass a :class:`RecordingSyscalls` that only writes
down what would have been done, beside the real tests that do it.

The constants are the kernel's (``include/uapi/linux/sched.h``, ``mount.h``,
``prctl.h``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field

# Namespace flags for unshare(2), clone(2) and setns(2).
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
    "pid": CLONE_NEWPID, "net": CLONE_NEWNET, "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER, "time": CLONE_NEWTIME,
}

# mount(2) flags.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# mount_setattr(2) (Linux 5.12): change a mount -- with AT_RECURSIVE, a
# whole tree of mounts -- at once; mount(MS_REMOUNT) changes one mount only.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
_SYS_mount_setattr = 442         # the same number on x86_64 and aarch64

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_pivot_root = {"x86_64": 155, "aarch64": 41}
_SYS_capset = {"x86_64": 126, "aarch64": 91}


def flag_names(flags: int, table: dict[str, int]) -> list[str]:
    """Names of the bits of ``flags`` found in ``table`` (for transcripts)."""
    return [name for name, bit in table.items() if flags & bit]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Syscalls:
    """The real kernel. Every method raises OSError with errno on failure."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_ulong, ctypes.c_char_p]
        self._libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self._libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self._libc.unshare.argtypes = [ctypes.c_int]
        self._libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        self._libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                                     ctypes.c_ulong, ctypes.c_ulong]
        self._machine = os.uname().machine

    def _check(self, result: int, what: str, path: str | None = None) -> int:
        if result < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        return result

    def unshare(self, flags: int) -> None:
        """Move the caller into new namespaces (``unshare --pid --mount ...``)."""
        self._check(self._libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int = 0) -> None:
        """Join the namespace that ``fd`` (an open /proc/PID/ns/KIND) refers to."""
        self._check(self._libc.setns(fd, nstype), "setns")

    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None:
        """mount(2)."""
        enc = lambda s: s.encode() if s is not None else None  # noqa: E731
        self._check(self._libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
                    "mount", target)

    def umount(self, target: str, flags: int = 0) -> None:
        """umount2(2)."""
        self._check(self._libc.umount2(target.encode(), flags), "umount", target)

    def mount_setattr(self, dir_fd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
        """mount_setattr(2): set ``attr_set`` (MOUNT_ATTR_*) on the mount at
        ``path`` relative to ``dir_fd`` (``""`` with AT_EMPTY_PATH: the fd's own
        mount) -- and, with AT_RECURSIVE, on every mount below it. Kernels
        before 5.12 have no such call: OSError(ENOSYS)."""
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        self._check(self._libc.syscall(_SYS_mount_setattr, dir_fd, path.encode(), flags,
                                       ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr", path)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        """pivot_root(2): make ``new_root`` the root of this mount namespace."""
        nr = _SYS_pivot_root[self._machine]
        self._check(self._libc.syscall(nr, new_root.encode(), put_old.encode()), "pivot_root", new_root)

    def sethostname(self, name: str) -> None:
        """sethostname(2), in the caller's UTS namespace."""
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), "sethostname")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2)."""
        return self._check(self._libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")

    def seccomp_filter(self, program: bytes) -> None:
        """prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER): install a classic BPF
        program (``struct sock_filter[]``, 8 bytes each) on the calling thread."""
        buf = ctypes.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
        self._check(self._libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                                     ctypes.addressof(prog), 0, 0), "seccomp")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """capset(2) for the calling thread: three 64-bit capability sets."""
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for i, shift in enumerate((0, 32)):
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        nr = _SYS_capset[self._machine]
        self._check(self._libc.syscall(nr, ctypes.byref(header), ctypes.byref(data)), "capset")


@dataclass
class RecordingSyscalls:
    """A fake kernel for unit tests: records each call, changes nothing.

    ``fail`` maps a method name to an errno to raise on its next call, so a
    test can check what the engine does when a stage fails.
    """

    calls: list[tuple] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            err = self.fail.pop(name)
            raise OSError(err, f"{name}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._record("setns", fd, nstype)

    def mount(self, source, target, fstype, flags=0, data=None) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount(self, target: str, flags: int = 0) -> None:
        self._record("umount", target, flags)

    def mount_setattr(self, dir_fd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
        self._record("mount_setattr", path, flags, attr_set, attr_clr)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0) -> int:
        self._record("prctl", option, arg2, arg3, arg4, arg5)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)

    def seccomp_filter(self, program: bytes) -> None:
        self._record("seccomp_filter", len(program) // 8)


# openat2(2): resolve a path as if the directory fd were "/" -- symlinks and
# ".." can never lead out of it. This is how a container's mount targets are
# found inside its root file system (as runc and umoci do).
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10
_SYS_openat2 = 437


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, mode: int = 0,
            resolve: int = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) -> int:
    """openat2(2) with ``resolve`` flags; returns a new fd (O_CLOEXEC is added)."""
    libc = _libc()
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = libc.syscall(_SYS_openat2, dir_fd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"openat2: {os.strerror(err)}", path)
    return fd


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC
