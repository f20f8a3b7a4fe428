"""A size limit on a container's writable layer (``--storage-opt size=N``).

A container's writes land in its overlay upper directory, on the file system
of the engine's data dir: without a limit one container can fill the host's
disk (a memory limit does not help -- the page cache is written back). As
Docker's overlay2 driver does, the limit is an XFS *project quota*:

1. the container's upper and work directories get a project id of their own,
   with the "inherit" flag, so everything made inside belongs to the project
   (``ioctl(FS_IOC_FSSETXATTR)``: ``fsx_projid``, ``FS_XFLAG_PROJINHERIT``);
2. the project gets a hard limit on blocks (``quotactl_fd(Q_XSETQLIM,
   PRJQUOTA)``, Linux 5.14+, given any open file of the file system, so no
   block device node is needed).

Writes past the limit fail with ENOSPC (XFS's answer for a project quota)
inside the container; the host's disk is untouched. This needs the data
dir's file system to be XFS mounted with ``prjquota`` (``pquota``); anywhere
else (ext4 without project quotas, tmpfs, btrfs ...) ``--storage-opt size``
is refused, as Docker refuses it, and ``doctor`` says why.

The shell equivalent, for a project id P::

    xfs_io -c 'chproj -R P' -c 'chattr +P' UPPER     # the id, inherited
    xfs_quota -x -c 'limit -p bhard=SIZE P' MOUNTPOINT
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import struct

XFS_SUPER_MAGIC = 0x58465342
FS_IOC_FSGETXATTR = 0x801C581F      # _IOR('X', 31, struct fsxattr)
FS_IOC_FSSETXATTR = 0x401C5820      # _IOW('X', 32, struct fsxattr)
FS_XFLAG_PROJINHERIT = 0x00000200
FSXATTR = struct.Struct("=IIIII8x")   # xflags, extsize, nextents, projid, cowextsize, pad
PRJQUOTA = 2
Q_XGETQUOTA = (ord("X") << 8) + 3
Q_XSETQLIM = (ord("X") << 8) + 4
FS_DQUOT_VERSION = 1
FS_PROJ_QUOTA = 2
FS_DQ_BHARD = 1 << 3
FS_DQ_IHARD = 1 << 1
SYS_QUOTACTL_FD = 443               # the same number on every architecture (a new-style syscall)
BASIC_BLOCK = 512                   # quota block counts are in 512-byte units


class _DiskQuota(ctypes.Structure):
    """struct fs_disk_quota (linux/dqblk_xfs.h)."""

    _fields_ = [("d_version", ctypes.c_int8), ("d_flags", ctypes.c_int8), ("d_fieldmask", ctypes.c_uint16),
                ("d_id", ctypes.c_uint32), ("d_blk_softlimit", ctypes.c_uint64),
                ("d_blk_hardlimit", ctypes.c_uint64), ("d_ino_softlimit", ctypes.c_uint64),
                ("d_ino_hardlimit", ctypes.c_uint64), ("d_bcount", ctypes.c_uint64),
                ("d_icount", ctypes.c_uint64), ("d_itimer", ctypes.c_int32), ("d_btimer", ctypes.c_int32),
                ("d_iwarns", ctypes.c_uint16), ("d_bwarns", ctypes.c_uint16), ("d_itimer_hi", ctypes.c_int8),
                ("d_btimer_hi", ctypes.c_int8), ("d_rtbtimer_hi", ctypes.c_int8), ("d_padding2", ctypes.c_int8),
                ("d_rtb_hardlimit", ctypes.c_uint64), ("d_rtb_softlimit", ctypes.c_uint64),
                ("d_rtbcount", ctypes.c_uint64), ("d_rtbtimer", ctypes.c_int32), ("d_rtbwarns", ctypes.c_uint16),
                ("d_padding3", ctypes.c_int16), ("d_padding4", ctypes.c_char * 8)]


UNSUPPORTED = "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"


def mount_of(path: str) -> tuple[str, str, str]:
    """(mount point, file system type, super block options) of the mount holding ``path``."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    best = ("", "", "")
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3 or fields[2] != dev:
                continue
            point = fields[4].encode().decode("unicode_escape")
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
                best = (point, tail[0], tail[2])
    return best


def support(path: str) -> tuple[bool, str]:
    """Whether writable layers under ``path`` can be bounded here, and why (not)."""
    try:
        point, fstype, options = mount_of(path)
    except OSError as e:
        return False, f"cannot look at {path}: {e.strerror}"
    if not point:
        return False, f"cannot find the mount that holds {path}"
    xfs_quota = os.path.exists("/proc/fs/xfs/xqmstat")
    kernel = "" if xfs_quota else "; besides, this kernel's XFS has no quota support (CONFIG_XFS_QUOTA)"
    if fstype != "xfs":
        return False, f"{path} is on {fstype} (mounted at {point}), not on XFS with project quotas{kernel}"
    opts = options.split(",")
    if "pqnoenforce" in opts:
        return False, f"{path} is on XFS ({point}) with project quotas counted but not enforced (pqnoenforce)"
    if not any(o in ("prjquota", "pquota") for o in opts):
        return False, (f"{path} is on XFS (mounted at {point}) without project quotas (mount it with "
                       f"-o prjquota){kernel}")
    return True, f"{path} is on XFS with project quotas (mounted at {point})"


def _quotactl_fd(fd: int, cmd: int, qid: int, quota: _DiskQuota) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_QUOTACTL_FD, fd, (cmd << 8) | PRJQUOTA, qid, ctypes.byref(quota)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _project_is_free(fd: int, qid: int) -> bool:
    quota = _DiskQuota()
    try:
        _quotactl_fd(fd, Q_XGETQUOTA, qid, quota)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return True             # no quota record: nobody uses this id
        raise
    return quota.d_bcount == 0 and quota.d_icount == 0 and quota.d_blk_hardlimit == 0


def set_project(path: str, project: int) -> None:
    """Give the directory ``path`` the project id ``project``, inherited by what is made in it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        buf = bytearray(FSXATTR.size)
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
        xflags, extsize, nextents, _old, cow = FSXATTR.unpack(buf)
        fcntl.ioctl(fd, FS_IOC_FSSETXATTR, FSXATTR.pack(xflags | FS_XFLAG_PROJINHERIT, extsize, nextents,
                                                        project, cow))
    finally:
        os.close(fd)


def project_of(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(FSXATTR.size)
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
        return FSXATTR.unpack(buf)[3]
    finally:
        os.close(fd)


def limit(dirs: list[str], size: int) -> int:
    """Bound what is written under ``dirs`` (a container's upper and work
    directories: overlayfs renames from one to the other, so they must share a
    project) to ``size`` bytes in all. Returns the project id. Raises OSError."""
    fd = os.open(dirs[0], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _ in range(32):
            project = 1 << 24 | secrets.randbelow((1 << 31) - (1 << 24))
            if _project_is_free(fd, project):
                break
        else:
            raise OSError(errno.EEXIST, "no free project id found")
        quota = _DiskQuota(d_version=FS_DQUOT_VERSION, d_flags=FS_PROJ_QUOTA, d_fieldmask=FS_DQ_BHARD,
                           d_id=project, d_blk_hardlimit=(size + BASIC_BLOCK - 1) // BASIC_BLOCK)
        _quotactl_fd(fd, Q_XSETQLIM, project, quota)
    finally:
        os.close(fd)
    for d in dirs:
        set_project(d, project)
    return project
