"""Image layers with their owners shifted, for containers with a private user namespace.

In a user namespace, uid 0 inside is an ordinary uid on the host (100000,
say). A file owned by the host's root is then owned by nobody the container
knows: ``ls -l /`` would say ``nobody nogroup`` and root inside could not
write to ``/etc``. So, as Docker's ``userns-remap`` does, a container with
``--userns private`` runs on a copy of its image's layers whose owners are
moved into the mapped range (host uid = inside uid + base). The copy is made
once per layer and range, and then shared by every such container.
"""

from __future__ import annotations

import os
import shutil
import stat

_XATTR_PREFIXES = ("trusted.overlay.", "user.", "security.capability")


def _shift(ident: int, base: int, size: int) -> int:
    """Host id for ``ident`` inside: in range -> moved; out of range -> nobody's."""
    return base + ident if 0 <= ident < size else base + 65534 if size > 65534 else base


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(_XATTR_PREFIXES):
            try:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
            except OSError:
                pass    # e.g. a file capability a shifted owner may not carry: dropped, as Docker does


def copy_shifted(src: str, dst: str, base: int, size: int) -> None:
    """Copy the layer tree ``src`` to ``dst`` (which must not exist), each owner
    id moved by ``base``; modes (setuid bits too), times, hard links, device
    nodes, overlay whiteouts and opaque-directory marks are kept."""
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []

    def place(s: str, d: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            dirs.append((d, st))          # modes and times once its contents are in
        elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
            os.link(links[(st.st_dev, st.st_ino)], d)
            return
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(mode):
            shutil.copyfile(s, d, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(d, mode, st.st_rdev)
        else:
            return
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            links[(st.st_dev, st.st_ino)] = d
        os.lchown(d, _shift(st.st_uid, base, size), _shift(st.st_gid, base, size))
        _copy_xattrs(s, d)
        if not stat.S_ISLNK(mode) and not stat.S_ISDIR(mode):
            os.chmod(d, stat.S_IMODE(mode))      # after chown, which clears setuid bits
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))

    place(src, dst, os.lstat(src))
    for here, subdirs, files in os.walk(src):
        rel = os.path.relpath(here, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        for name in subdirs + files:
            s = os.path.join(here, name)
            place(s, os.path.join(target, name), os.lstat(s))
    for d, st in reversed(dirs):
        os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def subordinate_range(user: str = "root", path: str = "/etc/subuid", size: int = 65536) -> tuple[int, int]:
    """The host id range for container ids 0..size-1: ``user``'s own entry in
    /etc/subuid, else the first ``size`` ids from 100000 up that no entry uses
    (so container root is never a real account or another user's range)."""
    entries: list[tuple[str, int, int]] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    entries.append((parts[0], int(parts[1]), int(parts[2])))
    except OSError:
        pass
    for name, start, count in entries:
        if name == user and count >= size:
            return start, size
    base = 100000
    for _name, start, count in sorted(entries, key=lambda e: e[1]):
        if start < base + size and base < start + count:
            base = start + count
    return base, size
