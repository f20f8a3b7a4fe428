"""The stages that put the child in its own world: its cgroup, its namespaces.

``cgroup`` (join the container's control group), ``namespaces`` (new mount,
UTS, IPC and network namespaces, or another container's joined, and a time
namespace), ``cgroupns`` (rooted at the cgroup joined first), ``hostname``
and ``user`` (``--userns private``: root inside, an unprivileged range of ids
on the host). Mixed into :class:`~engine.runtime.builder.Builder`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct

from .. import syscalls as sc
from .spec import send

_NS_OPTION = {"mnt": "mount", "uts": "uts", "ipc": "ipc", "net": "net", "pid": "pid",
              "cgroup": "cgroup", "user": "user", "time": "time"}
_NS_TITLES = {"mnt": "mount", "uts": "UTS", "ipc": "IPC", "net": "network"}


def _link_up(name: str) -> None:
    """Bring a network device up with SIOCSIFFLAGS (``ip link set NAME up``)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", name.encode(), 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", name.encode(), flags | IFF_UP))


class NamespaceStages:
    """The cgroup and namespace stages of the :class:`~engine.runtime.builder.Builder`."""

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
            if s.pasta:
                self.ask_for_network()
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
            # Rootless: /proc/self of a process that is not dumpable belongs to the
            # host's root, out of this namespace's reach; dumpable for that one write
            # (nothing of the container runs yet to take advantage).
            if self.spec.rootless:
                self.k.prctl(sc.PR_SET_DUMPABLE, 1)
            try:
                with open("/proc/self/timens_offsets", "w") as f:
                    f.write(lines)
            finally:
                if self.spec.rootless:
                    self.k.prctl(sc.PR_SET_DUMPABLE, 0)
            fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.k.setns(fd, sc.CLONE_NEWTIME)
            finally:
                os.close(fd)
        except OSError as e:
            self.fail(f"time namespace: {os.strerror(e.errno)}")

    def ask_for_network(self) -> None:
        """Rootless: the namespace exists; the supervisor has pasta plug it in
        (an eth0, a route out, the published ports) before anything runs here."""
        reply = {}
        # /proc/self/ns of a process that is not dumpable belongs to the host's
        # root, which pasta (the user's) may not open: dumpable while it attaches
        # (nothing of the container runs yet to take advantage).
        self.k.prctl(sc.PR_SET_DUMPABLE, 1)
        if self.chan is not None:
            send(self.chan, {"netns": True})
            self.chan.settimeout(30)
            try:
                while True:
                    reply = json.loads(self.chan.recv(65536) or b"{}")
                    if "joined" in reply and self.joined is None and self.spec.join_by_parent:
                        self.joined = reply         # the cgroup's word, come first: kept for cgroupns
                        continue
                    break
            except (OSError, ValueError):
                reply = {}
            self.chan.settimeout(None)
        self.k.prctl(sc.PR_SET_DUMPABLE, 0)
        if not reply.get("net"):
            self.fail(reply.get("error") or "the supervisor did not plug the network namespace in")
        self.t.op("exec", reply.get("shell", "pasta --config-net $PID"), by="supervisor")

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

    def stage_hostname(self) -> None:
        if "uts" not in self.spec.new_ns:
            return                  # the host's UTS namespace (--uts host): its name stays
        self.begin("hostname", "Give the container its own hostname")
        self.t.op("sethostname", f"hostname {self.spec.hostname}", name=self.spec.hostname)
        self.k.sethostname(self.spec.hostname)
