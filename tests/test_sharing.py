"""Sharing namespaces on purpose: --pid, --ipc, --uts, --network, --userns, --timens.

Each test starts real containers and reads the answer from the kernel: the
namespace inodes (through the observation API and /proc), what a process
inside can see, and which uid the host sees.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from conftest import cgroup_dirs, cl, needs_root
from waiting import child_commands, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


def client():
    from engine.client import Client
    return Client()


@pytest.fixture
def box():
    """A running container named box with a recognisable process."""
    cl("run", "-d", "--name", "box", "lab", "sh", "-c", "sleep 1234 & wait", check=True)
    pid = client().inspect("box")["pid"]
    wait_until(lambda: child_commands(pid) == [["sleep", "1234"]], message="box's sleep 1234")
    yield "box"
    cl("rm", "-f", "box")


def _ns(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def test_pid_container_shares_the_pid_namespace_and_sees_its_processes(box):
    out = cl("run", "--rm", "--pid", "container:box", "lab", "ps", "-e", "-o", "pid,args", check=True).stdout
    assert "sleep 1234" in out                       # box's process, seen from another container
    assert any(line.split()[:2] == ["1", "sh"] for line in out.splitlines())   # box's PID 1
    cl("run", "-d", "--name", "guest", "--pid", "container:box", "lab", "sleep", "300", check=True)
    try:
        snap = client().snapshot("guest")
        assert snap["namespaces"]["pid"]["shared_with"] == ["box"]
        assert snap["namespaces"]["net"]["shared_with"] == []       # only the pid namespace is shared
        assert snap["processes"][0]["pid"] != 1                      # box's sh is PID 1 there
    finally:
        cl("rm", "-f", "guest")
    own = cl("run", "--rm", "lab", "ps", "-e", "-o", "args", check=True).stdout
    assert "sleep 1234" not in own                   # a private pid namespace does not


def test_removing_the_pid_owner_ends_its_guests_without_hanging(box):
    cl("run", "-d", "--name", "guest", "--pid", "container:box", "lab", "sleep", "300", check=True)
    started = time.monotonic()
    assert cl("rm", "-f", "box", timeout=30).returncode == 0
    assert time.monotonic() - started < 10
    state = client().inspect("guest")
    assert state["status"] == "exited" and state["exit_code"] == 137
    cl("rm", "-f", "guest", check=True)
    assert cgroup_dirs() == []


def test_pid_host_sees_the_hosts_processes():
    me = os.getpid()
    out = cl("run", "--rm", "--pid", "host", "lab", "ps", "-e", "-o", "pid", check=True).stdout
    assert str(me) in out.split()
    cl("run", "-d", "--name", "hostpid", "--pid", "host", "lab", "sleep", "300", check=True)
    try:
        snap = client().snapshot("hostpid")
        assert snap["namespaces"]["pid"]["inode"] == _ns('self', "pid")
        assert snap["processes"][0]["pid"] == snap["processes"][0]["host_pid"]
    finally:
        cl("rm", "-f", "hostpid")


def test_network_none_host_and_container(box):
    none = cl("run", "--rm", "--network", "none", "lab", "sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net",
              check=True).stdout.split()
    assert none[:-1] == ["lo"] and none[-1] != f"net:[{_ns('self', 'net')}]"
    bridged = cl("run", "--rm", "lab", "sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net",
                 check=True).stdout.split()
    assert bridged[:-1] == ["eth0", "lo"] and bridged[-1] != f"net:[{_ns('self', 'net')}]"
    host = cl("run", "--rm", "--network", "host", "lab", "sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net",
              check=True).stdout.split()
    # (host ends of veth pairs, vcl*, come and go with other tests' containers meanwhile)
    steady = lambda names: {n for n in names if not n.startswith("vcl")}   # noqa: E731
    assert host[-1] == f"net:[{_ns('self', 'net')}]" and steady(host[:-1]) == steady(os.listdir("/sys/class/net"))
    # A service listening in box is reachable from a container sharing its network namespace.
    box_net = client().inspect("box")["namespaces"]["net"]["container"]
    joined = cl("run", "--rm", "--net", "container:box", "lab", "readlink", "/proc/self/ns/net", check=True).stdout
    assert joined.strip() == f"net:[{box_net}]"


def test_uts_host_keeps_the_hosts_name_and_refuses_a_hostname():
    assert cl("run", "--rm", "--uts", "host", "lab", "hostname", check=True).stdout.strip() == socket.gethostname()
    assert cl("run", "--rm", "lab", "hostname", check=True).stdout.strip() != socket.gethostname()
    bad = cl("run", "--rm", "--uts", "host", "-h", "other", "lab", "true")
    assert bad.returncode == 125 and "conflicting options" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert socket.gethostname() != "other"


def test_ipc_container_sees_the_same_system_v_objects(box):
    key = cl("exec", "box", "ipcmk", "-Q", check=True).stdout.split()[-1]     # "Message queue id: N"
    shared = cl("run", "--rm", "--ipc", "container:box", "lab", "ipcs", "-q", check=True).stdout
    private = cl("run", "--rm", "lab", "ipcs", "-q", check=True).stdout
    rows = lambda out: [line.split()[1] for line in out.splitlines() if line.startswith("0x")]  # noqa: E731
    assert key in rows(shared) and rows(private) == []
    hostipc = cl("run", "--rm", "--ipc", "host", "lab", "readlink", "/proc/self/ns/ipc", check=True).stdout
    assert hostipc.strip() == f"ipc:[{_ns('self', 'ipc')}]"


def test_userns_private_maps_root_inside_to_an_unprivileged_host_uid():
    from engine.images.shift import subordinate_range

    base, size = subordinate_range()
    assert base >= 1000 and size == 65536
    cl("run", "-d", "--name", "mapped", "--userns", "private", "lab", "sleep", "300", check=True)
    try:
        rec = client().inspect("mapped")
        with open(f"/proc/{rec['pid']}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(base)] * 4                   # the host sees an unprivileged user
        inside = cl("exec", "mapped", "sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /etc; "
                    "touch /etc/written && echo wrote", check=True).stdout.split()
        assert inside == ["0", "0", str(base), str(size), "0", "wrote"]   # root inside, owning its files
        ns = client().snapshot("mapped")["namespaces"]["user"]
        assert ns["shared_with_host"] is False
        assert rec["namespaces"]["user"]["shared"] is False
        # The container's root is nobody to the host's files.
        denied = cl("run", "--rm", "--userns", "private", "-v", "/root:/hostroot:ro", "lab", "ls", "/hostroot")
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
    finally:
        cl("rm", "-f", "mapped")


def test_timens_moves_the_containers_clocks():
    uptime = float(cl("run", "--rm", "--timens", "lab", "cat", "/proc/uptime", check=True).stdout.split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert uptime < 10 < host
    offsets = cl("run", "--rm", "--clock-offset", "monotonic=86400", "lab", "cat", "/proc/self/timens_offsets",
                 check=True).stdout.split()
    assert offsets[:3] == ["monotonic", "86400", "0"]
    assert cl("run", "--rm", "lab", "readlink", "/proc/self/ns/time", check=True).stdout.strip() \
        == f"time:[{_ns('self', 'time')}]"
    bad = cl("run", "--rm", "--clock-offset", "realtime=5", "lab", "true")
    assert bad.returncode == 125 and "invalid clock offset" in bad.stderr and len(bad.stderr.splitlines()) == 1


@pytest.mark.parametrize("flags,message", [
    (["--pid", "container:nosuch"], "no such container"),
    (["--network", "container:nosuch"], "no such container"),
    (["--ipc", "banana"], "invalid --ipc value"),
    (["--network", "no-such-network"], "network no-such-network not found"),
])
def test_bad_sharing_is_refused_before_anything_is_made(flags, message):
    before = client().ps(all=True)
    proc = cl("run", *flags, "lab", "true")
    assert proc.returncode == 125 and message in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert client().ps(all=True) == before and cgroup_dirs() == []


def test_snapshot_reads_the_hostname_the_container_sees():
    cl("run", "-d", "--name", "named", "-h", "inside-name", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "hostuts", "--uts", "host", "lab", "sleep", "300", check=True)
    try:
        before = os.stat("/proc/thread-self/ns/uts").st_ino
        assert client().snapshot("named", network=False)["hostname"] == "inside-name"
        assert client().snapshot("hostuts", network=False)["hostname"] == socket.gethostname()
        assert os.stat("/proc/thread-self/ns/uts").st_ino == before and socket.gethostname() != "inside-name"
    finally:
        cl("rm", "-f", "named", "hostuts")
