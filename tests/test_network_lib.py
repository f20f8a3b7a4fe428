"""The network library (engine/network/) on its own, for real: network
namespaces made here stand in for containers; bridges, veth pairs and an
nftables table of the test's own are made and removed. Traffic stays inside
those namespaces and on loopback. After each test nothing of it is left:
no link, no namespace, no table, and IPv4 forwarding as it was."""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.container import process_start_time
from engine.network import NetworkError, Store, bridge, ipam, records, sweep
from engine.network import dns as netdns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, links, nftables"),
    pytest.mark.skipif(not (shutil.which("nft") and shutil.which("ip")), reason="needs nftables and iproute2"),
]

PY = sys.executable


def wait_until(condition, timeout: float = 10.0, what: str = "condition", pump=None):
    """Poll ``condition`` until it returns a truthy value; ``pump`` runs
    between polls (a DNS responder's loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if pump:
            pump(0.02)
        else:
            time.sleep(0.01)


def run(*cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def kernel_leftovers(store: Store, netns_names: list[str]) -> list[str]:
    links = run("ip", "-o", "link", "show").stdout
    mine = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()
            if store.owner in line or any(f" {n}:" in line or f" {n}@" in line for n in store.made_links)]
    tables = run("nft", "list", "tables").stdout
    namespaces = run("ip", "netns", "list").stdout
    return (mine + [f"table {store.table}" for t in tables.splitlines() if t.strip().endswith(store.table)]
            + [n for n in netns_names if n in namespaces])


@pytest.fixture
def store(tmp_path):
    """A data dir, an nft table and address pools of this test's own; checked clean afterwards."""
    with open(bridge.IP_FORWARD) as f:
        forward = f.read()
    third = secrets.randbelow(180) + 20          # 10.20-199: never the engine tests' 10.213 and 10.214
    pools = tuple(f"10.{third}.{n}.0/24" for n in range(0, 8))
    had_etc_netns = os.path.isdir("/etc/netns")
    s = Store(tmp_path / "net", table=f"cltest_{secrets.token_hex(3)}", pools=pools)
    s.made_netns: list[str] = []
    s.made_links: list[str] = []
    yield s
    try:
        sweep.sweep(s, alive=lambda att: False)
        for net in s.networks():
            bridge.remove_network(s, net)
            s.delete_network_record(net)
        sweep.sweep(s)
    finally:
        for name in s.made_netns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
        if not had_etc_netns and os.path.isdir("/etc/netns") and not os.listdir("/etc/netns"):
            os.rmdir("/etc/netns")
        with open(bridge.IP_FORWARD, "w") as f:
            f.write(forward)
    assert kernel_leftovers(s, s.made_netns) == []


def netns(store: Store) -> tuple[str, int]:
    """A new network namespace standing in for a container: (name, fd)."""
    name = f"clt-{secrets.token_hex(4)}"
    run("ip", "netns", "add", name)
    store.made_netns.append(name)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    return name, fd


def container(store: Store, net, name: str, **lease) -> tuple[str, records.Attachment]:
    """A namespace attached to ``net`` as container ``name``."""
    ns, fd = netns(store)
    att = ipam.lease(store, net, secrets.token_hex(32), name=name, **lease)
    try:
        bridge.attach(store, net, att, netns_fd=fd)
    finally:
        os.close(fd)
    return ns, att


def pump_until_exit(proc: subprocess.Popen, responders, timeout: float = 8) -> tuple[str, str]:
    """Serve DNS (a select loop, as the supervisor's) until ``proc`` exits."""
    selectables = [s for r in responders for s in r.selectables()]
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{proc.args} did not finish in {timeout} s; answered, refused: "
                                 f"{[(r.answered, r.refused) for r in responders]}")
        ready, _, _ = select.select(selectables, [], [], 0.05)
        for r in ready:
            r.on_readable()
        for r in responders:
            r.expire()
    out, err = proc.communicate()
    return out, err


# ---- two containers on one network ------------------------------------------------------------

def test_two_containers_ping_and_resolve_each_other(store):
    net = ipam.create_network(store, "lab")
    bridge.ensure_network(store, net)
    ns_a, a = container(store, net, "alpha", aliases=["db"])
    ns_b, b = container(store, net, "beta")
    assert a.address != b.address
    assert a.mac == records.mac_for(a.address) and a.mac.startswith("02:42:")

    inside = run("ip", "netns", "exec", ns_a, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{a.address}/{a.prefixlen}" in inside
    assert a.mac in run("ip", "netns", "exec", ns_a, "ip", "link", "show", "eth0").stdout
    assert f"default via {net.gateway} dev eth0" in run("ip", "netns", "exec", ns_a, "ip", "route").stdout
    assert records.mac_for(net.gateway) in run("ip", "link", "show", net.bridge).stdout   # fixed: see ensure_network
    host_end = run("ip", "-d", "link", "show", a.veth).stdout
    assert f"master {net.bridge}" in host_end and store.owner in host_end

    run("ip", "netns", "exec", ns_a, "ping", "-c", "1", "-W", "3", b.address)

    # Names: the container's resolv.conf and hosts, as `ip netns exec` bind-mounts them from /etc/netns/NAME.
    responder = netdns.DnsResponder(net.gateway, 53, names=netdns.names_for(store, net))
    try:
        for ns, att in ((ns_a, a), (ns_b, b)):
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True)
            (etc / "resolv.conf").write_text(netdns.resolv_conf(net, "search example.invalid\nnameserver 9.9.9.9\n"))
            (etc / "hosts").write_text(netdns.hosts_file(att, att.name))
        for name in ("beta", "BETA.", "db"):
            wanted = b.address if name.lower().startswith("beta") else a.address
            proc = subprocess.Popen(["ip", "netns", "exec", ns_b if name == "db" else ns_a,
                                     "getent", "ahostsv4", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            out, err = pump_until_exit(proc, [responder])
            assert proc.returncode == 0, err
            assert out.split()[0] == wanted, out
        proc = subprocess.Popen(["ip", "netns", "exec", ns_a, "ping", "-c", "1", "-W", "3", "beta"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = pump_until_exit(proc, [responder])
        assert proc.returncode == 0, out + err
        assert b.address in out
        # A container that leaves is no longer found once the names are updated.
        bridge.teardown(store, b)
        responder.set_names(netdns.names_for(store, net))
        proc = subprocess.Popen(["ip", "netns", "exec", ns_a, "getent", "ahostsv4", "beta"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pump_until_exit(proc, [responder])
        assert proc.returncode == 2            # getent: key not found
    finally:
        responder.close()
    assert responder.answered >= 4


def test_networks_are_isolated_and_internal_has_no_way_out(store):
    one = ipam.create_network(store, "one")
    two = ipam.create_network(store, "two")
    closed = ipam.create_network(store, "closed", internal=True)
    for net in (one, two, closed):
        bridge.ensure_network(store, net)
    ns_a, _a = container(store, one, "a")
    _ns_b, b = container(store, two, "b")
    ns_c, _c = container(store, closed, "c")
    # The host routes between the two bridges (forwarding is on), but our forward chain drops it.
    assert run("ip", "netns", "exec", ns_a, "ping", "-c", "1", "-W", "1", b.address, check=False).returncode != 0
    assert "default" not in run("ip", "netns", "exec", ns_c, "ip", "route").stdout
    listing = run("nft", "list", "table", "inet", store.table).stdout
    assert f'"{closed.bridge}"' in listing.split("set internal")[1].split("}")[0]
    assert f"nat-{closed.bridge}" not in listing.split("map masq_from")[1].split("}")[0]
    with pytest.raises(NetworkError, match="internal: it cannot publish ports"):
        ipam.lease(store, closed, "x" * 64, name="d", ports=[ipam.parse_publish("18081:80")])


# ---- published ports ----------------------------------------------------------------------------

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(8); print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    c, peer = s.accept(); c.sendall(f"hello {peer[0]}\\n".encode()); c.close()
"""


def _br_netfilter() -> bool:
    try:
        return Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
    except OSError:
        return False


def fetch(address: str, port: int, *, netns_name: str | None = None) -> str:
    if netns_name is None:
        with socket.create_connection((address, port), timeout=5) as c:
            return c.makefile().readline().strip()
    code = (f"import socket; c = socket.create_connection(({address!r}, {port}), timeout=5); "
            "print(c.makefile().readline().strip())")
    return run("ip", "netns", "exec", netns_name, PY, "-c", code).stdout.strip()


def test_published_port_reached_through_dnat_and_traffic_out_masqueraded(store):
    net = ipam.create_network(store, "web")
    bridge.ensure_network(store, net)
    host_port = ipam._free_port("", "tcp")
    ns, att = container(store, net, "web", ports=[ipam.parse_publish(f"{host_port}:80")])
    assert att.ports == [{"host_ip": "", "host_port": host_port, "container_port": 80, "proto": "tcp"}]
    neighbour_ns, neighbour = container(store, net, "neighbour")
    server = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", SERVER, "3"], stdout=subprocess.PIPE, text=True)
    client_ns = f"clt-{secrets.token_hex(4)}"
    host_if, peer_if = f"clt{secrets.token_hex(3)}", "eth0"
    store.made_links.append(host_if)
    try:
        assert server.stdout.readline().strip() == "ready"
        # From the host itself, to one of its own (non-loopback) addresses: the output chain's DNAT.
        assert fetch(net.gateway, host_port) == f"hello {net.gateway}"
        # Hairpin: a container on the same network, through the host's port. Routed, it is
        # masqueraded to the gateway (else the reply would come straight back from the wrong
        # address); with br_netfilter on, the bridge itself un-NATs the reply, no masquerade.
        seen = neighbour.address if _br_netfilter() else net.gateway
        assert fetch(net.gateway, host_port, netns_name=neighbour_ns) == f"hello {seen}"
        # From a "client host": a namespace on a veth of its own, through prerouting DNAT and forwarding.
        run("ip", "netns", "add", client_ns)
        store.made_netns.append(client_ns)
        link = ipaddress.IPv4Network(f"10.{secrets.randbelow(30) + 225}.{secrets.randbelow(250)}.0/30")
        outer, inner = (str(h) for h in link.hosts())
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", client_ns)
        run("ip", "addr", "add", f"{outer}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "-n", client_ns, "addr", "add", f"{inner}/30", "dev", peer_if)
        run("ip", "-n", client_ns, "link", "set", peer_if, "up")
        assert fetch(outer, host_port, netns_name=client_ns) == f"hello {inner}"
        server.wait(timeout=10)
        # The other way: out of the container to that "other host", masqueraded to the host's address there.
        outside = subprocess.Popen(["ip", "netns", "exec", client_ns, PY, "-c", SERVER, "1"], stdout=subprocess.PIPE,
                                   text=True)
        try:
            assert outside.stdout.readline().strip() == "ready"
            assert fetch(inner, 80, netns_name=ns) == f"hello {outer}"
        finally:
            outside.kill()
            outside.wait()
    finally:
        server.kill()
        server.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    listing = run("nft", "list", "map", "inet", store.table, "ports_any").stdout
    assert f"tcp . {host_port} : {att.address} . 80" in listing
    bridge.teardown(store, att)
    assert f"{host_port}" not in run("nft", "list", "map", "inet", store.table, "ports_any").stdout
    with pytest.raises(ConnectionRefusedError):
        fetch(net.gateway, host_port)


def test_a_port_in_use_is_refused_before_anything_is_made(store):
    net = ipam.create_network(store, "busy")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(NetworkError, match=rf"^host port 127.0.0.1:{port}/tcp is already in use on the host$"):
            ipam.lease(store, net, "a" * 64, name="a", ports=[ipam.parse_publish(f"127.0.0.1:{port}:80")])
    assert store.attachments() == []
    free = ipam._free_port("", "udp")
    ipam.lease(store, net, "b" * 64, name="b", ports=[ipam.parse_publish(f"{free}:53/udp")])
    with pytest.raises(NetworkError, match=f"host port {free}/udp is already published by a container"):
        ipam.lease(store, net, "c" * 64, name="c", ports=[ipam.parse_publish(f"127.0.0.1:{free}:53/udp")])


# ---- IPAM ---------------------------------------------------------------------------------------

def _self_ticks() -> int:
    stat = Path("/proc/self/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def _child(work) -> int:
    """Fork; the child runs ``work()`` and exits (or is killed by it). Returns the child's status."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_ipam_never_hands_out_an_address_twice_across_a_crash(store):
    net = ipam.create_network(store, "crash")
    first = ipam.lease(store, net, "1" * 64, name="one", pid=os.getpid(), start_ticks=_self_ticks())

    def lease_then_die():        # killed after the lease is on disk, before any veth
        ipam.lease(store, net, "2" * 64, name="two", pid=os.getpid(), start_ticks=_self_ticks())
        os.kill(os.getpid(), signal.SIGKILL)
    status = _child(lease_then_die)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    def die_while_writing():     # killed between choosing an address and its record
        def torn(path, data, durable=True):
            Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp").write_text("{")
            os.kill(os.getpid(), signal.SIGKILL)
        records.write_json_atomic = torn
        ipam.lease(store, net, "3" * 64, name="three", pid=os.getpid())
    assert os.WIFSIGNALED(_child(die_while_writing))

    dead = {a.name: a for a in store.attachments()}
    assert sorted(dead) == ["one", "two"]        # the torn write left no lease
    # The lock died with its holders; the lease of the dead one still holds its address.
    third = ipam.lease(store, net, "4" * 64, name="four", pid=os.getpid(), start_ticks=_self_ticks())
    assert len({first.address, dead["two"].address, third.address}) == 3
    removed = sweep.sweep(store)                  # the crash sweep: "two"'s process is dead
    assert [r.split()[0] for r in removed["attachments"]] == ["two"]
    assert len(removed["files"]) == 1
    again = ipam.lease(store, net, "5" * 64, name="five", pid=os.getpid(), start_ticks=_self_ticks())
    assert again.address == dead["two"].address  # freed by the sweep, and only then


def test_ipam_two_processes_leasing_at_once_never_collide(store):
    net = ipam.create_network(store, "busy", subnet=store.pools[0])
    code = ("import sys; from engine.network import Store, ipam\n"
            "s = Store(sys.argv[1], table=sys.argv[2]); net = s.network('busy')\n"
            "for i in range(25): ipam.lease(s, net, sys.argv[3] + '%062d' % i, name=sys.argv[3] + str(i))\n")
    procs = [subprocess.Popen([PY, "-c", code, str(store.root), store.table, tag], cwd=Path(__file__).parent.parent)
             for tag in ("p", "q")]
    for p in procs:
        assert p.wait(timeout=60) == 0
    addresses = [a.address for a in store.attachments()]
    assert len(addresses) == 50 and len(set(addresses)) == 50
    assert ipaddress.IPv4Address(net.gateway) not in {ipaddress.IPv4Address(a) for a in addresses}


def test_ipam_requests_and_bad_inputs_are_one_line_errors(store):
    net = ipam.create_network(store, "req", subnet="10.199.7.0/29")
    assert (net.gateway, net.bridge) == ("10.199.7.1", records.bridge_name(net.id))
    assert len(net.bridge) < records.IFNAMSIZ and len(records.veth_name("x", net.id)) < records.IFNAMSIZ
    got = ipam.lease(store, net, "a" * 64, name="a", ip="10.199.7.5")
    assert (got.address, got.mac) == ("10.199.7.5", "02:42:0a:c7:07:05")
    assert ipam.lease(store, net, "a" * 64, name="a").address == "10.199.7.5"     # idempotent
    cases = [
        (lambda: ipam.lease(store, net, "b" * 64, name="b", ip="10.199.7.5"), "already in use by container 'a'"),
        (lambda: ipam.lease(store, net, "b" * 64, name="b", ip="10.199.8.5"), "is not in network 'req'"),
        (lambda: ipam.lease(store, net, "b" * 64, name="b", ip="10.199.7.1"), "is reserved"),
        (lambda: ipam.lease(store, net, "b" * 64, name="b", ip="nope"), "invalid address 'nope'"),
        (lambda: ipam.create_network(store, "req"), "already exists"),
        (lambda: ipam.create_network(store, "x", subnet="10.199.7.0/28"), "overlaps network 'req'"),
        (lambda: ipam.create_network(store, "x", subnet="10.199.7.1/24"), "invalid subnet"),
        (lambda: ipam.create_network(store, "x y"), "invalid network name"),
        (lambda: ipam.parse_publish("80:"), "invalid port publication"),
        (lambda: ipam.parse_publish("1.2.3.400:80:80"), "invalid host address"),
        (lambda: ipam.parse_publish("70000:80"), "out of range"),
        (lambda: store.network("nosuch"), "network 'nosuch' not found"),
    ]
    for call, message in cases:
        with pytest.raises(NetworkError, match=message) as e:
            call()
        assert "\n" not in str(e.value)
    for i in range(4):                           # /29: .2-.6 minus .5 taken -> 4 more, then none
        ipam.lease(store, net, f"{i}" * 64, name=f"n{i}")
    with pytest.raises(NetworkError, match="no free address left in network 'req'"):
        ipam.lease(store, net, "f" * 64, name="full")
    assert ipam.parse_publish("8080") == {"host_ip": "", "host_port": 0, "container_port": 8080, "proto": "tcp"}
    assert ipam.parse_publish("127.0.0.1:5353:53/udp")["proto"] == "udp"


def test_a_new_subnet_avoids_the_hosts_routes_and_our_networks(store):
    pools = [ipaddress.IPv4Network(p) for p in store.pools]
    assert ipam.choose_subnet(store, routes=[pools[0]]) == pools[1]
    ipam.create_network(store, "first", subnet=str(pools[1]))
    assert ipam.choose_subnet(store, routes=[pools[0]]) == pools[2]
    # The host's real routes are read: a route of the host over the next pool pushes past it.
    dummy = f"clt{secrets.token_hex(3)}"
    store.made_links.append(dummy)
    run("ip", "link", "add", dummy, "type", "bridge")
    run("ip", "link", "set", dummy, "up")
    try:
        run("ip", "route", "add", str(pools[0]), "dev", dummy)
        assert ipam.create_network(store, "second").subnet == str(pools[2])
    finally:
        run("ip", "link", "del", dummy)
    with pytest.raises(NetworkError, match="no free subnet left"):
        ipam.choose_subnet(store, routes=pools)


# ---- DNS ----------------------------------------------------------------------------------------

def _ask(responder_addr, name: str, responders, rdtype: str = "A"):
    import dns.message
    import dns.query  # noqa: F401

    query = dns.message.make_query(name, rdtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(0)
        c.sendto(query.to_wire(), responder_addr)
        box = []

        def got():
            try:
                box.append(dns.message.from_wire(c.recv(4096)))
            except BlockingIOError:
                pass
            return box

        def pump(t):
            selectables = [s for r in responders for s in r.selectables()]
            for r in select.select(selectables, [], [], t)[0]:
                r.on_readable()
        wait_until(got, what=f"an answer for {name}", pump=pump)
    return box[0]


def test_dns_answers_names_forwards_the_rest_and_refuses_without_upstream(store):
    import dns.rcode

    upstream = netdns.DnsResponder("127.0.0.1", 0, names={"elsewhere.test": ["192.0.2.80"]})
    ours = netdns.DnsResponder("127.0.0.1", 0, names={"web": ["10.1.2.3"], "db": ["10.1.2.4"]},
                            upstreams=[upstream.address])
    lonely = netdns.DnsResponder("127.0.0.1", 0, names={})
    try:
        both = [ours, upstream]
        answer = _ask(ours.address, "WEB", both)
        assert answer.rcode() == dns.rcode.NOERROR and answer.answer[0].to_text().endswith("A 10.1.2.3")
        assert answer.answer[0].ttl == netdns.TTL
        assert _ask(ours.address, "web", both, "AAAA").answer == []     # known name, no IPv6: empty, not NXDOMAIN
        forwarded = _ask(ours.address, "elsewhere.test", both)
        assert forwarded.answer[0].to_text().endswith("A 192.0.2.80") and ours.forwarded == 1
        assert _ask(ours.address, "nowhere.test", both).rcode() == dns.rcode.REFUSED   # the upstream refused
        assert _ask(lonely.address, "anything.test", [lonely]).rcode() == dns.rcode.REFUSED
        ours.set_names({"db": ["10.1.2.4"]})
        assert _ask(ours.address, "web", both).rcode() == dns.rcode.REFUSED
        # Garbage is ignored, and the loop goes on.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.sendto(b"\x00garbage", ours.address)
        assert _ask(ours.address, "db", both).answer[0].to_text().endswith("A 10.1.2.4")
        # An upstream that never answers: SERVFAIL once the time is up.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        waiting = netdns.DnsResponder("127.0.0.1", 0, upstreams=[silent.getsockname()])
        try:
            import dns.message
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.sendto(dns.message.make_query("slow.test", "A").to_wire(), waiting.address)
                wait_until(lambda: (waiting.on_readable(), waiting.pending)[1], what="a pending question")
                waiting.expire(time.monotonic() + netdns.FORWARD_TIMEOUT + 1)
                c.settimeout(5)
                assert dns.message.from_wire(c.recv(4096)).rcode() == dns.rcode.SERVFAIL
        finally:
            waiting.close()
            silent.close()
    finally:
        for r in (upstream, ours, lonely):
            r.close()
    with pytest.raises(NetworkError, match="cannot listen on 127.0.0.1"):
        taken = netdns.DnsResponder("127.0.0.1", 0)
        try:
            netdns.DnsResponder("127.0.0.1", taken.address[1])
        finally:
            taken.close()


def test_the_default_network_is_made_once_and_resolves_no_names(store):
    first = ipam.default_network(store)
    assert (first.name, first.dns, first.subnet) == ("bridge", False, store.pools[0])
    assert ipam.default_network(store).id == first.id
    att = ipam.lease(store, first, "a" * 64, name="web")
    assert netdns.names_for(store, first) == {}
    assert netdns.resolv_conf(first, "") == f"nameserver {first.gateway}\n" and att.address.endswith(".2")


def test_importing_the_library_loads_neither_pyroute2_nor_dnspython():
    code = ("import sys, engine.network.bridge, engine.network.ipam, engine.network.dns, engine.network.sweep; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyroute2', 'dns'}))")
    assert run(PY, "-c", code).stdout.strip() == "[]"


def test_hosts_and_resolv_conf_as_docker_writes_them(store):
    net = ipam.create_network(store, "files")
    att = ipam.lease(store, net, "a" * 64, name="web", aliases=["www"])
    hosts = netdns.hosts_file(att, "a" * 12)
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and f"{att.address}\t{'a' * 12} web\n" in hosts
    resolv = netdns.resolv_conf(net, "# comment\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0\n")
    assert resolv == f"nameserver {net.gateway}\nsearch corp.example\noptions edns0\n"
    assert netdns.host_nameservers("nameserver 127.0.0.53\nnameserver ::1\n") == [("127.0.0.53", 53)]
    assert netdns.names_for(store, net) == {"web": [att.address], "www": [att.address], "a" * 12: [att.address]}
    net.dns = False
    assert netdns.names_for(store, net) == {}


# ---- teardown and the crash sweep -------------------------------------------------------------------

def test_teardown_twice_is_fine(store):
    net = ipam.create_network(store, "twice")
    bridge.ensure_network(store, net)
    bridge.ensure_network(store, net)                      # idempotent too
    ns, att = container(store, net, "x", ports=[ipam.parse_publish("0:80")])
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        bridge.attach(store, net, att, netns_fd=fd)                      # replayed: the pair is made anew
    finally:
        os.close(fd)
    assert run("ip", "-n", ns, "-o", "link", "show", "eth0").returncode == 0
    for _ in range(2):
        bridge.teardown(store, att)
        bridge.detach(store, att)
    assert store.attachments() == []
    assert run("ip", "link", "show", att.veth, check=False).returncode != 0
    other = ipam.lease(store, net, "9" * 64, name="user")
    with pytest.raises(NetworkError, match="^network 'twice' is in use by container 'user': stop it or disconnect"):
        bridge.destroy_network(store, "twice")
    ipam.release(store, other)
    bridge.destroy_network(store, "twice")
    bridge.remove_network(store, net)
    assert store.networks() == [] and bridge.nft_table(store.table) is None
    assert run("ip", "link", "show", net.bridge, check=False).returncode != 0


def test_sweep_removes_what_no_live_record_explains(store):
    keep = ipam.create_network(store, "keep")
    gone = ipam.create_network(store, "gone")
    for net in (keep, gone):
        bridge.ensure_network(store, net)
    ns_live, live = container(store, keep, "live", pid=os.getpid(), start_ticks=_self_ticks())
    # A container whose process died with its lease, veth and published port still there.
    dead_pid = os.fork()
    if dead_pid == 0:
        os._exit(0)
    dead_ticks = 1
    os.waitpid(dead_pid, 0)
    _ns_dead, dead = container(store, keep, "dead", pid=dead_pid, start_ticks=dead_ticks,
                               ports=[ipam.parse_publish("0:80")])
    # A network whose record went away with its bridge and chains still there.
    store.delete_network_record(gone)
    # Someone else's link with our prefix but not our mark: not ours, not touched.
    foreign = f"vcl{secrets.token_hex(4)}"
    extra = f"cl-{secrets.token_hex(4)}"
    store.made_links += [foreign, extra]
    run("ip", "link", "add", foreign, "type", "bridge")
    try:
        removed = sweep.sweep(store)
        assert [r.split()[0] for r in removed["attachments"]] == ["dead"]
        assert removed["links"] == [gone.bridge]
        assert f"chain nat-{gone.bridge}" in removed["nft"] and f"chain fwd-{gone.bridge}" in removed["nft"]
        assert run("ip", "link", "show", foreign).returncode == 0
        assert run("ip", "link", "show", dead.veth, check=False).returncode != 0
        assert run("ip", "link", "show", live.veth).returncode == 0
        listing = run("nft", "list", "table", "inet", store.table).stdout
        assert gone.bridge not in listing and keep.bridge in listing
        assert f"{dead.ports[0]['host_port']}" not in listing
        assert [a.name for a in store.attachments()] == ["live"]
        assert sweep.sweep(store) == {"attachments": [], "links": [], "nft": [], "files": []}
        # Everything gone: the sweep removes the table too.
        bridge.teardown(store, live)
        bridge.remove_network(store, keep)
        store.delete_network_record(keep)
        run("ip", "link", "add", extra, "type", "bridge")
        run("ip", "link", "set", extra, "alias", store.owner)
        bridge.nft(bridge.table_script(store.table))
        removed = sweep.sweep(store)
        assert removed["nft"] == [f"table inet {store.table}"] and removed["links"] == [extra]
    finally:
        run("ip", "link", "del", foreign)
        subprocess.run(["ip", "link", "del", extra], capture_output=True)
    assert ns_live


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53)); print("ready", flush=True)
data, peer = s.recvfrom(512); s.sendto(data.upper(), peer)
"""


def test_a_container_given_by_pid_with_a_udp_port_and_its_death(store):
    """The supervisor's way: the container is a process that made its own
    network namespace (here ``unshare -n``), attached by its PID; when it
    dies, its eth0 and so the whole veth pair go with it, and detach after
    that is a no-op (ENODEV ignored)."""
    net = ipam.create_network(store, "bypid")
    bridge.ensure_network(store, net)
    proc = subprocess.Popen(["unshare", "-n", PY, "-c", UDP_ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        att = ipam.lease(store, net, "d" * 64, name="udp", ports=[ipam.parse_publish("0:53/udp")],
                         pid=proc.pid, start_ticks=process_start_time(proc.pid))
        bridge.attach(store, net, att, pid=proc.pid)
        inside = run("nsenter", "-t", str(proc.pid), "-n", "ip", "-o", "-4", "addr", "show", "eth0").stdout
        assert f"{att.address}/{att.prefixlen}" in inside
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(5)
            c.sendto(b"ping", (net.gateway, att.ports[0]["host_port"]))
            assert c.recvfrom(512)[0] == b"PING"
        assert proc.wait(timeout=10) == 0
        # The kernel retires a dead namespace's devices on a work queue of its own: seconds on a busy machine.
        wait_until(lambda: run("ip", "link", "show", att.veth, check=False).returncode != 0, timeout=60,
                   what="the veth pair to go with the namespace")
        assert sweep.pid_alive(att) is False
        bridge.detach(store, att)                 # ENODEV: nothing to do, no error
        with pytest.raises(NetworkError, match=f"process {proc.pid} has exited"):
            bridge.attach(store, net, att, pid=proc.pid)
    finally:
        proc.kill()
        proc.wait()


# ---- the rtnetlink client (engine/network/rtnl.py) on its own -----------------------------------------

def _open_fds() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:            # the listing's own fd
            pass
    return out


def _thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _ip_json(*args: str, netns_name: str | None = None) -> list[dict]:
    import json
    cmd = ["ip", "-j", *(["-n", netns_name] if netns_name else []), *args]
    return json.loads(run(*cmd).stdout or "[]")


def test_rtnl_errors_carry_the_kernels_errno(store):
    from engine.network.rtnl import Rtnl

    name = f"clt{secrets.token_hex(4)}"
    store.made_links.append(name)
    fds = _open_fds()
    with Rtnl() as rt:
        assert rt.link_index("lo") == 1
        assert rt.link_index(name) is None                      # ENODEV: no such link, not an error
        for request in (lambda: rt.delete_link(name), lambda: rt.set_link(name=name, up=True),
                        lambda: rt.add_address(2 ** 31 - 1, "10.99.0.1", 24)):
            with pytest.raises(OSError) as caught:
                request()
            assert caught.value.errno == errno.ENODEV
            assert str(caught.value).startswith("[Errno 19] No such device")
        rt.add_link(name, "bridge", address="02:42:0a:63:00:01")
        try:
            with pytest.raises(FileExistsError) as caught:          # a second link of that name
                rt.add_link(name, "bridge")
            assert caught.value.errno == errno.EEXIST
            index = rt.link_index(name)
            assert index == int(Path(f"/sys/class/net/{name}/ifindex").read_text())
            rt.set_link(index, up=True, alias="a bridge of the test")
            rt.add_address(index, "10.99.0.1", 24)
            with pytest.raises(FileExistsError):
                rt.add_address(index, "10.99.0.1", 24)
            [link] = _ip_json("-d", "addr", "show", name)
            assert link["address"] == "02:42:0a:63:00:01" and link["ifalias"] == "a bridge of the test"
            assert "UP" in link["flags"] and link["linkinfo"]["info_kind"] == "bridge"
            assert [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"] == \
                [("10.99.0.1", 24)]
        finally:
            rt.delete_link(name)
        assert rt.link_index(name) is None
    assert _open_fds() == fds


def test_rtnl_veth_peer_lands_in_the_namespace_asked_with_its_name_and_mac(store):
    from engine.network.rtnl import Rtnl

    ns, fd = netns(store)
    host_end, master = f"clt{secrets.token_hex(4)}", f"clt{secrets.token_hex(4)}"
    store.made_links += [host_end, master]
    home = _thread_netns()
    fds = _open_fds()
    try:
        with Rtnl() as host:
            host.add_link(master, "bridge")
            bridge_index = host.link_index(master)
            host.add_veth(host_end, peer="eth0", peer_address="02:42:0a:63:00:02", peer_netns_fd=fd,
                          master=bridge_index, up=True)
            with pytest.raises(FileExistsError):                   # the same pair again
                host.add_veth(host_end, peer="eth1", peer_address="02:42:0a:63:00:03", peer_netns_fd=fd)
            [end] = _ip_json("-d", "link", "show", host_end)
            assert end["master"] == master and "UP" in end["flags"] and "link_netnsid" in end
            assert end["linkinfo"]["info_kind"] == "veth"
            [eth0] = _ip_json("-d", "link", "show", "eth0", netns_name=ns)
            assert eth0["address"] == "02:42:0a:63:00:02" and eth0["linkinfo"]["info_kind"] == "veth"
            assert eth0["link_index"] == end["ifindex"] and end["link_index"] == eth0["ifindex"]
            assert [n["ifname"] for n in _ip_json("link", netns_name=ns)] == ["lo", "eth0"]   # no eth1
            # Inside: a socket made in the namespace, used from this thread in its own.
            inside = bridge._in_netns(fd, Rtnl)
            assert _thread_netns() == home
            with inside:
                assert inside.link_index(host_end) is None           # the host's links are not seen there
                inside.set_link(1, up=True)
                index = inside.link_index("eth0")
                assert index == eth0["ifindex"]
                inside.add_address(index, "10.99.1.2", 24)
                inside.set_link(index, up=True)
                inside.add_default_route("10.99.1.1", index)
                with pytest.raises(FileExistsError):
                    inside.add_default_route("10.99.1.1", index)
                with pytest.raises(OSError) as caught:               # a gateway off every subnet there
                    inside.add_default_route("10.98.0.1", index)
                assert caught.value.errno == errno.ENETUNREACH
            addrs = {(link["ifname"], a["local"], a["prefixlen"]) for link in _ip_json("addr", netns_name=ns)
                     for a in link["addr_info"] if a["family"] == "inet"}
            assert addrs == {("lo", "127.0.0.1", 8), ("eth0", "10.99.1.2", 24)}
            routes = _ip_json("route", "show", "default", netns_name=ns)
            assert [(r["gateway"], r["dev"], r["protocol"]) for r in routes] == [("10.99.1.1", "eth0", "static")]
            assert run("ip", "-n", ns, "link", "show", "eth0").stdout.count(",UP") == 1
            host.delete_link(host_end)                              # one end deletes both
            assert host.link_index(host_end) is None
            assert [n["ifname"] for n in _ip_json("link", netns_name=ns)] == ["lo"]
            host.delete_link(master)
    finally:
        os.close(fd)
        for name in (host_end, master):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    assert _open_fds() == {k: v for k, v in fds.items() if k != str(fd)}


def test_attach_failing_inside_deletes_the_pair_and_leaks_nothing(store):
    """The container's namespace already has a default route: the route
    request fails (EEXIST), attach says so in one line, the pair is deleted,
    the calling thread is back in its own namespace and no fd is left open."""
    net = ipam.create_network(store, "fails")
    bridge.ensure_network(store, net)
    ns, fd = netns(store)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "-n", ns, "route", "add", "default", "dev", "lo")
    att = ipam.lease(store, net, "f" * 64, name="fails")
    home, fds = _thread_netns(), _open_fds()
    try:
        with pytest.raises(NetworkError, match=r"^could not configure eth0 in 'fails': \[Errno 17\] File exists"):
            bridge.attach(store, net, att, netns_fd=fd)
        assert _thread_netns() == home
        assert _open_fds() == fds
        assert run("ip", "link", "show", att.veth, check=False).returncode != 0
        assert [n["ifname"] for n in _ip_json("link", netns_name=ns)] == ["lo"]
        # The route gone, the same attachment goes in; a leftover pair of its name is made anew.
        run("ip", "-n", ns, "route", "del", "default")
        bridge.attach(store, net, att, netns_fd=fd)
        first = _ip_json("link", "show", att.veth)[0]["ifindex"]
        bridge.attach(store, net, att, netns_fd=fd)
        assert _ip_json("link", "show", att.veth)[0]["ifindex"] != first
        assert _open_fds() == fds and _thread_netns() == home
    finally:
        os.close(fd)
    bridge.teardown(store, att)
    assert run("ip", "link", "show", att.veth, check=False).returncode != 0
    bridge.remove_network(store, net)                           # the bridge gone: said so, nothing made
    late = ipam.lease(store, net, "e" * 64, name="late")
    with pytest.raises(NetworkError, match=f"^bridge {net.bridge} of network 'fails' is missing"):
        bridge.attach(store, net, late, pid=os.getpid())
    assert run("ip", "link", "show", late.veth, check=False).returncode != 0
    assert _open_fds() == {k: v for k, v in fds.items() if k != str(fd)}


def test_an_unreadable_attachment_record_is_swept_and_frees_nothing_else(store):
    net = ipam.create_network(store, "torn")
    att = ipam.lease(store, net, "c" * 64, name="kept")
    torn = store.attachments_dir / f"{'d' * 64}.{net.id[:8]}.json"
    torn.write_text("")                                    # as a power cut may leave it
    assert [a.name for a in store.attachments()] == ["kept"]
    assert [a.name for a in store.attachments(container_id="c" * 64)] == ["kept"]
    assert store.attachments(container_id="d" * 64) == []
    removed = sweep.sweep(store, alive=lambda a: True)
    assert str(torn) in removed["files"] and not torn.exists()
    assert [a.name for a in store.attachments()] == ["kept"]
    ipam.release(store, att)
    store.delete_network_record(net)
