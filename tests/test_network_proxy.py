"""The userland port proxy (engine/network/proxy.py), for real: a network
namespace made here stands in for a container, with TCP and UDP servers on
its own veth address; the proxy runs in this test's own thread, in a
selector loop as the supervisor's (``proxy.serve``), while the clients run on
other threads. After each test no socket of the proxy is left open (this
process's sockets and epoll sets are counted before and after) and no
namespace or link is left."""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import resource
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from engine.network import NetworkError
from engine.network import proxy as netproxy
from engine.network.proxy import PortProxy

from waiting import wait_until


def needs_netns(test):
    """Marks a test that makes a network namespace and a veth pair."""
    test = pytest.mark.skipif(not shutil.which("ip"), reason="needs iproute2")(test)
    test = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a network namespace and a veth pair")(test)
    return pytest.mark.root(test)


SERVER = r"""
import hashlib, socket, socketserver, sys, threading

class Echo(socketserver.BaseRequestHandler):        # 7/tcp: every byte back; EOF after the client's
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)

class Sink(socketserver.BaseRequestHandler):        # 9/tcp: read to EOF, then say what came
    def handle(self):
        digest, n = hashlib.sha256(), 0
        while data := self.request.recv(65536):
            digest.update(data)
            n += len(data)
        self.request.sendall(f"{n} {digest.hexdigest()}\n".encode())

class Web(socketserver.BaseRequestHandler):         # 80/tcp: HTTP/1.0; the body names the peer
    def handle(self):
        request = b""
        while b"\r\n\r\n" not in request and (data := self.request.recv(4096)):
            request += data
        body = f"hello {self.client_address[0]}\n".encode()
        self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

class UdpEcho(socketserver.BaseRequestHandler):     # 7/udp
    def handle(self):
        data, sock = self.request
        sock.sendto(b"echo " + data, self.client_address)

class Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = allow_reuse_address = True
    request_queue_size = 512
    def handle_error(self, request, client_address):
        pass                                        # a client's reset is part of the test

class Udp(socketserver.UDPServer):
    max_packet_size = 65535

servers = [Tcp(("0.0.0.0", 7), Echo), Tcp(("0.0.0.0", 9), Sink), Tcp(("0.0.0.0", 80), Web), Udp(("0.0.0.0", 7), UdpEcho)]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()                                    # until the test closes our stdin, or dies
"""


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def open_sockets() -> int:
    """This process's sockets and epoll sets (a proxy has one of its own)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += link.startswith("socket:") or link == "anon_inode:[eventpoll]"
    return count


@pytest.fixture(autouse=True)
def no_socket_left():
    before = open_sockets()
    yield
    wait_until(lambda: open_sockets() == before, timeout=10,
               message=lambda: f"the sockets of this process back to {before}, now {open_sockets()}")


@dataclass
class Target:
    netns: str
    link: str           # the host end of the veth pair
    host: str           # its address, the host's side
    address: str        # the namespace's address, where the servers listen
    absent: str         # an address on that link no one answers


@pytest.fixture
def target():
    """A namespace with echo, sink and web servers on its eth0, reached from the host over a veth pair."""
    name, link = f"clp-{secrets.token_hex(4)}", f"clp{secrets.token_hex(4)}"
    taken = run("ip", "-o", "-4", "addr", "show").stdout
    while True:
        subnet = ipaddress.IPv4Network((f"10.{secrets.randbelow(30) + 225}.{secrets.randbelow(250)}."
                                        f"{secrets.randbelow(31) * 8}", 29))
        hosts = [str(h) for h in subnet.hosts()]
        if f" {hosts[0][:hosts[0].rindex('.')]}." not in taken:
            break
    server = None
    try:
        run("ip", "netns", "add", name)
        run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "addr", "add", f"{hosts[0]}/29", "dev", link)
        run("ip", "link", "set", link, "up")
        run("ip", "-n", name, "addr", "add", f"{hosts[1]}/29", "dev", "eth0")
        run("ip", "-n", name, "link", "set", "eth0", "up")
        run("ip", "-n", name, "link", "set", "lo", "up")
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", SERVER],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        yield Target(name, link, hosts[0], hosts[1], hosts[5])
    finally:
        if server is not None:
            server.stdin.close()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()
        run("ip", "netns", "del", name, check=False)
        run("ip", "link", "del", link, check=False)
    assert name not in run("ip", "netns", "list").stdout
    assert run("ip", "link", "show", link, check=False).returncode != 0


# ---- clients: plain blocking sockets, on threads of their own ----------------------------------

def drive(proxies, work, *args, timeout: float = 60.0):
    """Run ``work(*args)`` on a thread while this thread serves ``proxies``
    (as the supervisor's loop would); its result. Clients' sockets time out
    within ``timeout``, so a stuck proxy fails the test instead of hanging it."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(work, *args)
        netproxy.serve(proxies, timeout, until=future.done)
        return future.result(timeout=0)


def settle(proxies, timeout: float = 10.0) -> None:
    """Serve until every connection and flow of ``proxies`` is closed."""
    assert netproxy.serve(proxies, timeout, until=lambda: all(p.open_count() == 0 for p in proxies)), \
        [p.stats() for p in proxies]


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=30)


def read_all(c: socket.socket) -> bytes:
    chunks = []
    while data := c.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def read_exactly(c: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = c.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf)


def http_get(port: int, host: str = "127.0.0.1") -> str:
    with connect(port, host) as c:
        c.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
        return read_all(c).decode()


def exchange(port: int, data: bytes) -> tuple[int, str]:
    """Send ``data`` and end it, while reading what comes back until EOF: (length, sha256) of that."""
    with connect(port) as c:
        def send():
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        digest, n = hashlib.sha256(), 0
        while chunk := c.recv(1 << 20):
            digest.update(chunk)
            n += len(chunk)
        sender.join()
    return n, digest.hexdigest()


def sees_close(port: int) -> str:
    """Connect and wait: "closed" when the proxy hangs up (EOF or a reset), else what came."""
    with connect(port) as c:
        c.settimeout(20)
        try:
            data = c.recv(100)
        except ConnectionResetError:
            return "closed"
        return "closed" if data == b"" else repr(data)


def ping(c: socket.socket, word: bytes) -> bool:
    c.sendall(word)
    return read_exactly(c, len(word)) == word


# ---- TCP ------------------------------------------------------------------------------------------

@needs_netns
def test_tcp_on_loopback_reaches_the_target_and_copies_8_mib_both_ways(target):
    web = PortProxy("127.0.0.1", 0, "tcp", target.address, 80)
    echo = PortProxy("127.0.0.1", 0, "tcp", target.address, 7)
    try:
        assert web.host_port and web.host_ip == "127.0.0.1" and echo.host_port != web.host_port
        reply = drive([web, echo], http_get, web.host_port)
        # The server sees the proxy's own address on the link, as with docker-proxy.
        assert reply.startswith("HTTP/1.0 200 OK\r\n") and reply.endswith(f"\r\n\r\nhello {target.host}\n"), reply
        data = os.urandom(8 << 20)
        assert drive([web, echo], exchange, echo.host_port, data) == (len(data), hashlib.sha256(data).hexdigest())
        settle([web, echo])
        stats = echo.stats()
        assert (stats["accepted"], stats["bytes_in"], stats["bytes_out"]) == (1, len(data), len(data))
        assert (stats["errors"], stats["failed"], stats["rejected"], stats["sockets"]) == (0, 0, 0, 1), stats
        assert stats["host"] == f"127.0.0.1:{echo.host_port}" and stats["target"] == f"{target.address}:7"
    finally:
        web.close()
        echo.close()
    assert web.sockets() == echo.sockets() == 0


@needs_netns
def test_tcp_on_every_address_with_a_free_port_and_the_port_reserved(target):
    for everywhere in ("0.0.0.0", ""):
        web = PortProxy(everywhere, 0, "tcp", target.address, 80)
        try:
            assert web.host_ip == "" and web.stats()["host"] == f"0.0.0.0:{web.host_port}"
            for address in ("127.0.0.1", target.host):
                reply = drive([web], http_get, web.host_port, address)
                assert reply.endswith(f"hello {target.host}\n"), reply
            # Held: no program on the host can take the port on any address meanwhile.
            for address in ("127.0.0.1", "0.0.0.0"):
                with socket.socket() as other, pytest.raises(OSError) as refused:
                    other.bind((address, web.host_port))
                assert refused.value.errno == errno.EADDRINUSE
            settle([web])
            assert web.stats()["accepted"] == 2
        finally:
            web.close()
        with socket.socket() as other:     # free again once the proxy is closed (connections in TIME_WAIT
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)      # aside, as for any server)
            other.bind(("127.0.0.1", web.host_port))
            other.listen(1)


@needs_netns
def test_half_close_the_client_ends_its_request_and_still_reads_the_reply(target):
    sink = PortProxy("127.0.0.1", 0, "tcp", target.address, 9)

    def request_then_half_close(port: int):
        payload = os.urandom(1 << 20)
        with connect(port) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)        # the sink answers only once it has seen EOF
            return payload, read_all(c)
    try:
        for _round in range(3):
            payload, reply = drive([sink], request_then_half_close, sink.host_port)
            assert reply == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()
        settle([sink])
        assert sink.stats()["errors"] == 0 and sink.stats()["accepted"] == 3
    finally:
        sink.close()


@needs_netns
def test_a_target_that_refuses_or_never_answers_closes_the_client(target):
    refused = PortProxy("127.0.0.1", 0, "tcp", target.address, 1)              # nothing listens there
    silent = PortProxy("127.0.0.1", 0, "tcp", target.absent, 80, connect_timeout=0.5)   # no one at that address
    try:
        assert drive([refused, silent], sees_close, refused.host_port) == "closed"
        assert refused.stats()["failed"] == 1 and "Connection refused" in refused.last_error, refused.stats()
        assert drive([refused, silent], sees_close, silent.host_port) == "closed"
        assert silent.stats()["failed"] == 1 and silent.last_error.endswith(": timed out"), silent.stats()
        assert refused.open_count() == silent.open_count() == 0
        assert refused.sockets() == silent.sockets() == 1
    finally:
        refused.close()
        silent.close()


@needs_netns
def test_many_concurrent_connections_and_resets_that_hurt_no_other(target):
    echo = PortProxy("127.0.0.1", 0, "tcp", target.address, 7)
    clients, resets = 200, 10
    barrier = threading.Barrier(clients)

    def one(i: int):
        with connect(echo.host_port) as c:
            assert ping(c, f"{i:05d}".encode() * 20)
            barrier.wait(timeout=60)          # every client is through the proxy at once here
            if i < resets:                    # close with a reset, in the middle of the others' traffic
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return "reset"
            body = os.urandom(64 << 10)
            c.sendall(body)
            c.shutdown(socket.SHUT_WR)
            return read_all(c) == body

    def all_of_them():
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(one, range(clients)))
    peak = 0

    def watch(future) -> bool:
        nonlocal peak
        peak = max(peak, echo.open_count())
        return future.done()
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(all_of_them)
            netproxy.serve([echo], 90, until=lambda: watch(future))
            results = future.result(timeout=0)
        assert results.count("reset") == resets and results.count(True) == clients - resets, results
        assert peak == clients
        settle([echo])
        assert echo.stats()["accepted"] == clients and echo.stats()["rejected"] == 0
        assert echo.sockets() == 1
    finally:
        echo.close()


@needs_netns
def test_past_the_cap_a_new_connection_is_closed_at_once(target):
    echo = PortProxy("127.0.0.1", 0, "tcp", target.address, 7, max_connections=4)

    def scenario():
        held = [connect(echo.host_port) for _ in range(4)]
        try:
            served = [ping(c, b"ping") for c in held]
            over = sees_close(echo.host_port)
            held.pop().close()
            wait_until(lambda: echo.open_count() < 4, message="the proxy to drop a closed connection")
            with connect(echo.host_port) as again:
                after = ping(again, b"again")
            return served, over, after
        finally:
            for c in held:
                c.close()
    try:
        assert drive([echo], scenario) == ([True] * 4, "closed", True)
        settle([echo])
        assert (echo.stats()["accepted"], echo.stats()["rejected"]) == (6, 1)
    finally:
        echo.close()


@needs_netns
def test_a_reader_that_stalls_is_held_back_and_others_go_on(target):
    """Backpressure: a client that sends and never reads fills the kernel's
    buffers and then the proxy's, which stops reading it; the proxy holds no
    more than its bounded buffers, sleeps while everything is stalled (no
    busy loop on a socket it cannot serve), and serves another connection
    meanwhile."""
    echo = PortProxy("127.0.0.1", 0, "tcp", target.address, 7)
    web = PortProxy("127.0.0.1", 0, "tcp", target.address, 80)
    most = 0
    quiet = [threading.Event(), threading.Event()]     # a stalled second begins, ends
    cpu: list[float] = []                              # this (the loop's) thread's CPU time then

    def scenario():
        digest = hashlib.sha256()
        with connect(echo.host_port) as stuck:
            stuck.setblocking(False)
            sent, blocked_since = 0, None
            chunk = os.urandom(64 << 10)
            while blocked_since is None or time.monotonic() - blocked_since < 1.0:
                try:
                    n = stuck.send(chunk)
                    digest.update(chunk[:n])
                    sent += n
                    blocked_since = None
                except BlockingIOError:
                    blocked_since = blocked_since or time.monotonic()
                    time.sleep(0.01)
                if sent > 256 << 20:
                    break
            quiet[0].set()
            time.sleep(1.0)
            quiet[1].set()
            reply = http_get(web.host_port)   # while the other connection is stalled
            stuck.setblocking(True)
            stuck.settimeout(30)
            stuck.shutdown(socket.SHUT_WR)
            back = read_all(stuck)
        return sent, reply, len(back), hashlib.sha256(back).hexdigest() == digest.hexdigest()

    def watch(future):
        nonlocal most
        most = max(most, echo.stats()["buffered"])
        if len(cpu) < 2 and quiet[len(cpu)].is_set():
            cpu.append(time.thread_time())
        return future.done()
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(scenario)
            netproxy.serve([echo, web], 90, until=lambda: watch(future))
            sent, reply, back, same = future.result(timeout=0)
        assert reply.endswith(f"hello {target.host}\n")
        assert sent < 256 << 20, "the sender was never held back"
        assert sent > 2 * netproxy.BUFFER and back == sent and same
        assert 0 < most <= 2 * netproxy.BUFFER
        assert cpu[1] - cpu[0] < 0.1, f"the loop used {cpu[1] - cpu[0]:.2f} s of CPU in a stalled second"
        settle([echo, web])
    finally:
        echo.close()
        web.close()


@needs_netns
def test_out_of_descriptors_accept_pauses_and_the_waiting_client_is_served_after(target):
    web = PortProxy("127.0.0.1", 0, "tcp", target.address, 80)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def scenario():
        first = http_get(web.host_port)           # the loop is serving (its selector made) from here on
        wait_until(lambda: web.open_count() == 0, message="the proxy to close the first connection")
        c = socket.socket()
        c.settimeout(30)
        try:
            lowest = os.dup(0)                    # the descriptor accept would get next
            os.close(lowest)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, hard))
            try:
                c.connect(("127.0.0.1", web.host_port))        # into the listen queue: the kernel's, no fd here
                wait_until(lambda: web.errors, message="accept to fail")
                paused = web.paused_until > 0
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return first, paused, read_all(c).decode()
        finally:
            c.close()
    try:
        first, paused, reply = drive([web], scenario)
        assert paused and first == reply and reply.endswith(f"hello {target.host}\n"), reply
        assert web.last_error == "accepting a connection: Too many open files", web.stats()
        assert (web.stats()["errors"], web.stats()["accepted"], web.paused_until) == (1, 2, 0.0)
    finally:
        web.close()


def test_a_port_in_use_or_bad_input_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(NetworkError, match=rf"^host port 127.0.0.1:{port}/tcp is already in use on the host$"):
            PortProxy("127.0.0.1", port, "tcp", "10.0.0.2", 80)
        with pytest.raises(NetworkError, match=rf"^host port {port}/tcp is already in use on the host$"):
            PortProxy("0.0.0.0", port, "tcp", "10.0.0.2", 80)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(NetworkError, match=rf"^host port 127.0.0.1:{port}/udp is already in use on the host$"):
            PortProxy("127.0.0.1", port, "udp", "10.0.0.2", 53)
    # A proxy holds its port: a second one is refused, and it is free again once the first is closed.
    first = PortProxy("", 0, "udp", "10.0.0.2", 53)
    try:
        with pytest.raises(NetworkError, match=rf"^host port 127.0.0.1:{first.host_port}/udp is already in use"):
            PortProxy("127.0.0.1", first.host_port, "udp", "10.0.0.2", 53)
    finally:
        first.close()
    PortProxy("127.0.0.1", first.host_port, "udp", "10.0.0.2", 53).close()
    bad = [(("192.0.2.1", 0, "tcp", "10.0.0.2", 80), "host port 192.0.2.1:0/tcp cannot be bound on the host: "
                                                     "Cannot assign requested address"),
           (("127.0.0.1", 0, "sctp", "10.0.0.2", 80), "invalid protocol 'sctp': tcp or udp"),
           (("localhost", 0, "tcp", "10.0.0.2", 80), "invalid host address 'localhost': not an IPv4 address"),
           (("127.0.0.1", 0, "tcp", "web", 80), "invalid target address 'web': not an IPv4 address"),
           (("127.0.0.1", 70000, "tcp", "10.0.0.2", 80), "invalid host port 70000: not a number from 0 to 65535"),
           (("127.0.0.1", 0, "tcp", "10.0.0.2", 0), "invalid target port 0: not a number from 1 to 65535"),
           (("127.0.0.1", "80", "tcp", "10.0.0.2", 80), "invalid host port '80': not a number from 0 to 65535"),
           ((5, 0, "tcp", "10.0.0.2", 80), "invalid host address 5: not an IPv4 address")]
    for args, message in bad:
        with pytest.raises(NetworkError) as e:
            PortProxy(*args)
        assert str(e.value) == message
    # Out of descriptors with the port bound but no epoll set yet: one line, and the port let go.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest = os.dup(0)
    os.close(lowest)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest + 1, hard))
    try:
        with pytest.raises(NetworkError, match=r"^host port 127.0.0.1:0/tcp cannot be bound on the host: "
                                               r"Too many open files$"):
            PortProxy("127.0.0.1", 0, "tcp", "10.0.0.2", 80)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---- UDP ------------------------------------------------------------------------------------------

def datagrams(port: int, sends: list[tuple[int, bytes]], clients: int = 2, wait: float = 10.0) -> list:
    """From ``clients`` sockets, send each (client, payload) in turn and wait
    for one reply: (payload, sender) back, or None when none came in ``wait`` s."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(clients)]
    try:
        out = []
        for which, payload in sends:
            s = socks[which]
            s.settimeout(wait)
            s.sendto(payload, ("127.0.0.1", port))
            try:
                out.append(s.recvfrom(1 << 17))
            except TimeoutError:
                out.append(None)
        return out
    finally:
        for s in socks:
            s.close()


@needs_netns
def test_udp_round_trips_one_flow_per_client_and_flows_expire(target):
    udp = PortProxy("127.0.0.1", 0, "udp", target.address, 7, udp_idle=30)
    quick = PortProxy("127.0.0.1", 0, "udp", target.address, 7, udp_idle=0.3)
    try:
        big = os.urandom(60000)
        replies = drive([udp, quick], datagrams, udp.host_port, [(0, b"one"), (1, b"two"), (0, big)])
        here = ("127.0.0.1", udp.host_port)
        assert replies == [(b"echo one", here), (b"echo two", here), (b"echo " + big, here)]
        assert udp.open_count() == 2 and udp.sockets() == 3      # one flow per client address, reused
        assert udp.stats()["bytes_in"] == 6 + len(big) and udp.stats()["bytes_out"] == 21 + len(big)
        assert time.monotonic() < udp.next_deadline() <= time.monotonic() + 30
        udp.expire(time.monotonic() + 31)
        assert udp.next_deadline() is None
        assert udp.open_count() == 0 and udp.sockets() == 1
        # In real time: a flow idle 0.3 s is gone within a few ticks, and a new datagram makes a new one.
        assert drive([udp, quick], datagrams, quick.host_port, [(0, b"hi")])[0][0] == b"echo hi"
        settle([quick], timeout=5)
        assert drive([udp, quick], datagrams, quick.host_port, [(0, b"again")])[0][0] == b"echo again"
        assert quick.stats()["errors"] == quick.stats()["dropped"] == 0
    finally:
        udp.close()
        quick.close()
    assert udp.sockets() == quick.sockets() == 0


@needs_netns
def test_udp_flows_are_capped_and_an_unreachable_port_harms_nothing(target):
    capped = PortProxy("127.0.0.1", 0, "udp", target.address, 7, max_flows=1)
    nowhere = PortProxy("127.0.0.1", 0, "udp", target.address, 5)    # nothing listens: ICMP port unreachable
    try:
        replies = drive([capped, nowhere], datagrams, capped.host_port, [(0, b"first"), (1, b"second"), (0, b"x")],
                        2, 1.0)
        assert [r and r[0] for r in replies] == [b"echo first", None, b"echo x"]
        assert capped.stats()["dropped"] == 1 and capped.open_count() == 1
        replies = drive([capped, nowhere], datagrams, nowhere.host_port, [(0, b"a"), (0, b"b"), (0, b"c")], 1, 0.3)
        assert replies == [None, None, None]
        assert nowhere.stats()["errors"] == 0 and nowhere.open_count() == 1
        assert nowhere.stats()["bytes_in"] + nowhere.stats()["dropped"] >= 3     # the ICMP error may cost one
    finally:
        capped.close()
        nowhere.close()
