"""Networks, for real: containers on the default bridge and on user networks,
reaching each other by name, published ports reached from the host and from
a "client host" (a network namespace this test makes, on a veth of its own),
leases that survive a supervisor killed with SIGKILL.

No traffic leaves the machine: every address is the session's own subnets
(10.213.0.0/16, see conftest), a client namespace made here (10.214.0.0/16)
or loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, cl, needs_root, settle
from waiting import wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image"),
              pytest.mark.skipif(not shutil.which("nft"), reason="needs nftables")]

WEB = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"
ECHO = "exec nc -ll -p 7000 -e cat"

UDPECHO = r"""
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    char buf[2048];
    for (;;) {
        struct sockaddr_in from; socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n > 0) sendto(s, buf, n, 0, (struct sockaddr *)&from, len);
    }
}
"""


def ok(*args: str, timeout: float = 60) -> str:
    return cl(*args, timeout=timeout, check=True).stdout


def inspect(name: str) -> dict:
    return json.loads(ok("inspect", name))[0]


def address(name: str) -> str:
    return inspect(name)["NetworkSettings"]["IPAddress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def store_dir() -> Path:
    return ROOT / "lib" / "network"


def attachments() -> list[dict]:
    d = store_dir() / "attachments"
    return [json.loads(p.read_text()) for p in sorted(d.glob("[!.]*.json"))] if d.exists() else []


def our_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if " vcl" in line or " cl-" in line]


def table() -> str:
    from engine.supervisor.networks import _table_for

    return _table_for(ROOT / "lib")


def nft_listing() -> str:
    return subprocess.run(["nft", "list", "table", "inet", table()], capture_output=True, text=True).stdout


@pytest.fixture
def names():
    """Container and network names of this test; removed afterwards, checked clean."""
    made: dict[str, list[str]] = {"containers": [], "networks": []}
    tag = secrets.token_hex(3)

    def name(kind: str, base: str) -> str:
        n = f"{base}-{tag}"
        made[kind].append(n)
        return n
    yield name
    for c in made["containers"]:
        cl("rm", "-f", c)
    for n in made["networks"]:
        cl("network", "rm", n)
    settle()
    mine = [a for a in attachments() if any(a["name"] == c for c in made["containers"])]
    assert not mine, f"leases left behind: {mine}"


@pytest.fixture
def client_host():
    """A "client host": a network namespace with a veth to the host
    (10.214.N.1 on the host side, .2 inside, default route via the host)."""
    n = secrets.randbelow(250) + 1
    ns, host_end = f"clt-client-{secrets.token_hex(3)}", f"vclt{secrets.token_hex(3)}"
    host_ip, inside_ip = f"10.214.{n}.1", f"10.214.{n}.2"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)   # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        run("ip", "-n", ns, "addr", "add", f"{inside_ip}/30", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "route", "add", "default", "via", host_ip)
        yield {"ns": ns, "host_ip": host_ip, "ip": inside_ip}
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns: str, code: str, timeout: float = 20) -> str:
    """Run Python ``code`` in network namespace ``ns``; its stdout."""
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def http_get(host: str, port: int, timeout: float = 5) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def http_get_code(host: str, port: int) -> str:
    return (f"import socket\ns=socket.create_connection(({host!r},{port}),timeout=5)\n"
            f"s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\nd=b''\n"
            "while (c:=s.recv(65536)): d+=c\nprint(d.decode())")


def serving(host: str, port: int) -> bool:
    try:
        return "hello from" in http_get(host, port, timeout=2)
    except OSError:
        return False


# ---- the default bridge -----------------------------------------------------------------------

def test_a_container_on_the_default_bridge_has_an_address_a_route_and_its_own_hosts_file():
    out = ok("run", "--rm", "--hostname", "box", "lab", "sh", "-c",
             "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; ping -c1 -W3 $(ip route | "
             "awk '/default/ {print $3}') >/dev/null && echo GATEWAY-OK")
    addr = out.split("inet ")[1].split("/")[0]
    assert addr.startswith("10.213."), out
    assert "default via 10.213." in out
    assert f"{addr}\tbox" in out                                 # /etc/hosts: its own name and address
    assert "127.0.0.1\tlocalhost" in out
    assert "nameserver 10.213." in out                           # the network's name service
    assert "GATEWAY-OK" in out


def test_network_none_keeps_a_loopback_only():
    out = ok("run", "--rm", "--network", "none", "lab", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]


def test_thirty_parallel_starts_never_get_the_same_address(names):
    cs = [names("containers", f"par{i}") for i in range(30)]
    with ThreadPoolExecutor(10) as pool:
        done = list(pool.map(lambda n: cl("run", "-d", "--name", n, "lab", "sleep", "120", timeout=120), cs))
    assert all(d.returncode == 0 for d in done), [d.stderr for d in done if d.returncode]
    addresses = [address(n) for n in cs]
    assert len(set(addresses)) == 30 and all(a.startswith("10.213.") for a in addresses), addresses
    macs = {inspect(n)["NetworkSettings"]["MacAddress"] for n in cs}
    assert len(macs) == 30
    ok("rm", "-f", *cs, timeout=120)
    settle()
    vcl = [link for link in our_links() if link.startswith("vcl")]
    leftovers = [a for a in attachments() if a["name"] in cs]
    assert not leftovers and not [v for v in vcl if any(v == a.get("veth") for a in leftovers)]


# ---- user networks ----------------------------------------------------------------------------

def test_two_containers_on_a_user_network_reach_each_other_by_name_and_alias(names):
    net, other = names("networks", "lan"), names("networks", "elsewhere")
    web, client, stranger = names("containers", "web"), names("containers", "cli"), names("containers", "far")
    ok("network", "create", net)
    ok("network", "create", "--subnet", "10.213.250.0/24", other)
    ok("run", "-d", "--name", web, "--network", net, "--network-alias", "echo-svc", "lab", "sh", "-c", ECHO)
    ok("run", "-d", "--name", client, "--network", net, "lab", "sleep", "120")
    ok("run", "-d", "--name", stranger, "--network", other, "lab", "sleep", "120")
    wait_until(lambda: cl("exec", client, "sh", "-c", f"echo ping | nc -w 2 {web} 7000").stdout.strip() == "ping",
               timeout=15, message="the echo server, by name")
    out = ok("exec", client, "sh", "-c", f"ping -c1 -W3 {web} && ping -c1 -W3 echo-svc && "
             "echo over-tcp | nc -w 3 echo-svc 7000")
    assert f"({address(web)})" in out and out.strip().endswith("over-tcp")
    inspected = json.loads(ok("network", "inspect", net))[0]
    assert {c["Name"] for c in inspected["Containers"].values()} == {web, client}
    assert inspected["IPAM"]["Config"][0]["Subnet"] != "10.213.250.0/24"
    # another network: neither the name nor the address is reachable
    far = cl("exec", stranger, "sh", "-c", f"ping -c1 -W2 {address(web)}")
    assert far.returncode != 0
    assert cl("exec", stranger, "nslookup", web).returncode != 0
    assert address(stranger).startswith("10.213.250.")
    # network rm is refused while containers are on it
    refused = cl("network", "rm", net)
    assert refused.returncode == 1 and "in use" in refused.stderr
    # disconnect: the name no longer resolves, the peer is out of reach
    web_ip = address(web)
    ok("network", "disconnect", net, web)
    assert cl("exec", client, "ping", "-c1", "-W2", web).returncode != 0
    assert "bad address" in cl("exec", client, "ping", "-c1", "-W2", web).stderr.lower() or \
        cl("exec", client, "nslookup", web).returncode != 0
    assert cl("exec", client, "ping", "-c1", "-W2", web_ip).returncode != 0
    # connect it again, as eth1 of a container that is elsewhere too
    reply = ok("network", "connect", "--alias", "again", net, stranger)
    assert reply == ""
    out = ok("exec", stranger, "sh", "-c", "ip -o -4 addr show eth1; ip route")
    assert "eth1" in out and out.count("default") == 1
    assert ok("exec", client, "ping", "-c1", "-W3", "again")


def test_an_internal_network_has_no_way_out_and_cannot_publish(names):
    net = names("networks", "inner")
    ok("network", "create", "--internal", net)
    out = ok("run", "--rm", "--network", net, "lab", "ip", "route")
    assert "default" not in out and "10.213." in out
    refused = cl("run", "--rm", "--network", net, "-p", f"{free_port()}:80", "lab", "true")
    assert refused.returncode == 125 and "internal" in refused.stderr


def test_network_verbs_refuse_bad_input_in_one_line(names):
    net = names("networks", "bad")
    for args, words in [
        (("network", "create", "--subnet", "10.0.0.1/33", net), "invalid subnet"),
        (("network", "create", "bridge"), "predefined"),
        (("network", "rm", "bridge"), "pre-defined"),
        (("network", "rm", "no-such-net"), "not found"),
        (("run", "--rm", "--network", "no-such-net", "lab", "true"), "network no-such-net not found"),
        (("run", "--rm", "--ip", "10.213.0.9", "lab", "true"), "user networks only"),
        (("run", "--rm", "--network", "none", "-p", "80", "lab", "true"), "cannot be published"),
        (("run", "--rm", "-p", "99999:80", "lab", "true"), "out of range"),
        (("run", "--rm", "-p", "8o:80", "lab", "true"), "invalid port publication"),
    ]:
        done = cl(*args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr
    ok("network", "create", "--subnet", "10.213.251.0/24", net)
    dup = cl("network", "create", net)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    outside = cl("run", "--rm", "--network", net, "--ip", "10.99.0.5", "lab", "true")
    assert outside.returncode == 125 and "is not in network" in outside.stderr
    fixed = ok("run", "--rm", "--network", net, "--ip", "10.213.251.77", "lab", "ip", "-4", "-o", "addr", "show",
               "eth0")
    assert "10.213.251.77/24" in fixed
    assert net in ok("network", "prune").split()
    assert net not in ok("network", "ls", "-q").split()


# ---- published ports --------------------------------------------------------------------------

def test_a_published_port_is_reached_from_the_host_and_from_another_host(names, client_host):
    web = names("containers", "pub")
    port = free_port()
    ok("run", "-d", "--name", web, "-p", f"{port}:80", "lab", "sh", "-c", WEB)
    assert ok("port", web).strip() == f"80/tcp -> 0.0.0.0:{port}"
    assert f"0.0.0.0:{port}->80/tcp" in ok("ps")
    # the host itself, at one of its own addresses (DNAT in the output hook)
    wait_until(lambda: serving(client_host["host_ip"], port), timeout=15, message="the published port")
    # another host (the client namespace), through the host's address (DNAT in prerouting)
    page = in_ns(client_host["ns"], http_get_code(client_host["host_ip"], port))
    assert "hello from" in page
    # the host's loopback, through the userland proxy (no DNAT can take 127.0.0.1 to a container)
    assert "hello from" in http_get("127.0.0.1", port)
    ports = inspect(web)["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    cl("rm", "-f", web)
    settle()
    assert f"{port}" not in nft_listing()
    with pytest.raises(OSError):
        http_get(client_host["host_ip"], port, timeout=2)


def test_a_port_published_on_loopback_only_is_reached_there_and_nowhere_else(names, client_host):
    web = names("containers", "local")
    port = free_port()
    ok("run", "-d", "--name", web, "-p", f"127.0.0.1:{port}:80", "lab", "sh", "-c", WEB)
    assert ok("port", web, "80").strip() == f"127.0.0.1:{port}"
    wait_until(lambda: serving("127.0.0.1", port), timeout=15, message="the loopback port")
    with pytest.raises(OSError):
        http_get(client_host["host_ip"], port, timeout=2)          # not on the host's other addresses
    probe = ("import socket\ntry:\n    socket.create_connection(("
             f"{client_host['host_ip']!r},{port}),timeout=2)\n    print('open')\nexcept OSError:\n    print('closed')")
    assert in_ns(client_host["ns"], probe).strip() == "closed"     # nor from another host
    # the proxy holds the port: nothing else on the host can take it while the container publishes it
    with socket.socket() as other, pytest.raises(OSError):
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (past TIME_WAIT, not past a listener)
        other.bind(("127.0.0.1", port))
    cl("rm", "-f", web)
    settle()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (our own connection's TIME_WAIT)
        again.bind(("127.0.0.1", port))                             # let go with the container


def test_a_host_port_in_use_is_refused_before_anything_is_made(names):
    web = names("containers", "busy")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = ok("ps", "-a", "-q")
        done = cl("run", "-d", "--name", web, "-p", f"{port}:80", "lab", "sleep", "60")
    assert done.returncode == 125
    assert done.stderr.strip() == f"container-lab: host port {port}/tcp is already in use on the host"
    assert ok("ps", "-a", "-q") == before
    assert not [a for a in attachments() if a["name"] == web]


def test_a_random_host_port_and_a_udp_port(names, client_host, tmp_path):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("needs gcc to build the UDP echo server")
    src = tmp_path / "udpecho.c"
    src.write_text(UDPECHO)
    subprocess.run([gcc, "-static", "-O2", "-o", str(tmp_path / "udpecho"), str(src)], check=True)
    c = names("containers", "udp")
    ok("run", "-d", "--name", c, "-p", "80", "-p", "5353/udp", "-v", f"{tmp_path}:/probe:ro", "lab", "sh", "-c",
       "/probe/udpecho 5353 & " + WEB)
    lines = ok("port", c).splitlines()
    assert len(lines) == 2
    tcp = next(int(line.rsplit(":", 1)[1]) for line in lines if line.startswith("80/tcp"))
    udp = next(int(line.rsplit(":", 1)[1]) for line in lines if line.startswith("5353/udp"))
    assert tcp > 0 and udp > 0
    wait_until(lambda: serving(client_host["host_ip"], tcp), timeout=15, message="the random host port")
    code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\n"
            "for _ in range(10):\n"
            f"    s.sendto(b'datagram',({client_host['host_ip']!r},{udp}))\n"
            "    try:\n        print(s.recvfrom(100)[0].decode()); break\n"
            "    except socket.timeout:\n        pass\n")
    assert in_ns(client_host["ns"], code).strip() == "datagram"


# ---- crash ------------------------------------------------------------------------------------

def test_a_supervisor_killed_keeps_the_leases_of_live_containers_and_sweeps_the_dead(names, client_host):
    alive, dead = names("containers", "keep"), names("containers", "gone")
    port_alive, port_dead = free_port(), free_port()
    ok("run", "-d", "--name", alive, "-p", f"{port_alive}:80", "lab", "sh", "-c", WEB)
    ok("run", "-d", "--name", dead, "-p", f"{port_dead}:80", "lab", "sh", "-c", WEB)
    wait_until(lambda: serving(client_host["host_ip"], port_alive), timeout=15)
    addr = address(alive)
    dead_rec = inspect(dead)
    dead_veth = dead_rec["NetworkSettings"]["Networks"]["bridge"]["HostInterface"]
    sup = int((ROOT / "run" / "supervisor.pid").read_text())
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{sup}").exists(), timeout=10)
    os.kill(dead_rec["pid"], signal.SIGKILL)                   # dies while nobody watches
    wait_until(lambda: not Path(f"/proc/{dead_rec['pid']}").exists(), timeout=10)
    # the next request starts a new supervisor: it adopts one and sweeps the other
    assert address(alive) == addr
    assert serving(client_host["host_ip"], port_alive)
    wait_until(lambda: dead_veth not in our_links(), timeout=10, message=f"{dead_veth} removed")
    assert not [a for a in attachments() if a["name"] == dead]
    assert str(port_dead) not in nft_listing()
    assert str(port_alive) in nft_listing()
    # and a new container never gets the address the live one still holds
    other = names("containers", "new")
    ok("run", "-d", "--name", other, "lab", "sleep", "60")
    assert address(other) != addr


def test_the_explain_transcript_has_a_network_stage_with_shell_twins(names):
    c = names("containers", "explained")
    ok("run", "-d", "--name", c, "-p", f"{free_port()}:80", "lab", "sleep", "60")
    from engine.client import Client

    stages = Client().inspect(c, transcript=True)["transcript"]["stages"]
    net = next(s for s in stages if s["id"] == "network")
    shells = [op["shell"] for op in net["ops"]]
    assert any(s.startswith("ip link add vcl") and "type veth peer name eth0" in s for s in shells)
    assert any(" master cl-" in s for s in shells)
    assert any(s.startswith("ip -n NS addr add 10.213.") for s in shells)
    assert any(s.startswith("nft add element inet ") for s in shells)
    ns = next(s for s in stages if s["id"] == "namespaces")
    assert "network namespace the engine plugged into network bridge" in ns["title"]


def test_without_nftables_a_container_falls_back_to_loopback_with_one_warning(tmp_path):
    """An engine whose PATH has no nft (as on a machine without nftables):
    the default network cannot be made, so the container gets a loopback
    device only, with one WARNING line; nothing of the network is left."""
    from engine.supervisor.networks import _table_for

    root = tmp_path / "engine"
    env = {"CONTAINER_LAB_ROOT": str(root), "PATH": "/usr/bin:/bin",
           "CONTAINER_LAB_CGROUP_PARENT": os.environ["CONTAINER_LAB_CGROUP_PARENT"] + "-nonft"}
    assert shutil.which("nft", path=env["PATH"]) is None
    try:
        done = cl("run", "--rm", "lab", "ls", "/sys/class/net", env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["lo"]
        warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING:")]
        assert len(warnings) == 1 and "nft" in warnings[0] and "loopback" in warnings[0], done.stderr
        from engine.network import Store

        owner = Store(root / "lib" / "network").owner               # this engine's links carry it in their alias
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        assert f"alias {owner}" not in links                       # no bridge left half-made
        assert subprocess.run(["nft", "list", "table", "inet", _table_for(root / "lib")],
                              capture_output=True).returncode != 0
    finally:
        subprocess.run([sys.executable, "-c", "from engine.client import Client; Client(autostart=False).shutdown()"],
                       env={**os.environ, **env}, cwd=str(Path(__file__).resolve().parent.parent), timeout=60)


def test_publish_all_publishes_what_the_image_exposes_on_free_host_ports(names, client_host):
    from image_support import derived_image

    image = derived_image(f"exposing-{secrets.token_hex(3)}:1", config={"ExposedPorts": {"80/tcp": {}, "9/udp": {}}})
    web = names("containers", "exposed")
    ok("run", "-d", "--name", web, "-P", image, "sh", "-c", WEB)
    ports = inspect(web)["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "9/udp"} and all(len(v) == 1 for v in ports.values())
    tcp = int(ports["80/tcp"][0]["HostPort"])
    wait_until(lambda: serving(client_host["host_ip"], tcp), timeout=15, message="the port -P chose")
    assert "hello from" in http_get("127.0.0.1", tcp)
    cl("rm", "-f", web)
    cl("rmi", image)


def test_a_port_just_used_through_the_proxy_can_be_published_again_at_once(names):
    """A fetch at localhost leaves the connection in TIME_WAIT on the host port;
    that must not keep the next container from publishing it (docker allows it)."""
    first, second = names("containers", "again1"), names("containers", "again2")
    port = free_port()
    ok("run", "-d", "--name", first, "-p", f"{port}:80", "lab", "sh", "-c", WEB)
    wait_until(lambda: serving("127.0.0.1", port), timeout=15)
    cl("rm", "-f", first)
    settle()
    ok("run", "-d", "--name", second, "-p", f"{port}:80", "lab", "sh", "-c", WEB)
    wait_until(lambda: serving("127.0.0.1", port), timeout=15)
