"""A container's network as the snapshot shows it (engine.netinfo), checked
against ``ip`` run inside the same namespace, and the rules of how it is read:
on a short-lived thread that is the only one to enter the namespace, with no
fork and no namespace created along the way."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import cl, needs_root
from waiting import wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


@pytest.fixture
def box():
    """A running container with --network none: loopback only."""
    cl("run", "-d", "--name", "netbox", "--network", "none", "lab", "sleep", "300", check=True)
    yield "netbox"
    cl("rm", "-f", "netbox")


def test_a_container_on_the_default_bridge_shows_its_veth_end_address_and_route():
    cl("run", "-d", "--name", "bridged", "lab", "sleep", "300", check=True)
    try:
        rec = client().inspect("bridged")
        settings = rec["NetworkSettings"]["Networks"]["bridge"]
        net = client().snapshot("bridged")["network"]
        eth0 = iface({"network": net}, "eth0")
        assert eth0["kind"] == "veth" and eth0["mac"] == settings["MacAddress"] and eth0["up"]
        assert eth0["link_netnsid"] is not None                  # its peer is in another namespace: the host's
        assert ("inet", settings["IPAddress"], settings["IPPrefixLen"], "eth0") in {
            (a["family"], a["address"], a["prefixlen"], a["interface"]) for a in net["addresses"]}
        default = next(r for r in net["routes"] if r["dst"] == "default")
        assert default["gateway"] == settings["Gateway"] and default["dev"] == "eth0"
        # the peer: the host end, by the index the container's eth0 names
        host_end = settings["HostInterface"]
        assert int(open(f"/sys/class/net/{host_end}/ifindex").read()) == eth0["link"]
    finally:
        cl("rm", "-f", "bridged")


def client():
    from engine.client import Client
    return Client()


def ip_json(pid: int, *args: str) -> list[dict]:
    """``ip -j ARGS`` inside the network namespace of ``pid`` (from the host, as root)."""
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", *args], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout or "[]")


def in_ns(pid: int, *args: str) -> None:
    subprocess.run(["nsenter", "-t", str(pid), "-n", *args], check=True, capture_output=True)


def snapshot_when(name: str, ready, timeout: float = 3.0) -> dict:
    """The first snapshot of ``name`` for which ``ready(snapshot)`` holds. The
    kernel settles a link's operstate a moment after ``ip link set`` returns
    (its linkwatch work), so a state change is waited for, within ``timeout``."""
    snaps = []

    def look() -> bool:
        snaps.append(client().snapshot(name))
        return ready(snaps[-1])
    try:
        wait_until(look, timeout=timeout)
    except AssertionError:
        pass                                # the caller's assertions say what is missing
    return snaps[-1]


def iface(snap: dict, name: str) -> dict:
    return next(i for i in snap["network"]["interfaces"] if i["name"] == name)


def test_a_container_with_network_none_has_only_loopback(box):
    snap = client().snapshot(box)
    net = snap["network"]
    assert net is not None, snap["network_error"]
    assert snap["network_error"] is None
    assert [(i["index"], i["name"], i["type"], i["up"], i["lower_up"]) for i in net["interfaces"]] == \
        [(1, "lo", "loopback", True, True)]
    assert {(a["family"], a["address"], a["prefixlen"], a["interface"]) for a in net["addresses"]} == \
        {("inet", "127.0.0.1", 8, "lo"), ("inet6", "::1", 128, "lo")}
    assert net["routes"] == []                       # nothing in the main table: no way out
    # The container's own namespace, not the host's, and the same one `ip` sees in there.
    assert net["entered"] is True
    assert net["inode"] == snap["namespaces"]["net"]["inode"] != os.stat("/proc/self/ns/net").st_ino
    assert snap["namespaces"]["net"]["shared_with_host"] is False
    ip_addrs = {(a["family"], a["local"], a["prefixlen"], link["ifname"])
                for link in ip_json(snap["pid"], "addr") for a in link["addr_info"]}
    assert ip_addrs == {(a["family"], a["address"], a["prefixlen"], a["interface"]) for a in net["addresses"]}
    assert json.loads(json.dumps(snap)) == snap


def test_new_interfaces_show_in_the_next_snapshot_and_in_compare(box):
    from engine import observe

    c = client()
    first = c.snapshot(box)
    pid = first["pid"]
    # Inside, even root cannot: Docker's default capabilities leave out CAP_NET_ADMIN.
    denied = cl("exec", box, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr
    # From the host, into the container's namespace: a veth pair, both ends inside.
    in_ns(pid, "ip", "link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1")
    in_ns(pid, "ip", "addr", "add", "10.77.0.5/24", "dev", "v0")
    in_ns(pid, "ip", "link", "set", "v0", "up")
    second = snapshot_when(box, lambda s: iface(s, "v0")["state"] == "lowerlayerdown")
    interfaces = {i["name"]: i for i in second["network"]["interfaces"]}
    v0, v1 = interfaces["v0"], interfaces["v1"]
    link = next(x for x in ip_json(pid, "link") if x["ifname"] == "v0")
    assert (v0["index"], v0["kind"], v0["mtu"], v0["mac"], v0["up"]) == \
        (link["ifindex"], "veth", 1400, link["address"], True)
    assert v0["link"] == v1["index"] and v1["link"] == v0["index"]      # each end names its peer
    assert v1["up"] is False and v0["lower_up"] is False and v0["state"] == "lowerlayerdown"
    assert {"family": "inet", "address": "10.77.0.5", "prefixlen": 24, "interface": "v0",
            "index": v0["index"], "scope": "global"} in second["network"]["addresses"]
    route = next(r for r in second["network"]["routes"] if r["dst"] == "10.77.0.0/24")
    assert (route["dev"], route["protocol"], route["scope"], route["gateway"]) == ("v0", "kernel", "link", None)
    assert [r["dst"] for r in second["network"]["routes"] if r["family"] == "inet"] == \
        [r["dst"] for r in ip_json(pid, "-4", "route", "show", "table", "main")]
    change = observe.compare(first, second)
    assert sorted(i["name"] for i in change["interfaces_added"]) == ["v0", "v1"]
    assert change["interfaces_removed"] == []

    in_ns(pid, "ip", "link", "set", "v1", "up")
    third = snapshot_when(box, lambda s: iface(s, "v0")["state"] == "up")
    v0 = iface(third, "v0")
    assert v0["lower_up"] is True and v0["state"] == "up" and iface(third, "v1")["up"] is True
    assert observe.compare(second, third)["interfaces_added"] == []

    in_ns(pid, "ip", "link", "del", "v0")            # takes its peer with it
    fourth = c.snapshot(box)
    change = observe.compare(third, fourth)
    assert sorted(i["name"] for i in change["interfaces_removed"]) == ["v0", "v1"]
    assert change["interfaces_added"] == []
    assert [i["name"] for i in fourth["network"]["interfaces"]] == ["lo"]


def _task_namespaces() -> dict[str, int]:
    """Every thread of this process -> the inode of its network namespace."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[tid] = os.stat(f"/proc/self/task/{tid}/ns/net").st_ino
        except FileNotFoundError:
            pass
    return out


def test_the_reading_thread_ends_and_the_callers_namespace_stays(box):
    from engine import netinfo

    c = client()
    c.snapshot(box)                                   # pyroute2 imported, caches warm
    own = os.stat("/proc/thread-self/ns/net").st_ino
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    # The tasks of this process before: a test runner may have threads Python's
    # threading module does not list (pytest-xdist's execnet starts its own).
    tasks_before = set(_task_namespaces())
    container_ns = None
    for _ in range(20):
        snap = c.snapshot(box)
        container_ns = snap["network"]["inode"]
        # Every thread of this process, a reader that is still on its way out
        # included, is in this process's own namespace once the snapshot is back.
        assert set(_task_namespaces().values()) == {own}
    assert container_ns != own
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
    assert threading.active_count() == threads
    # And soon no thread is left but those Python knows of (the last reader's
    # exit may take the kernel a moment after join() has returned).
    known = {str(t.native_id) for t in threading.enumerate()} | tasks_before
    wait_until(lambda: set(_task_namespaces()) <= known, timeout=10, interval=0.01,
               message=lambda: f"only the threads there before or known to Python {sorted(known)}, "
                               f"not {sorted(_task_namespaces())}")
    assert len(os.listdir("/proc/self/fd")) == fds   # every netlink socket was closed
    # A read of the caller's own namespace enters nothing (as --network host would).
    mine = netinfo.read(os.getpid())
    assert mine["entered"] is False and mine["inode"] == own
    # (The host ends of containers' veth pairs, vcl*, come and go with other tests' containers.)
    steady = lambda names: [n for n in names if not n.startswith("vcl")]   # noqa: E731
    assert steady(i["name"] for i in mine["interfaces"]) == steady(x["ifname"] for x in ip_json(os.getpid(), "link"))


def test_host_and_shared_networks_are_read_without_entering_or_twice_the_same():
    cl("run", "-d", "--name", "nethost", "--network", "host", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "netowner", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "netguest", "--network", "container:netowner", "lab", "sleep", "300", check=True)
    try:
        c = client()
        # The host's links change while other tests (another worker) run: compare with
        # `ip link` read just before and just after, when both readings agree.
        for _ in range(20):
            before = [x["ifname"] for x in ip_json(os.getpid(), "link")]
            host = c.snapshot("nethost")["network"]
            if before == [x["ifname"] for x in ip_json(os.getpid(), "link")]:
                break
        assert host["entered"] is False                   # the caller's own namespace: no setns
        assert host["inode"] == os.stat("/proc/self/ns/net").st_ino
        assert [i["name"] for i in host["interfaces"]] == before
        owner, guest = c.snapshot("netowner"), c.snapshot("netguest")
        assert guest["network"]["inode"] == owner["network"]["inode"] != host["inode"]
        assert guest["network"]["entered"] is True
        assert guest["namespaces"]["net"]["shared_with"] == ["netowner"]
    finally:
        cl("rm", "-f", "nethost", "netowner", "netguest")


def test_the_network_of_an_exited_container_is_none_with_a_reason():
    from engine import netinfo, observe

    cl("run", "-d", "--name", "netgone", "lab", "sleep", "300", check=True)
    try:
        c = client()
        record = c.inspect("netgone")
        cgroup = c._cgroup_of(record)
        cl("stop", "-t", "0", "netgone", check=True)
        # A snapshot taken from the record read while it ran: the process is gone meanwhile.
        snap = observe.snapshot(record, cgroup=cgroup)
        assert snap["processes"] == [] and snap["network"] is None
        assert "has exited" in snap["network_error"]
        with pytest.raises(netinfo.Unavailable, match="has exited"):
            netinfo.read(record["pid"])
        stopped = c.snapshot("netgone")
        assert stopped["network"] is None and stopped["network_error"] == "the container is not running"
    finally:
        cl("rm", "-f", "netgone")


def test_without_privileges_the_network_is_none_with_a_reason(box):
    """The same snapshot from a process with no capabilities (as a learner's
    own account would be, looking at root's containers): no exception."""
    import sys

    record = client().inspect(box)
    code = ("import json, sys\n"
            "from engine import observe\n"
            "snap = observe.snapshot(json.loads(sys.argv[1]))\n"
            "print(json.dumps([snap['network'], snap['network_error'], len(snap['processes'])]))\n")
    out = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", code,
                          json.dumps(record)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.returncode == 0, out.stderr
    network, reason, nprocs = json.loads(out.stdout)
    assert network is None and nprocs == 1
    assert "permission" in reason or "CAP_SYS_ADMIN" in reason


def test_a_reused_pid_is_not_mistaken_for_the_container():
    from engine import netinfo, observe

    mine = observe.process(os.getpid())
    with pytest.raises(netinfo.Unavailable, match="has exited"):
        netinfo.read(os.getpid(), start_ticks=mine["start_ticks"] + 1)
    network, reason = observe.read_network(os.getpid(), [dict(mine, start_ticks=mine["start_ticks"] + 1)])
    assert network is None and "has exited" in reason


def _net_namespaces() -> dict[int, int]:
    """Every network namespace with a process in it -> one such PID (lsns)."""
    out = subprocess.run(["lsns", "-t", "net", "-J", "-o", "NS,PID"], capture_output=True, text=True, check=True)
    return {int(n["ns"]): int(n["pid"]) for n in json.loads(out.stdout)["namespaces"]}


def _is_ours(pid: int) -> bool:
    """``pid`` is this process or one of its descendants."""
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                pid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError):
            return False
    return False


def test_reading_forks_nothing_and_creates_no_namespace(box):
    c = client()
    c.snapshot(box)
    forks = []
    os.register_at_fork(before=lambda: forks.append(1))   # os.fork(), as pyroute2's netns helpers do
    run_netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    before = _net_namespaces()
    for _ in range(20):
        assert c.snapshot(box)["network"] is not None
    after = _net_namespaces()
    assert forks == []
    assert (sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []) == run_netns
    # Other users of this machine may start containers meanwhile: only ours would count.
    assert [ns for ns, pid in after.items() if ns not in before and _is_ours(pid)] == []


def test_network_reads_in_a_row_give_the_same_answer(box):
    """(How long a read takes: bench/timings.py.)"""
    from engine import netinfo

    pid = client().inspect(box)["pid"]
    first = netinfo.read(pid)
    assert first["entered"] is True and [i["name"] for i in first["interfaces"]] == ["lo"]
    for _ in range(30):
        again = netinfo.read(pid)
        assert again["inode"] == first["inode"] and again["addresses"] == first["addresses"]
        assert [(i["index"], i["name"], i["up"]) for i in again["interfaces"]] == [(1, "lo", True)]
