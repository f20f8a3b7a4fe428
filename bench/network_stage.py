#!/usr/bin/env python3
"""Network stage benchmark: what plugging a container into a bridge costs.

    sudo .venv/bin/python bench/network_stage.py [--runs N]

For each run fresh network namespaces (``ip netns add``, not timed) stand in
for containers, and these are timed, side by side in one run:

a. ``engine.network``: ``ipam.lease`` (the address, on disk), ``bridge.attach``
   without and with one published port (veth pair, eth0 inside, route, the
   nft map element), ``bridge.teardown`` (element, veth, lease); and
   ``bridge.ensure_network`` again (what a start pays if it re-checks the
   network each time rather than once per supervisor);
b. the same netlink work the way ``bridge`` did it before
   :mod:`engine.network.rtnl`, with pyroute2's ``IPRoute`` (its code is
   kept here, for this comparison only): ``attach`` (no port, so no nft)
   and the link part of ``ensure_network`` against the new ones, and the
   ratio of their medians; which of the two goes first alternates from run
   to run;
c. the same attach done with the shell twins: ``ip link add ... type veth
   peer name eth0 netns NS``, ``ip link set ... master ... up``, ``ip -n NS
   addr add``, ``ip -n NS link set eth0 up``, ``ip -n NS route add default``
   (five processes), and ``ip link del``.

Deleting a veth pair waits for the kernel to retire the device (an RCU grace
period, 10-40 ms on a busy machine), whichever way it is asked: those rows
measure the kernel, not the client.

Everything is made in an nft table and a data dir of its own
(``inet clbench``, /tmp/clab-netbench) on a test subnet (10.78.0.0/24, no
traffic is sent) and removed at the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.network import NetworkError, Store, bridge, ipam, sweep  # noqa: E402
from engine.network.rtnl import Rtnl  # noqa: E402

ROOT = Path("/tmp/clab-netbench")
NS = "clbench"
NS_NEW = "clbench-new"
NS_OLD = "clbench-old"


def ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(samples) * 1000:6.2f} ms (p95 {p95 * 1000:.2f})"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


# ---- the pyroute2 way, as bridge.py did it before engine/network/rtnl.py ---------------------------

def _code(e: Exception) -> int | None:
    return getattr(e, "code", None) or getattr(e, "errno", None)


def delete_link_pyroute2(name: str) -> bool:
    with bridge._ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        try:
            ipr.link("del", index=found[0])
        except Exception as e:  # noqa: BLE001
            if _code(e) in (errno.ENODEV, errno.ENOENT):
                return False
            raise
    return True


def ensure_links_pyroute2(store: Store, net) -> None:
    """The link part of ensure_network: bridge, alias, gateway address, up."""
    with bridge._ipr() as ipr:
        index = ipr.link_lookup(ifname=net.bridge)[0]
        ipr.link("set", index=index, ifalias=f"{store.owner} network={net.name}")
        try:
            ipr.addr("add", index=index, address=net.gateway, prefixlen=net.prefixlen)
        except Exception as e:  # noqa: BLE001
            if _code(e) != errno.EEXIST:
                raise
        ipr.link("set", index=index, state="up")


def ensure_links_rtnl(store: Store, net) -> None:
    """The same with engine.network.rtnl, as ensure_network now does it."""
    with Rtnl() as rt:
        index = rt.link_index(net.bridge)
        rt.set_link(index, alias=f"{store.owner} network={net.name}")
        try:
            rt.add_address(index, net.gateway, net.prefixlen)
        except FileExistsError:
            pass
        rt.set_link(index, up=True)


def attach_pyroute2(store: Store, net, att, netns_fd: int) -> None:
    """bridge.attach's netlink part as it was, for an attachment with no port."""
    with bridge._ipr() as ipr:
        master = ipr.link_lookup(ifname=net.bridge)
        if not master:
            raise NetworkError(f"bridge {net.bridge} is missing")
        pair = dict(ifname=att.veth, kind="veth",
                    peer={"ifname": att.ifname, "address": att.mac, "net_ns_fd": netns_fd})
        try:
            ipr.link("add", **pair)
        except Exception as e:  # noqa: BLE001
            if _code(e) != errno.EEXIST:
                raise
            delete_link_pyroute2(att.veth)
            ipr.link("add", **pair)
        index = ipr.link_lookup(ifname=att.veth)[0]
        ipr.link("set", index=index, master=master[0], state="up",
                 ifalias=f"{store.owner} container={att.container_id[:12]} network={net.name}")

    def inside() -> None:
        with bridge._ipr() as ipr:
            ipr.link("set", index=1, state="up")
            eth0 = ipr.link_lookup(ifname=att.ifname)[0]
            ipr.addr("add", index=eth0, address=att.address, prefixlen=att.prefixlen)
            ipr.link("set", index=eth0, state="up")
            if not net.internal and att.default_route:
                ipr.route("add", dst="0.0.0.0/0", gateway=att.gateway, oif=eth0)
    try:
        bridge._in_netns(netns_fd, inside)
    except Exception:
        delete_link_pyroute2(att.veth)
        raise


# ---- the runs ---------------------------------------------------------------------------------------

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
        "attach, rtnl (no port)", "attach, pyroute2 (no port)",
        "ensure links, rtnl", "ensure links, pyroute2",
        "ip link del, rtnl", "ip link del, pyroute2",
        "shell: 5 x ip (attach)", "shell: ip link del")}
    try:
        bridge.ensure_network(store, net)
        with bridge._ipr():     # pyroute2 imported and warm before anything is timed (0.2-0.3 s)
            pass
        for i in range(-1, args.runs):      # run -1: a warm-up, not counted
            def keep(row: str, started: float, i: int = i) -> None:
                if i >= 0:
                    rows[row].append(time.perf_counter() - started)
            for name in (NS, NS_NEW, NS_OLD):
                sh("ip", "netns", "add", name)
            try:
                fd = os.open(f"/run/netns/{NS}", os.O_RDONLY | os.O_CLOEXEC)
                ports = [ipam.parse_publish("0:80")] if i % 2 else []
                t = time.perf_counter()
                att = ipam.lease(store, net, f"{i + 1:064d}", name=f"c{i}", ports=ports)
                keep("lease", t)
                t = time.perf_counter()
                bridge.ensure_network(store, net)
                keep("ensure_network (again)", t)
                t = time.perf_counter()
                bridge.attach(store, net, att, netns_fd=fd)
                keep("attach + 1 port" if ports else "attach", t)
                os.close(fd)
                t = time.perf_counter()
                bridge.teardown(store, att)
                keep("teardown + 1 port" if ports else "teardown", t)

                # New and old netlink clients side by side, each in a fresh namespace, the order alternating.
                fd = os.open(f"/run/netns/{NS_NEW}", os.O_RDONLY | os.O_CLOEXEC)
                old_fd = os.open(f"/run/netns/{NS_OLD}", os.O_RDONLY | os.O_CLOEXEC)
                new = ipam.lease(store, net, f"a{i + 1:063d}", name=f"n{i}")
                old = ipam.lease(store, net, f"b{i + 1:063d}", name=f"o{i}")
                ways = [("rtnl", lambda: bridge.attach(store, net, new, netns_fd=fd),
                         lambda: ensure_links_rtnl(store, net), lambda: bridge._delete_link(new.veth)),
                        ("pyroute2", lambda: attach_pyroute2(store, net, old, old_fd),
                         lambda: ensure_links_pyroute2(store, net), lambda: delete_link_pyroute2(old.veth))]
                if i % 2:
                    ways.reverse()
                for name, attach, ensure, _delete in ways:
                    t = time.perf_counter()
                    attach()
                    keep(f"attach, {name} (no port)", t)
                    t = time.perf_counter()
                    ensure()
                    keep(f"ensure links, {name}", t)
                for name, _attach, _ensure, delete in ways:
                    t = time.perf_counter()
                    assert delete()
                    keep(f"ip link del, {name}", t)
                for a in (new, old):
                    ipam.release(store, a)
                os.close(fd)
                os.close(old_fd)

                # The shell twins, same addresses.
                veth = "vclbenchsh"
                t = time.perf_counter()
                sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", att.mac, "netns", NS)
                sh("ip", "link", "set", veth, "master", net.bridge, "up")
                sh("ip", "-n", NS, "addr", "add", f"{att.address}/{att.prefixlen}", "dev", "eth0")
                sh("ip", "-n", NS, "link", "set", "eth0", "up")
                sh("ip", "-n", NS, "route", "add", "default", "via", net.gateway)
                keep("shell: 5 x ip (attach)", t)
                t = time.perf_counter()
                sh("ip", "link", "del", veth)
                keep("shell: ip link del", t)
            finally:
                for name in (NS, NS_NEW, NS_OLD):
                    subprocess.run(["ip", "netns", "del", name], capture_output=True)
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
        print(f"  {name:28} {ms(samples)}")
    print("pyroute2 / rtnl, ratio of medians:")
    for label, what in (("attach (no port)", "attach, {} (no port)"), ("ensure links", "ensure links, {}"),
                        ("ip link del", "ip link del, {}")):
        old, new = rows[what.format("pyroute2")], rows[what.format("rtnl")]
        if old and new:
            print(f"  {label:28} {statistics.median(old) / statistics.median(new):5.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
