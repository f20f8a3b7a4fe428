#!/usr/bin/env python3
"""Network stage benchmark: what plugging a container into a bridge costs.

    sudo .venv/bin/python bench/network_stage.py [--runs N]

For each run a fresh network namespace (``ip netns add``, not timed) stands in
for a container, and these are timed, side by side in one run:

a. ``engine.network``: ``ipam.lease`` (the address, on disk), ``bridge.attach``
   without and with one published port (veth pair, eth0 inside, route, the
   nft map element), ``bridge.teardown`` (element, veth, lease); and
   ``bridge.ensure_network`` again (what a start pays if it re-checks the
   network each time rather than once per supervisor);
b. the same attach done with the shell twins: ``ip link add ... type veth
   peer name eth0 netns NS``, ``ip link set ... master ... up``, ``ip -n NS
   addr add``, ``ip -n NS link set eth0 up``, ``ip -n NS route add default``
   (five processes), and ``ip link del``.

Everything is made in an nft table and a data dir of its own
(``inet clbench``, /tmp/clab-netbench) on a test subnet (10.78.0.0/24, no
traffic is sent) and removed at the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.network import Store, bridge, ipam, sweep  # noqa: E402

ROOT = Path("/tmp/clab-netbench")
NS = "clbench"


def ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(samples) * 1000:6.1f} ms (p95 {p95 * 1000:.1f})"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: it makes bridges, veth pairs and nft rules", file=sys.stderr)
        return 2
    with open(bridge.IP_FORWARD) as f:
        forward = f.read()
    shutil.rmtree(ROOT, ignore_errors=True)
    store = Store(ROOT, table="clbench", pools=("10.78.0.0/24",))
    net = ipam.create_network(store, "bench")
    rows: dict[str, list[float]] = {k: [] for k in (
        "lease", "ensure_network (again)", "attach", "attach + 1 port", "teardown", "teardown + 1 port",
        "shell: 5 x ip (attach)", "shell: ip link del")}
    try:
        bridge.ensure_network(store, net)
        for i in range(args.runs):
            sh("ip", "netns", "add", NS)
            try:
                fd = os.open(f"/run/netns/{NS}", os.O_RDONLY | os.O_CLOEXEC)
                ports = [ipam.parse_publish("0:80")] if i % 2 else []
                t = time.perf_counter()
                att = ipam.lease(store, net, f"{i:064d}", name=f"c{i}", ports=ports)
                rows["lease"].append(time.perf_counter() - t)
                t = time.perf_counter()
                bridge.ensure_network(store, net)
                rows["ensure_network (again)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                bridge.attach(store, net, att, netns_fd=fd)
                rows["attach + 1 port" if ports else "attach"].append(time.perf_counter() - t)
                os.close(fd)
                t = time.perf_counter()
                bridge.teardown(store, att)
                rows["teardown + 1 port" if ports else "teardown"].append(time.perf_counter() - t)
                # The shell twins, same addresses.
                veth = "vclbenchsh"
                t = time.perf_counter()
                sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", att.mac, "netns", NS)
                sh("ip", "link", "set", veth, "master", net.bridge, "up")
                sh("ip", "-n", NS, "addr", "add", f"{att.address}/{att.prefixlen}", "dev", "eth0")
                sh("ip", "-n", NS, "link", "set", "eth0", "up")
                sh("ip", "-n", NS, "route", "add", "default", "via", net.gateway)
                rows["shell: 5 x ip (attach)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                sh("ip", "link", "del", veth)
                rows["shell: ip link del"].append(time.perf_counter() - t)
            finally:
                subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    finally:
        sweep.sweep(store, alive=lambda a: False)
        bridge.remove_network(store, net)
        store.delete_network_record(net)
        sweep.sweep(store)
        shutil.rmtree(ROOT, ignore_errors=True)
        with open(bridge.IP_FORWARD, "w") as f:
            f.write(forward)
    print(f"network stage, {args.runs} runs (median, p95):")
    for name, samples in rows.items():
        print(f"  {name:26} {ms(samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
