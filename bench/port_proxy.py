#!/usr/bin/env python3
"""Port proxy benchmark: what a published port reached on 127.0.0.1 costs
through ``engine.network.proxy``, against going straight to the container's
address, side by side in ONE run.

    sudo .venv/bin/python bench/port_proxy.py [--rounds N] [--mib N] [--conns N] [--pings N]

A network namespace made here stands in for a container, on a veth pair of
its own (``clbproxy``, 10.79.0.2/30; the host end 10.79.0.1). One Python
process in it serves, a thread per connection: a sink (read to EOF, say how
much came), a source (send as many bytes as asked), an echo and an HTTP/1.0
responder. The proxy runs as the supervisor runs it: a ``PortProxy`` per
port on 127.0.0.1, in this process's single-threaded selector loop
(``proxy.serve``). The clients are another process, so they never share the
proxy's interpreter. Each round, every measurement runs once straight to
10.79.0.2 and once through the proxy (which goes first alternates):

a. upload: ``--mib`` MiB to the sink, until its answer after EOF (MiB/s);
b. download: ``--mib`` MiB from the source, to EOF (MiB/s);
c. a connection: connect, one HTTP/1.0 request, the whole reply, close --
   ``--conns`` of them one after another (ms each);
d. a round trip: 64 bytes to the echo and back on one open connection --
   ``--pings`` of them (µs each);

and, through the proxy, this process's CPU time (the proxy's) per MiB, per
connection and per round trip. The table gives the median over the rounds
of each round's value (for c and d, the round's median; the p95 beside it
is over every sample), and the ratio proxy / direct.

Everything it makes is removed at the end, on Ctrl-C and SIGTERM too: the
proxies, the servers, the namespace and the veth pair.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, begin, percentile, run_meta  # noqa: E402

sys.path.insert(0, str(REPO))
from engine.network import proxy as netproxy  # noqa: E402

LOCK_FILE = Path("/tmp/clab-bench.lock")           # shared with the other benchmarks: never two at once
NETNS, LINK = "clbproxy", "clbproxy0"
HOST, TARGET = "10.79.0.1", "10.79.0.2"
PORTS = {"sink": 9, "source": 19, "echo": 7, "web": 80}
SERVES = {"upload": "sink", "download": "source", "connect": "web", "ping": "echo"}

SERVER = r"""
import socket, socketserver, sys, threading

CHUNK = memoryview(bytes(1 << 20))

class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        buf, n = bytearray(1 << 20), 0
        while got := self.request.recv_into(buf):
            n += got
        self.request.sendall(f"{n}\n".encode())

class Source(socketserver.BaseRequestHandler):
    def handle(self):
        left = int(self.request.makefile("rb").readline())
        while left > 0:
            left -= self.request.send(CHUNK[:min(left, len(CHUNK))])

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)

class Web(socketserver.BaseRequestHandler):
    def handle(self):
        request = b""
        while b"\r\n\r\n" not in request and (data := self.request.recv(4096)):
            request += data
        body = b"hello\n"
        self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

class Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = allow_reuse_address = True
    request_queue_size = 512

for port, handler in ((9, Sink), (19, Source), (7, Echo), (80, Web)):
    threading.Thread(target=Tcp(("0.0.0.0", port), handler).serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

CLIENT = r"""
import json, socket, statistics, sys, time

what, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def connect():
    c = socket.create_connection((host, port), timeout=60)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c

if what == "upload":                        # n bytes
    chunk = memoryview(bytes(1 << 20))
    with connect() as c:
        t = time.perf_counter()
        sent = 0
        while sent < n:
            c.sendall(chunk[:min(n - sent, len(chunk))])
            sent += min(n - sent, len(chunk))
        c.shutdown(socket.SHUT_WR)
        reply = c.makefile("rb").read()
        seconds = time.perf_counter() - t
    assert int(reply) == n, reply
    samples = [seconds]
elif what == "download":                    # n bytes
    buf = bytearray(1 << 20)
    with connect() as c:
        t = time.perf_counter()
        c.sendall(f"{n}\n".encode())
        got = 0
        while k := c.recv_into(buf):
            got += k
        seconds = time.perf_counter() - t
    assert got == n, got
    samples = [seconds]
elif what == "connect":                     # n connections
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        with connect() as c:
            c.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            reply = c.makefile("rb").read()
        samples.append(time.perf_counter() - t)
        assert reply.endswith(b"hello\n"), reply
else:                                       # n round trips
    samples = []
    word = b"x" * 64
    with connect() as c:
        for _ in range(n):
            t = time.perf_counter()
            c.sendall(word)
            got = b""
            while len(got) < len(word):
                got += c.recv(len(word) - len(got))
            samples.append(time.perf_counter() - t)
print(json.dumps(samples))
"""


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def sh(*cmd: str, check: bool = True) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def remove_namespace() -> None:
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "link", "del", LINK, check=False)


def make_namespace() -> subprocess.Popen:
    remove_namespace()                                  # a run killed hard left it
    if TARGET.rsplit(".", 1)[0] + "." in subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True,
                                                        text=True).stdout:
        raise RuntimeError(f"an address in {TARGET.rsplit('.', 1)[0]}.0/24 is on this host already")
    sh("ip", "netns", "add", NETNS)
    sh("ip", "link", "add", LINK, "type", "veth", "peer", "name", "eth0", "netns", NETNS)
    sh("ip", "addr", "add", f"{HOST}/30", "dev", LINK)
    sh("ip", "link", "set", LINK, "up")
    sh("ip", "-n", NETNS, "addr", "add", f"{TARGET}/30", "dev", "eth0")
    sh("ip", "-n", NETNS, "link", "set", "eth0", "up")
    sh("ip", "-n", NETNS, "link", "set", "lo", "up")
    server = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-c", SERVER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if server.stdout.readline().strip() != "ready":
        raise RuntimeError("the servers in the namespace did not start")
    return server


def client(what: str, host: str, port: int, n: int, proxies) -> tuple[list[float], float]:
    """One client process; the proxies served meanwhile. (its samples, this process's CPU seconds)."""
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, what, host, str(port), str(n)],
                            stdout=subprocess.PIPE, text=True)
    try:
        cpu = time.process_time()
        netproxy.serve(proxies, 600, until=lambda: proc.poll() is not None)
        cpu = time.process_time() - cpu
    finally:
        if proc.poll() is None:         # interrupted, or 10 minutes: not left behind
            proc.kill()
        out = proc.stdout.read()
        proc.stdout.close()
    if proc.wait() != 0:
        raise RuntimeError(f"the {what} client failed")
    return json.loads(out), cpu


def measure(args, proxies: dict) -> dict:
    size = args.mib << 20
    jobs = {"upload": size, "download": size, "connect": args.conns, "ping": args.pings}
    results = {what: {"direct": [], "proxy": [], "all_direct": [], "all_proxy": [], "cpu": []} for what in jobs}
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds} ...")
        for what, n in jobs.items():
            for mode in (("direct", "proxy") if r % 2 == 0 else ("proxy", "direct")):
                server = SERVES[what]
                host, port = (TARGET, PORTS[server]) if mode == "direct" else ("127.0.0.1", proxies[server].host_port)
                samples, cpu = client(what, host, port, n, list(proxies.values()))
                row = results[what]
                if what in ("upload", "download"):
                    row[mode].append(args.mib / samples[0])                 # MiB/s
                else:
                    row[mode].append(statistics.median(samples))
                    row[f"all_{mode}"].extend(samples)
                if mode == "proxy":
                    row["cpu"].append(cpu / (args.mib if what in ("upload", "download") else n))
    for p in proxies.values():
        s = p.stats()
        if s["errors"] or s["failed"] or s["rejected"] or s["dropped"]:
            raise RuntimeError(f"the proxy reported trouble: {s}")
    return results


def report(meta: dict, results: dict) -> str:
    def med(values) -> float:
        return statistics.median(values) if values else math.nan

    rows = []
    for what, label, unit, scale, fmt in (
            ("upload", f"upload {meta['mib']} MiB", "MiB/s", 1, "{:.0f}"),
            ("download", f"download {meta['mib']} MiB", "MiB/s", 1, "{:.0f}"),
            ("connect", "connect + HTTP/1.0 request + reply + close", "ms", 1e3, "{:.2f}"),
            ("ping", "64 B round trip on an open connection", "µs", 1e6, "{:.0f}")):
        r = results[what]
        direct, proxied = med(r["direct"]) * scale, med(r["proxy"]) * scale
        cells = [fmt.format(direct), fmt.format(proxied)]
        if r["all_direct"]:
            cells = [f"{c} (p95 {fmt.format(percentile(r[k], 0.95) * scale)})"
                     for c, k in zip(cells, ("all_direct", "all_proxy"))]
        cpu_unit = "ms per MiB" if what in ("upload", "download") else "µs each" if what == "ping" else "ms each"
        cpu_scale = 1e6 if what == "ping" else 1e3
        rows.append(f"| {label}, {unit} | {cells[0]} | {cells[1]} | {proxied / direct:.2f}x | "
                    f"{med(r['cpu']) * cpu_scale:.2f} {cpu_unit} |")
    return "\n".join([
        f"## Port proxy, {meta['date']}", "",
        f"{meta['machine']}; engine at {meta['git']}; load average {meta['load_before']:.2f} at the start, "
        f"{meta.get('load_after', math.nan):.2f} at the end; {meta['rounds']} interleaved rounds.", "",
        f"```sh\n{meta['command']}\n```", "",
        "| what (median of rounds) | direct to the container | through the proxy | proxy / direct | proxy CPU |",
        "|---|---:|---:|---:|---:|", *rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--mib", type=int, default=128, help="MiB each way per round (default 128)")
    ap.add_argument("--conns", type=int, default=200, help="connections per round (default 200)")
    ap.add_argument("--pings", type=int, default=2000, help="round trips per round (default 2000)")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()
    lock = begin(LOCK_FILE, log)
    if lock is None:
        return 2
    meta = run_meta(rounds=args.rounds, mib=args.mib, conns=args.conns, pings=args.pings)
    results: dict = {}
    code = 0
    server = None
    proxies: dict = {}
    try:
        server = make_namespace()
        proxies = {name: netproxy.PortProxy("127.0.0.1", 0, "tcp", TARGET, port) for name, port in PORTS.items()}
        results = measure(args, proxies)
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except RuntimeError as e:
        log(f"port proxy benchmark: {e}")
        code = 1
    finally:
        meta["load_after"] = os.getloadavg()[0]
        for p in proxies.values():
            p.close()
        if server is not None:
            server.stdin.close()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        remove_namespace()
    if results:
        print(report(meta, results))
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
