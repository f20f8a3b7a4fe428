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
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import signal
import socket
import stat
import struct
import termios
from dataclasses import dataclass, field
from typing import NoReturn

from . import sealed, seccomp
from . import syscalls as sc
from .transcript import Transcript  # also imported from here by older code

# Docker's default capability set (moby oci/caps/defaults.go): CapEff 0xa80425fb.
DEFAULT_CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
}
DEFAULT_CAP_MASK = sum(1 << bit for bit in DEFAULT_CAPS.values())

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

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
    pause: bool = False              # stop after each stage until the supervisor says go (run --explain)
    seccomp: bytes | None = None     # the system call filter: packed BPF (engine.seccomp.pack), or none
    no_new_privs: bool = False       # --security-opt no-new-privileges


class StageError(Exception):
    """A stage failed; carries the stage id and the exit code to use."""

    def __init__(self, stage: str, message: str, code: int = EXIT_ENGINE):
        super().__init__(message)
        self.stage, self.message, self.code = stage, message, code


_NS_OPTION = {"mnt": "mount", "uts": "uts", "ipc": "ipc", "net": "net", "pid": "pid",
              "cgroup": "cgroup", "user": "user", "time": "time"}
_NS_TITLES = {"mnt": "mount", "uts": "UTS", "ipc": "IPC", "net": "network"}


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


def _mount_flags_text(flags: int) -> str:
    names = {sc.MS_RDONLY: "ro", sc.MS_NOSUID: "nosuid", sc.MS_NODEV: "nodev",
             sc.MS_NOEXEC: "noexec", sc.MS_REMOUNT: "remount", sc.MS_BIND: "bind",
             sc.MS_REC: "rec", sc.MS_PRIVATE: "private", sc.MS_STRICTATIME: "strictatime"}
    return ",".join(n for bit, n in names.items() if flags & bit)


class Builder:
    """Runs the stages with a :class:`~engine.syscalls.Syscalls` and records them."""

    def __init__(self, spec: ChildSpec, kernel, transcript: Transcript, chan: socket.socket | None):
        self.spec = spec
        self.k = kernel
        self.t = transcript
        self.chan = chan
        self.stage_id = ""
        self.root_fd = -1
        self.joined: dict | None = None
        self.reported = 0          # stages reported so far (run --explain)

    # -- helpers ---------------------------------------------------------
    def await_join(self) -> dict | None:
        """The supervisor's word that this process is in its cgroup (once;
        None when the child joins by itself). A failing child reads it too
        before it leaves, so the supervisor's message never meets a closed door."""
        if not self.spec.join_by_parent or self.chan is None or self.joined is not None:
            return self.joined
        self.chan.settimeout(30)
        try:
            self.joined = json.loads(self.chan.recv(65536) or b"{}")
        except (OSError, ValueError):
            self.joined = {}
        self.chan.settimeout(None)
        return self.joined

    def begin(self, sid: str, title: str) -> None:
        self.checkpoint()
        self.stage_id = sid
        self.t.stage(sid, title)

    def checkpoint(self) -> None:
        """With ``pause`` (run --explain): report the stage just done and wait
        for the word to go on -- meanwhile the half-built container can be
        looked at from outside (top, inspect)."""
        if not self.spec.pause or self.chan is None or not self.t.stages:
            return
        stage = self.t.done()[-1]
        if self.reported >= len(self.t.stages):
            return
        self.reported = len(self.t.stages)
        send(self.chan, {"stage": stage})
        while True:
            try:
                msg = json.loads(self.chan.recv(65536) or b"{}")
            except (OSError, ValueError):
                msg = {}
            if "joined" in msg:          # the cgroup word may come first: keep it for cgroupns
                self.joined = msg
                continue
            if not msg.get("go"):
                os._exit(EXIT_ENGINE)    # the supervisor has gone or ended the start
            return

    def fail(self, message: str, code: int = EXIT_ENGINE) -> NoReturn:
        raise StageError(self.stage_id, message, code)

    def mount(self, source, target, fstype, flags=0, data=None, *, shown_target=None, shown_source=None) -> None:
        shown = shown_target or target
        shown_src = shown_source or source
        opts = ",".join(x for x in (_mount_flags_text(flags), data or "") if x)
        if flags & sc.MS_BIND and not flags & sc.MS_REMOUNT:
            shell = f"mount --{'r' if flags & sc.MS_REC else ''}bind {shown_src} {shown}"
        elif flags & sc.MS_REMOUNT:
            shell = f"mount -o {opts} {shown}"
        elif fstype is None and flags & sc.MS_PRIVATE:
            shell = f"mount --make-{'r' if flags & sc.MS_REC else ''}private {shown}"
        else:
            shell = f"mount -t {fstype} {'-o ' + opts + ' ' if opts else ''}{source} {shown}"
        self.t.op("mount", shell, source=shown_src, target=shown, fstype=fstype,
                  flags=_mount_flags_text(flags), data=data)
        try:
            self.k.mount(source, target, fstype, flags, data)
        except OSError as e:
            self.fail(f"{shell}: {os.strerror(e.errno)}")

    def in_root(self, path: str, kind: str = "dir", *, refuse_symlink: bool = False) -> int:
        """O_PATH fd of ``path`` resolved inside the rootfs, created as ``kind`` if missing.

        The whole path is resolved at once, from the container's root, with
        RESOLVE_IN_ROOT: a symlink in the image -- relative or absolute
        (Debian's /var/run -> /run) -- resolves as it would inside the
        container, and none can lead out of it (a hostile /escape -> / ends at
        the container's own /). What is missing is made one component at a
        time in the longest part that is there, and the path resolved again
        from the root; a dangling symlink on the way (an /etc/resolv.conf ->
        /run/systemd/...) is followed by making its target, inside the root.
        ``refuse_symlink`` (/proc, /dev, /sys): a symlink anywhere on the way is refused."""
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts:
            self.fail(f"path {path!r} may not contain '..'")
        resolve = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS | (sc.RESOLVE_NO_SYMLINKS if refuse_symlink else 0)

        def open_in_root(n: int) -> int:
            return sc.openat2(self.root_fd, "/".join(parts[:n]) or ".", os.O_PATH, resolve=resolve)

        try:
            for _ in range(40):              # as many symlinks as the kernel follows in one path
                try:
                    return open_in_root(len(parts))
                except FileNotFoundError:
                    pass
                have = len(parts) - 1        # the longest part of the path that is there
                while True:
                    try:
                        fd = open_in_root(have)
                        break
                    except FileNotFoundError:
                        have -= 1
                name = parts[have]
                try:
                    if have == len(parts) - 1 and kind == "file":
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                         0o644, dir_fd=fd))
                    else:
                        os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    # Only a dangling symlink is there and not there: go where it points.
                    link = os.readlink(name, dir_fd=fd)
                    rest = [p for p in link.split("/") if p and p != "."]
                    parts = (rest if link.startswith("/") else parts[:have] + rest) + parts[have + 1:]
                finally:
                    os.close(fd)
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        except OSError as e:
            if e.errno == errno.ELOOP and refuse_symlink:
                self.fail(f"the image's {path} is a symlink (or lies under one); refusing to mount over it")
            self.fail(f"cannot make {path} inside the container: {os.strerror(e.errno)}")

    def mount_in_root(self, source, path, fstype, flags=0, data=None, *, kind="dir",
                      refuse_symlink=False, shown_source=None) -> None:
        fd = self.in_root(path, kind, refuse_symlink=refuse_symlink)
        try:
            self.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data, shown_target=path,
                       shown_source=shown_source)
        finally:
            os.close(fd)

    def bind_volume(self, vol: dict) -> None:
        """``-v SOURCE:TARGET[:ro]``. The source is opened once (O_PATH) with the
        policy's resolve flags (``vol["resolve"]``: a seat's path may hold no
        symlink at all) and bound from that fd: what was opened is what is
        mounted, whatever is renamed or re-linked meanwhile. Then nosuid,
        nodev -- and with ``ro`` read-only -- are set on the bind AND every
        mount below it (mount_setattr AT_RECURSIVE, as Docker 25 does): a
        plain remount would leave a submount (a -v /sys/fs/cgroup:/cg:ro's
        own cgroup files) writable."""
        from .policy import open_volume_source, volume_error

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

    # -- stages ----------------------------------------------------------
    def stage_cgroup(self) -> None:
        self.begin("cgroup", "Join the container's control group")
        for path in self.spec.procs_files:
            self.t.op("write", f"echo $$ > {path}", path=path, value="0")
            try:
                with open(path, "w") as f:
                    f.write("0")
            except OSError as e:
                self.fail(f"cannot join cgroup {path}: {os.strerror(e.errno)}")

    def stage_namespaces(self) -> None:
        s = self.spec
        created = ["mnt"] + [k for k in ("uts", "ipc", "net") if k in s.new_ns]
        shared = [k for k, target in s.join_ns.items() if not target.get("made")]
        made = [target for target in s.join_ns.values() if target.get("made")]
        self.begin("namespaces", f"Create new {', '.join(_NS_TITLES[k] for k in created)} namespaces"
                   + (f"; join {', '.join(_NS_TITLES[k] for k in shared)} of another container" if shared else "")
                   + "".join(f"; enter the network namespace the engine plugged into network {t['network']}"
                             for t in made))
        # Join first: the host's /proc is still in sight, and the new mount
        # namespace below is made in whatever else this process is in.
        for kind, target in s.join_ns.items():
            self.t.op("setns", f"nsenter --{_NS_OPTION[kind]}={target['path']}", namespace=kind,
                      path=target["path"])
            if "fd" in target:          # made by the supervisor for this container (a network of ours)
                try:
                    self.k.setns(target["fd"], sc.NAMESPACE_FLAGS[kind])
                except OSError as e:
                    self.fail(f"cannot enter the {kind} namespace made for it: {os.strerror(e.errno)}")
                os.close(target["fd"])
                continue
            try:
                fd = os.open(target["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                self.fail(f"cannot open {target['path']}: {os.strerror(e.errno)} (has that container stopped?)")
            try:
                if os.fstat(fd).st_ino != target["inode"]:
                    self.fail(f"the container to share the {kind} namespace with has stopped")
                self.k.setns(fd, sc.NAMESPACE_FLAGS[kind])
            except OSError as e:
                self.fail(f"cannot join the {kind} namespace: {os.strerror(e.errno)}")
            finally:
                os.close(fd)
        flags = 0
        for kind in created:
            flags |= sc.NAMESPACE_FLAGS[kind]
        names = sc.flag_names(flags, {"CLONE_NEWNS": sc.CLONE_NEWNS, "CLONE_NEWUTS": sc.CLONE_NEWUTS,
                                      "CLONE_NEWIPC": sc.CLONE_NEWIPC, "CLONE_NEWNET": sc.CLONE_NEWNET})
        self.t.op("unshare", "unshare " + " ".join(f"--{_NS_OPTION[k]}" for k in created), flags=names)
        try:
            self.k.unshare(flags)
        except OSError as e:
            self.fail(f"unshare: {os.strerror(e.errno)}")
        if "net" in created:
            # A new network namespace has only a loopback device, and it is down.
            self.t.op("ioctl", "ip link set lo up", request="SIOCSIFFLAGS", device="lo", flags="IFF_UP")
            _link_up("lo")
        if s.timens is not None:
            self.time_namespace(s.timens)

    def time_namespace(self, offsets: dict) -> None:
        """unshare(CLONE_NEWTIME) makes a namespace for this process's future
        children only; its clock offsets can be set until a process enters
        it, and then this process enters it itself with setns."""
        lines = "".join(f"{clock} {int(offsets.get(clock, 0))} 0\n" for clock in ("monotonic", "boottime"))
        self.t.op("unshare", "unshare --time", flags=["CLONE_NEWTIME"])
        self.t.op("write", f"printf '{lines.replace(chr(10), chr(92) + 'n')}' > /proc/self/timens_offsets",
                  path="/proc/self/timens_offsets", value=lines)
        self.t.op("setns", "nsenter --time=/proc/self/ns/time_for_children", namespace="time")
        try:
            self.k.unshare(sc.CLONE_NEWTIME)
            with open("/proc/self/timens_offsets", "w") as f:
                f.write(lines)
            fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.k.setns(fd, sc.CLONE_NEWTIME)
            finally:
                os.close(fd)
        except OSError as e:
            self.fail(f"time namespace: {os.strerror(e.errno)}")

    def stage_userns(self) -> None:
        """A user namespace, entered last (Docker's default containers hold no
        capability over their other namespaces anyway): the supervisor maps
        ids 0.. inside to an unprivileged range on the host, then this process
        becomes root -- of the new namespace only."""
        self.begin("user", "Enter a new user namespace: root inside, an unprivileged user on the host")
        self.t.op("unshare", "unshare --user", flags=["CLONE_NEWUSER"])
        try:
            self.k.unshare(sc.CLONE_NEWUSER)
        except OSError as e:
            self.fail(f"unshare --user: {os.strerror(e.errno)}")
        reply = {}
        if self.chan is not None:
            send(self.chan, {"userns": True})
            self.chan.settimeout(30)
            try:
                reply = json.loads(self.chan.recv(65536) or b"{}")
            except (OSError, ValueError):
                reply = {}
            self.chan.settimeout(None)
        if not reply.get("mapped"):
            self.fail(reply.get("error") or "the supervisor did not map the user namespace's ids")
        for name in ("uid_map", "gid_map"):
            self.t.op("write", f"echo '{reply[name].strip()}' > /proc/{reply.get('pid', '$PID')}/{name}",
                      path=f"/proc/PID/{name}", value=reply[name], by="supervisor")
        self.become_userns_root()

    def become_userns_root(self) -> None:
        """Become uid and gid 0 of the user namespace just entered (after its
        maps are written): root there, the mapped unprivileged ids on the host."""
        self.t.op("setresuid", "setpriv --reuid=0 --regid=0 --clear-groups  # root of its user namespace",
                  uid=0, gid=0)
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)

    def stage_cgroupns(self) -> None:
        """A cgroup namespace whose root is the container's own cgroup -- so the
        process must be in that cgroup first (the supervisor puts it there while
        this child mounts, and says so over the channel)."""
        self.begin("cgroupns", "Create a cgroup namespace rooted at the container's cgroup")
        reply = self.await_join()
        if reply is not None and not reply.get("joined"):
            self.fail(reply.get("error") or "the supervisor did not put the process in its cgroup")
        self.t.op("unshare", "unshare --cgroup", flags=["CLONE_NEWCGROUP"])
        try:
            self.k.unshare(sc.CLONE_NEWCGROUP)
        except OSError as e:
            self.fail(f"unshare --cgroup: {os.strerror(e.errno)}")

    def stage_propagation(self) -> None:
        self.begin("propagation", "Make every mount private, so nothing leaks to the host")
        self.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)

    def stage_rootfs(self) -> None:
        s = self.spec
        self.begin("rootfs", "Mount the image layers and the writable layer (overlayfs)")
        data = f"lowerdir={s.lowerdir},upperdir={s.upperdir},workdir={s.workdir}"
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
            data = f"lowerdir={':'.join(lowers)},upperdir={s.upperdir},workdir={s.workdir}"
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
        self.mount_in_root("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV,
                           refuse_symlink=True)
        self._mask_and_protect(prefix="/proc")

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
        self.mount_in_root("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                           "newinstance,ptmxmode=0666,mode=0620,gid=5")
        if self.spec.shm_source:          # an IPC namespace shared: its POSIX shared memory too
            self.mount_in_root(self.spec.shm_source, "/dev/shm", None, sc.MS_BIND | sc.MS_REC)
        else:
            self.mount_in_root("shm", "/dev/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                               "mode=1777,size=65536k")
        self.mount_in_root("mqueue", "/dev/mqueue", "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)

    def stage_sys(self) -> None:
        self.begin("sys", "Mount /sys read-only, with the container's own cgroup tree")
        ro = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
        self.mount_in_root("sysfs", "/sys", "sysfs", ro, refuse_symlink=True)
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

    def stage_hostname(self) -> None:
        if "uts" not in self.spec.new_ns:
            return                  # the host's UTS namespace (--uts host): its name stays
        self.begin("hostname", "Give the container its own hostname")
        self.t.op("sethostname", f"hostname {self.spec.hostname}", name=self.spec.hostname)
        self.k.sethostname(self.spec.hostname)

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


def _env_dict(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env


DB_LIMIT = 4 << 20         # bytes read at most of the container's /etc/passwd or /etc/group


def _read_db(path: str) -> tuple[list[list[str]], str]:
    """The entries of the container's ``path`` (passwd or group) and, if it
    cannot be used, why. The file belongs to the container: it may be a FIFO
    or a device, so it is opened without blocking and read only if it is a
    regular file of reasonable size. A missing file has no entries."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], ""
    except OSError as e:
        return [], f"{path}: {os.strerror(e.errno).lower()}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return [], f"{path} is not a regular file"
        if st.st_size > DB_LIMIT:
            return [], f"{path} is larger than {DB_LIMIT >> 20} MiB"
        chunks, size = [], 0
        while size <= DB_LIMIT and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        if size > DB_LIMIT:
            return [], f"{path} is larger than {DB_LIMIT >> 20} MiB"
    except OSError as e:
        return [], f"{path}: {os.strerror(e.errno).lower()}"
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")], ""


def _resolve_user(spec: str | None, b: Builder) -> tuple[int, int, list[int], str]:
    """uid, gid, supplementary groups and home for ``USER[:GROUP]``, read from
    the container's own /etc/passwd and /etc/group (never the host's)."""
    user, _, group = (spec or "0").partition(":")
    passwd, passwd_problem = _read_db("/etc/passwd")
    groups_db, group_problem = _read_db("/etc/group")
    entry = next((e for e in passwd if len(e) >= 6 and (e[0] == user or e[2] == user)), None)
    if entry:
        uid, gid, home, name = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    elif user.isdigit():
        uid, gid, home, name = int(user), int(user), "/", None
    else:
        b.fail(f"unable to find user {user}: " + (passwd_problem or "no matching entries in passwd file"))
    if group:
        g = next((e for e in groups_db if len(e) >= 3 and (e[0] == group or e[2] == group)), None)
        if g:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            b.fail(f"unable to find group {group}: " + (group_problem or "no matching entries in group file"))
    supplementary = sorted({gid} | {int(e[2]) for e in groups_db
                                    if len(e) >= 4 and name and name in e[3].split(",")})
    return uid, gid, supplementary, home


def _find_executable(cmd: str, path: str, b: Builder) -> str:
    """Look ``cmd`` up as execvp would, with docker's messages and exit codes."""
    if "/" in cmd:
        if not os.path.exists(cmd):
            b.fail(f'exec: "{cmd}": stat {cmd}: no such file or directory', EXIT_NOT_FOUND)
        if os.path.isdir(cmd):
            b.fail(f'exec: "{cmd}": is a directory: permission denied', EXIT_CANNOT_EXEC)
        if not os.access(cmd, os.X_OK):
            b.fail(f'exec: "{cmd}": permission denied', EXIT_CANNOT_EXEC)
        return cmd
    denied = None
    for d in path.split(":"):
        candidate = os.path.join(d or ".", cmd)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied:
        b.fail(f'exec: "{cmd}": permission denied', EXIT_CANNOT_EXEC)
    b.fail(f'exec: "{cmd}": executable file not found in $PATH', EXIT_NOT_FOUND)


def _cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def _link_up(name: str) -> None:
    """Bring a network device up with SIOCSIFFLAGS (``ip link set NAME up``)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", name.encode(), 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", name.encode(), flags | IFF_UP))


def send(chan: socket.socket | None, message: dict) -> None:
    """Send one message to the supervisor over the start channel (if any)."""
    if chan is not None:
        try:
            chan.send(json.dumps(message).encode())
        except OSError:
            pass


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
