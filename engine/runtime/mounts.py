"""The stages that build the container's file system, then make it the root.

``propagation`` (every mount private first), ``rootfs`` (overlayfs of the
image layers and a writable layer; /etc/hostname, hosts, resolv.conf and the
volumes bound in), ``proc``, ``dev`` and ``sys`` (each fresh, with what a
container must not see masked or read-only, as Docker does) and
``pivot_root``. Every target is resolved inside the new root
(:meth:`~engine.runtime.builder.Builder.in_root`). Mixed into
:class:`~engine.runtime.builder.Builder`.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import syscalls as sc
from .. import userns

NS_GET_USERNS = 0xB701          # ioctl: the user namespace that owns a namespace (an fd of it)

# Docker's masked and read-only /proc and /sys paths (moby oci/defaults.go).
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# The devices a container gets: bound from the host's own nodes into a /dev
# mounted nodev, so a node a learner makes with mknod inside is inert -- on
# cgroup v1 and v2 alike, with no device cgroup or BPF filter needed.
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]
DEV_SYMLINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


# mount(2) copies at most one page of options, NUL included.
MOUNT_DATA_MAX = 4096


def split_lowerdir(value: str) -> list[str]:
    """An overlay ``lowerdir=`` value's paths (':' separates, a backslash escapes)."""
    paths, cur, chars = [], [], iter(value)
    for ch in chars:
        if ch == "\\":
            cur.append(next(chars, ""))
        elif ch == ":":
            paths.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    paths.append("".join(cur))
    return paths


class MountStages:
    """The file-system stages of the :class:`~engine.runtime.builder.Builder`."""

    def bind_volume(self, vol: dict) -> None:
        """``-v SOURCE:TARGET[:ro]``. The source is opened once (O_PATH) with the
        policy's resolve flags (``vol["resolve"]``: a seat's path may hold no
        symlink at all) and bound from that fd: what was opened is what is
        mounted, whatever is renamed or re-linked meanwhile. Then nosuid,
        nodev -- and with ``ro`` read-only -- are set on the bind AND every
        mount below it (mount_setattr AT_RECURSIVE, as Docker 25 does): a
        plain remount would leave a submount (a -v /sys/fs/cgroup:/cg:ro's
        own cgroup files) writable."""
        from ..policy import open_volume_source, volume_error

        resolve = vol.get("resolve", 0)
        try:
            src = open_volume_source(vol["source"], resolve)
        except OSError as e:
            self.fail(f"invalid volume source {vol['source']}: {volume_error(e, resolve)}")
        try:
            kind = "dir" if stat.S_ISDIR(os.fstat(src).st_mode) else "file"
            self.mount_in_root(f"/proc/self/fd/{src}", vol["target"], None, sc.MS_BIND | sc.MS_REC, kind=kind,
                               shown_source=vol["source"])
        finally:
            os.close(src)
        attrs = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | (sc.MOUNT_ATTR_RDONLY if vol["readonly"] else 0)
        names = (["ro"] if vol["readonly"] else []) + ["nosuid", "nodev"]
        opts = ",".join(n + "=recursive" if n == "ro" else n for n in names)
        self.t.op("mount_setattr", f"mount -o remount,bind,{opts} {vol['target']}  # and every mount below it",
                  target=vol["target"], attrs=names, flags="AT_RECURSIVE")
        fd = self.in_root(vol["target"], kind)
        try:
            self.k.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, attrs)
        except OSError as e:
            if e.errno != errno.ENOSYS:
                self.fail(f"cannot make the volume {vol['target']} {'read-only, ' if vol['readonly'] else ''}"
                          f"nosuid and nodev: {os.strerror(e.errno)}")
            if vol["readonly"]:
                self.fail(f"a read-only volume ({vol['target']}) needs mount_setattr(2), which this kernel "
                          f"({os.uname().release}) lacks: Linux 5.12 or newer makes its submounts read-only too")
            # A read-write volume on an older kernel: nosuid and nodev on its top mount at least.
            self.mount(None, f"/proc/self/fd/{fd}", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV,
                       shown_target=vol["target"])
        finally:
            os.close(fd)

    def stage_propagation(self) -> None:
        self.begin("propagation", "Make every mount private, so nothing leaks to the host")
        self.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)

    def stage_rootfs(self) -> None:
        s = self.spec
        self.begin("rootfs", "Mount the image layers and the writable layer (overlayfs)")
        # In a user namespace (the rootless engine's) overlayfs keeps its marks
        # in user.overlay.* xattrs: the layers were unpacked so.
        extra = ",userxattr" if s.rootless else ""
        data = f"lowerdir={s.lowerdir},upperdir={s.upperdir},workdir={s.workdir}{extra}"
        held = []
        if len(data.encode()) >= MOUNT_DATA_MAX:
            # Many layers: their paths overflow the page mount(2) reads its
            # options from. Each layer is opened and named by its descriptor
            # instead (/proc/self/fd/N: ~18 bytes; 128 layers fit easily).
            lowers = []
            for path in split_lowerdir(s.lowerdir):
                try:
                    held.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
                except OSError as e:
                    self.fail(f"cannot open the image layer {path}: {os.strerror(e.errno)}")
                lowers.append(f"/proc/self/fd/{held[-1]}")
            data = f"lowerdir={':'.join(lowers)},upperdir={s.upperdir},workdir={s.workdir}{extra}"
        try:
            self.mount("overlay", s.rootfs, "overlay", sc.MS_NODEV, data)
        finally:
            for fd in held:
                os.close(fd)
        self.root_fd = os.open(s.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        for path, host in s.etc_files.items():
            self.mount_in_root(host, path, None, sc.MS_BIND, kind="file")
        for vol in s.volumes:
            self.bind_volume(vol)

    def stage_proc(self) -> None:
        self.begin("proc", "Mount a fresh /proc for the new PID namespace; mask what a container must not see")
        self.mount_kernel_fs("proc", "/proc", sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV)
        self._mask_and_protect(prefix="/proc")

    def mount_kernel_fs(self, fstype: str, path: str, flags: int, *, source: str | None = None) -> None:
        """Mount a fresh ``fstype`` (proc, sysfs, mqueue) at ``path``. The
        rootless engine may not where the namespace behind it is the host's
        (--pid, --network or --ipc host): its user namespace does not own it;
        there the host's own is bound instead, as podman does."""
        if self.spec.rootless and not self._owns_namespace(fstype):
            if not os.path.isdir(path):
                return                  # the host has none mounted (no /dev/mqueue): neither has the container
            self.mount_in_root(path, path, None, sc.MS_BIND | sc.MS_REC, refuse_symlink=True)
            if flags & sc.MS_RDONLY:
                self.mount_in_root(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | flags)
            return
        self.mount_in_root(source or fstype, path, fstype, flags, refuse_symlink=True)

    @staticmethod
    def _owns_namespace(fstype: str) -> bool:
        """Whether the namespace ``fstype`` shows was made in this user namespace."""
        kind = {"proc": "pid", "sysfs": "net", "mqueue": "ipc"}[fstype]
        try:
            import fcntl

            fd = os.open(f"/proc/self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                owner = fcntl.ioctl(fd, NS_GET_USERNS)
            except PermissionError:
                return False        # owned outside this user namespace: the kernel will not even say by whom
            finally:
                os.close(fd)
            try:
                return os.fstat(owner).st_ino == os.stat("/proc/self/ns/user").st_ino
            finally:
                os.close(owner)
        except OSError:
            return True

    def _mask_and_protect(self, prefix: str) -> None:
        for path in (p for p in MASKED_PATHS if p.startswith(prefix + "/")):
            try:
                st = os.stat(path.lstrip("/"), dir_fd=self.root_fd, follow_symlinks=False)
            except OSError:
                continue            # not on this kernel: nothing to hide
            if stat.S_ISDIR(st.st_mode):
                self.mount_in_root("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0")
            else:
                self.mount_in_root("/dev/null", path, None, sc.MS_BIND, kind="file")
        for path in (p for p in READONLY_PATHS if p.startswith(prefix + "/")):
            try:
                os.stat(path.lstrip("/"), dir_fd=self.root_fd, follow_symlinks=False)
            except OSError:
                continue
            self.mount_in_root(path, path, None, sc.MS_BIND | sc.MS_REC)
            self.mount_in_root(None, path, None,
                               sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)

    def stage_dev(self) -> None:
        self.begin("dev", "Give the container a minimal /dev")
        self.mount_in_root("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_STRICTATIME,
                           "mode=755,size=65536k", refuse_symlink=True)
        for name in DEVICES:
            self.mount_in_root(f"/dev/{name}", f"/dev/{name}", None, sc.MS_BIND, kind="file")
        dev_fd = self.in_root("/dev")
        try:
            dev = f"/proc/self/fd/{dev_fd}"
            for name, target in DEV_SYMLINKS.items():
                self.t.op("symlink", f"ln -s {target} /dev/{name}", target=target, link=f"/dev/{name}")
                os.symlink(target, f"{dev}/{name}")
            if self.spec.tty:
                os.close(os.open(f"{dev}/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        finally:
            os.close(dev_fd)
        # gid 5 (tty) owns the terminals, where the user namespace maps it (a
        # rootless engine with the single mapping has no gid 5).
        tty_gid = ",gid=5" if userns.mapped(5, "/proc/self/gid_map") else ""
        self.mount_in_root("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                           f"newinstance,ptmxmode=0666,mode=0620{tty_gid}")
        if self.spec.shm_source:          # an IPC namespace shared: its POSIX shared memory too
            self.mount_in_root(self.spec.shm_source, "/dev/shm", None, sc.MS_BIND | sc.MS_REC)
        else:
            self.mount_in_root("shm", "/dev/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                               "mode=1777,size=65536k")
        self.mount_kernel_fs("mqueue", "/dev/mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)

    def stage_sys(self) -> None:
        self.begin("sys", "Mount /sys read-only, with the container's own cgroup tree")
        ro = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
        self.mount_kernel_fs("sysfs", "/sys", ro)
        for m in self.spec.cgroup_mounts:
            if "symlink" in m:
                fd = self.in_root(os.path.dirname(m["target"]))
                try:
                    link = f"/proc/self/fd/{fd}/{os.path.basename(m['target'])}"
                    self.t.op("symlink", f"ln -s {m['symlink']} /{m['target']}", target=m["symlink"])
                    os.symlink(m["symlink"], link)
                finally:
                    os.close(fd)
                continue
            flags = m["flags"]
            if m["fstype"] == "tmpfs":   # the v1 parent dir: made writable, then sealed below
                flags &= ~sc.MS_RDONLY
            self.mount_in_root(m["source"], "/" + m["target"], m["fstype"], flags, m.get("data") or None)
        for m in self.spec.cgroup_mounts:
            if m.get("fstype") == "tmpfs" and m["flags"] & sc.MS_RDONLY:
                self.mount_in_root(None, "/" + m["target"], None, sc.MS_REMOUNT | m["flags"], m.get("data") or None)
        self._mask_and_protect(prefix="/sys")

    def stage_pivot_root(self) -> None:
        self.begin("pivot_root", "Make the container's file system the root; detach the host's")
        os.chdir(self.spec.rootfs)
        self.t.op("pivot_root", f"cd {self.spec.rootfs} && pivot_root . .", new_root=self.spec.rootfs)
        try:
            self.k.pivot_root(".", ".")
        except OSError as e:
            self.fail(f"pivot_root: {os.strerror(e.errno)}")
        # The old root now sits on top of the new one at "/": detach it.
        self.t.op("umount2", "umount -l /", target="/ (the old root)", flags="MNT_DETACH")
        self.k.umount(".", sc.MNT_DETACH)
        os.chdir("/")
        os.close(self.root_fd)
        self.root_fd = -1
