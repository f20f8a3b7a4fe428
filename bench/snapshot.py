#!/usr/bin/env python3
"""Snapshot benchmark: what the lab panel's live view of a busy container
costs, against getting the same facts with ps, lsns, findmnt and ip, side by
side in ONE run.

    sudo .venv/bin/python bench/snapshot.py [--runs N] [--quick]

It starts (through ``engine.client.Client``, the real engine) a container
running 500 processes -- ``sh`` and 499 ``sleep 1000`` -- and two small ones
(``sleep 1000``; ``sh`` with two ``sleep`` children), then measures:

a. ``engine.observe.snapshot`` of the 500-process container, in this process,
   ``--runs`` times (default 200): median and p95, with and without the
   network section, and its parts (processes, network); ``Client().snapshot``
   (which adds two requests to the supervisor: inspect and ps); the first
   snapshot in a fresh Python process (imports and cold caches included).
b. a 4 Hz refresh of the three containers through ``Client().snapshot`` for
   ``--seconds`` (default 10): this process's CPU time (getrusage: user +
   system, all threads) as a percentage of one core, and the supervisor's CPU
   time for the same period beside it. Then the same with three 500-process
   containers (``--quick`` leaves that out).
c. the same facts from the usual tools, each command run ``--tool-runs``
   times (default 30), interleaved: ``nsenter -t PID -p -m ps -e -o ...``
   (processes as the container sees them), ``ps -o ... -p <cgroup.procs>``
   (the same processes on the host), ``lsns -J -p PID``, ``findmnt -J -N PID``,
   ``nsenter -t PID -n ip -j addr`` and ``ip -j route``; the total of the
   commands against one snapshot, as a ratio.
d. one network read three ways: ``engine.netinfo.read`` (pyroute2's message
   classes on a plain netlink socket, on a short-lived thread in the
   namespace), the same thread with pyroute2's ``IPRoute`` (an asyncio loop
   per object) and ``nsenter -n ip -j addr`` + ``ip -j route``.

Everything it makes is removed at the end, on Ctrl-C and SIGTERM too: its
containers, its supervisor, its cgroup parent and its state under
CONTAINER_LAB_ROOT=/tmp/clab-snap (``--keep-root`` keeps the built image).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_ROOT = Path("/tmp/clab-snap")
LOCK_FILE = Path("/tmp/clab-bench.lock")           # shared with bench/startup.py: never both at once
CGROUP_PARENT = "clab-snap"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, begin, clean_engine, percentile, run_meta, use_engine_root  # noqa: E402

# Before the engine is imported: never touch a learner's containers or cgroups.
use_engine_root(BENCH_ROOT, CGROUP_PARENT)

PREFIX = "snapbench-"
BIG_PROCS = 500
TOOLS = ("procps", "util-linux", "iproute2")        # ps; lsns, findmnt, nsenter; ip


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples) if samples else math.nan,
            "p95": percentile(samples, 0.95), "n": len(samples)}


def cpu_seconds() -> float:
    """This process's CPU time, every thread: user + system."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu_seconds(pid: int) -> float:
    """Another process's CPU time (utime + stime from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        rest = f.read().rsplit(b")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


# -- set-up ------------------------------------------------------------------------

def ensure_packages() -> None:
    missing = [pkg for pkg, exe in (("procps", "ps"), ("util-linux", "lsns"), ("util-linux", "findmnt"),
                                    ("util-linux", "nsenter"), ("iproute2", "ip")) if shutil.which(exe) is None]
    if missing:
        log(f"installing {' '.join(sorted(set(missing)))} ...")
        subprocess.run(["apt-get", "install", "-y", *sorted(set(missing))], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def start_container(client, name: str, cmd: list[str], expect: int) -> dict:
    """Run a detached container and wait until ``expect`` processes are in it."""
    from engine.spec import ContainerConfig

    client.run(ContainerConfig(image="lab", cmd=cmd, name=name, detach=True), attach=False)
    deadline = time.monotonic() + 60
    while True:
        record = client.inspect(name)
        cgroup = client._cgroup_of(record)
        from engine import observe
        have = len(observe.members(cgroup)) if cgroup is not None else 0
        if have >= expect:
            return record
        if time.monotonic() > deadline or record.get("status") != "running":
            raise RuntimeError(f"{name}: {have} of {expect} processes after 60 s ({record.get('status')})")
        time.sleep(0.1)


def busy_cmd(n: int) -> list[str]:
    """``sh`` and n - 1 sleeping children: n processes."""
    return ["sh", "-c", f"for i in $(seq {n - 1}); do sleep 1000 & done; wait"]


# -- (a) snapshots in this process -------------------------------------------------

def interleaved(rows: dict, runs: int, every: dict | None = None) -> dict[str, list[float]]:
    """Time each of ``rows`` (label -> function) once per round, ``runs``
    rounds, the order rotating, so the noise of a shared machine falls on
    every row alike. ``every``: label -> n, to run a slow row every n-th round."""
    samples: dict[str, list[float]] = {label: [] for label in rows}
    labels = list(rows)
    for i in range(runs):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            if every and i % every.get(label, 1):
                continue
            t = time.perf_counter()
            rows[label]()
            samples[label].append((time.perf_counter() - t) * 1000)
    return samples


def bench_snapshot(client, name: str, runs: int) -> dict:
    from engine import netinfo, observe
    from engine.observe.watch import _Watch

    record = client.inspect(name)
    cgroup = client._cgroup_of(record)
    pid = record["pid"]
    snap = observe.snapshot(record, cgroup=cgroup)          # warms the caches, imports pyroute2
    assert len(snap["processes"]) >= BIG_PROCS, len(snap["processes"])
    assert snap["network"] is not None, snap["network_error"]
    pids = [pid] + sorted(p for p in observe.members(cgroup) if p != pid)
    watch = _Watch()
    observe.processes(pids, watch=watch)
    cpu0 = cpu_seconds()
    for _ in range(runs):
        observe.snapshot(record, cgroup=cgroup)
    cpu_per_snapshot = (cpu_seconds() - cpu0) / runs * 1000
    rows = {
        "snapshot": lambda: observe.snapshot(record, cgroup=cgroup),
        "snapshot, no network": lambda: observe.snapshot(record, cgroup=cgroup, network=False),
        f"processes only ({len(pids)})": lambda: observe.processes(pids, watch=watch),
        "processes only, nothing kept (every file read afresh)": lambda: observe.processes(pids),
        "network only (netinfo.read)": lambda: netinfo.read(pid),
        "Client().snapshot (+ inspect and ps requests)": lambda: client.snapshot(name),
    }
    samples = interleaved(rows, runs, every={"processes only, nothing kept (every file read afresh)": 10})
    watch.close()
    return {"rows": {k: stats(v) for k, v in samples.items()}, "cpu_ms_per_snapshot": cpu_per_snapshot,
            "processes": len(snap["processes"])}


def cold_snapshot(name: str) -> dict:
    """The first snapshot in a fresh interpreter: what ``container-lab top`` pays."""
    code = (
        "import time, json, sys\n"
        "t0 = time.perf_counter()\n"
        "from engine.client import Client\n"
        "from engine import observe\n"
        "c = Client(autostart=False); rec = c.inspect(sys.argv[1]); cg = c._cgroup_of(rec)\n"
        "t1 = time.perf_counter()\n"
        "import pyroute2.netlink.rtnl.marshal\n"
        "t2 = time.perf_counter()\n"
        "s = observe.snapshot(rec, cgroup=cg)\n"
        "t3 = time.perf_counter()\n"
        "s2 = observe.snapshot(rec, cgroup=cg)\n"
        "t4 = time.perf_counter()\n"
        "print(json.dumps({'engine_import_ms': (t1 - t0) * 1000, 'pyroute2_import_ms': (t2 - t1) * 1000,\n"
        "                  'first_snapshot_ms': (t3 - t2) * 1000, 'second_snapshot_ms': (t4 - t3) * 1000,\n"
        "                  'network_ok': s['network'] is not None}))\n")
    samples = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, cwd=REPO,
                             check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        samples.append(json.loads(out.stdout))
    return {k: statistics.median(s[k] for s in samples) for k in samples[0] if k != "network_ok"}


# -- (b) a 4 Hz refresh loop ---------------------------------------------------------

def refresh_loop(client, names: list[str], seconds: float, hz: float = 4.0, *, direct: bool = False,
                 network: bool = True) -> dict:
    """Snapshot every container of ``names`` ``hz`` times a second. ``direct``:
    call ``observe.snapshot`` with the records, cgroups and other containers'
    PIDs looked up once (what a client could keep between refreshes) instead
    of ``Client().snapshot``, which asks the supervisor for them every time;
    ``network``: False leaves the network section out (direct only)."""
    from engine import observe

    supervisor = int(Path(client.state_dir, "supervisor.pid").read_text().split()[0]) \
        if Path(client.state_dir, "supervisor.pid").exists() else None
    records = {name: client.inspect(name) for name in names}
    cgroups = {name: client._cgroup_of(records[name]) for name in names}
    if direct:
        def take(name):
            others = {n: r["pid"] for n, r in records.items() if n != name}
            return observe.snapshot(records[name], cgroup=cgroups[name], others=others, network=network)
    else:
        take = client.snapshot
    ticks, late, failures = 0, 0, 0
    sup0 = proc_cpu_seconds(supervisor) if supervisor else None
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    next_tick = wall0
    while time.monotonic() - wall0 < seconds:
        for name in names:
            snap = take(name)
            failures += (network and snap["network"] is None) or not snap["processes"]
        ticks += 1
        next_tick += 1 / hz
        pause = next_tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
    wall = time.monotonic() - wall0
    cpu = cpu_seconds() - cpu0
    out = {"seconds": wall, "refreshes": ticks, "snapshots": ticks * len(names), "late_ticks": late,
           "failed_snapshots": failures, "cpu_percent": cpu / wall * 100,
           "cpu_ms_per_refresh": cpu / ticks * 1000}
    if supervisor:
        with contextlib.suppress(OSError):
            out["supervisor_cpu_percent"] = (proc_cpu_seconds(supervisor) - sup0) / wall * 100
    return out


# -- (c) and (d): the same facts from the usual tools --------------------------------

_devnull = -1


def spawn_wait(argv: list[str]) -> float:
    """Run ``argv`` with stdout on /dev/null; its wall time in ms (posix_spawn
    to waitpid). Raises on a non-zero exit."""
    global _devnull
    if _devnull < 0:
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    path = shutil.which(argv[0]) or argv[0]
    t = time.perf_counter()
    pid = os.posix_spawn(path, argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, _devnull, 0), (os.POSIX_SPAWN_DUP2, _devnull, 1)], setpgroup=0)
    _, status = os.waitpid(pid, 0)
    elapsed = (time.perf_counter() - t) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited with {os.waitstatus_to_exitcode(status)}")
    return elapsed


def tool_commands(pid: int, pids: list[int]) -> dict[str, list[str]]:
    fields = "pid,ppid,user,stat,lstart,args"
    return {
        "nsenter -t PID -p -m ps -e -o pid,ppid,user,stat,lstart,args": [
            "nsenter", "-t", str(pid), "-p", "-m", "ps", "-e", "-o", fields],
        "ps -o pid,ppid,user,stat,lstart,args -p <cgroup.procs> (host PIDs)": [
            "ps", "-o", fields, "-p", ",".join(map(str, pids))],
        "lsns -J -p PID": ["lsns", "-J", "-p", str(pid)],
        "findmnt -J -N PID": ["findmnt", "-J", "-N", str(pid)],
        "nsenter -t PID -n ip -j addr": ["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr"],
        "nsenter -t PID -n ip -j route": ["nsenter", "-t", str(pid), "-n", "ip", "-j", "route"],
    }


def bench_tools(client, name: str, runs: int) -> dict:
    from engine import observe

    record = client.inspect(name)
    cgroup = client._cgroup_of(record)
    pid = record["pid"]
    pids = observe.members(cgroup)
    commands = tool_commands(pid, pids)
    samples: dict[str, list[float]] = {label: [] for label in commands}
    samples["one snapshot (observe.snapshot)"] = []
    totals = []
    for _ in range(runs):                                   # interleaved: noise falls on every row alike
        total = 0.0
        for label, argv in commands.items():
            ms = spawn_wait(argv)
            samples[label].append(ms)
            total += ms
        totals.append(total)
        t = time.perf_counter()
        observe.snapshot(record, cgroup=cgroup)
        samples["one snapshot (observe.snapshot)"].append((time.perf_counter() - t) * 1000)
    rows = {k: stats(v) for k, v in samples.items()}
    rows["all six commands (sum per round)"] = stats(totals)
    return rows


def iproute_read(pid: int) -> dict:
    """The road not taken: the same thread-and-setns read, with pyroute2's IPRoute."""
    from pyroute2 import IPRoute

    from engine.syscalls import CLONE_NEWNET, Syscalls

    out: dict = {}

    def work():
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            Syscalls().setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
        with IPRoute(groups=0) as ipr:
            out["n"] = (len(ipr.link("dump")), len(ipr.addr("dump")), len(ipr.route("dump")))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return out


def bench_network(client, name: str, runs: int) -> dict:
    from engine import netinfo

    pid = client.inspect(name)["pid"]
    iproute_read(pid)
    samples: dict[str, list[float]] = {"engine.netinfo.read (pyroute2 messages, plain socket)": [],
                                       "same thread with pyroute2 IPRoute": [],
                                       "nsenter -n ip -j addr + ip -j route": []}
    ip_addr = ["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr"]
    ip_route = ["nsenter", "-t", str(pid), "-n", "ip", "-j", "route"]
    cpu = {"netinfo": 0.0, "iproute": 0.0}
    for _ in range(runs):
        c, t = cpu_seconds(), time.perf_counter()
        netinfo.read(pid)
        samples["engine.netinfo.read (pyroute2 messages, plain socket)"].append((time.perf_counter() - t) * 1000)
        cpu["netinfo"] += cpu_seconds() - c
        c, t = cpu_seconds(), time.perf_counter()
        iproute_read(pid)
        samples["same thread with pyroute2 IPRoute"].append((time.perf_counter() - t) * 1000)
        cpu["iproute"] += cpu_seconds() - c
        samples["nsenter -n ip -j addr + ip -j route"].append(spawn_wait(ip_addr) + spawn_wait(ip_route))
    return {"rows": {k: stats(v) for k, v in samples.items()},
            "cpu_ms": {k: v / runs * 1000 for k, v in cpu.items()}}


# -- output ---------------------------------------------------------------------------

def table(title: str, rows: dict[str, dict], base: float, base_label: str) -> list[str]:
    lines = [f"### {title}", "", f"| what | median ms | p95 ms | ratio to {base_label} |", "|---|---:|---:|---:|"]
    for label, s in rows.items():
        lines.append(f"| {label} | {s['median']:.2f} | {s['p95']:.2f} | {s['median'] / base:.2f}x |")
    return lines + [""]


def report(meta: dict, results: dict) -> str:
    out = [f"## Snapshot benchmark, {meta['date']}", "",
           f"{meta['machine']}; engine at {meta['git']}; load average {meta['load_before']:.2f} at the start, "
           f"{meta.get('load_after', math.nan):.2f} at the end.", "", f"```sh\n{meta['command']}\n```", ""]
    if "snapshot" in results:
        a = results["snapshot"]
        base = a["rows"]["snapshot"]["median"]
        out += table(f"(a) one container, {a['processes']} processes: in-process, {meta['runs']} interleaved "
                     "rounds (the slow row every 10th)", a["rows"], base, "snapshot median")
        out += [f"CPU time per snapshot ({meta['runs']} back to back): {a['cpu_ms_per_snapshot']:.2f} ms.", ""]
    if "cold" in results:
        c = results["cold"]
        out += ["A fresh interpreter (median of 5): importing engine and reading the record "
                f"{c['engine_import_ms']:.0f} ms, importing pyroute2 {c['pyroute2_import_ms']:.0f} ms, "
                f"first snapshot {c['first_snapshot_ms']:.1f} ms, second {c['second_snapshot_ms']:.1f} ms.", ""]
    for key, title in (("refresh", "three containers (500 + 1 + 3 processes)"),
                       ("refresh_stress", f"three containers of {BIG_PROCS} processes each")):
        if key not in results:
            continue
        out += [f"### (b) 4 Hz refresh of {title}, {results[key]['seconds']:.0f} s each", "",
                "| snapshots through | refreshes | incomplete | late ticks | CPU, % of one core | "
                "CPU ms per refresh | supervisor CPU % |", "|---|---:|---:|---:|---:|---:|---:|"]
        for variant, label in ((key, "`Client().snapshot(name)`"),
                               (key + "_direct", "`observe.snapshot`, records and cgroups looked up once"),
                               (key + "_direct_nonet", "the same, `network=False`")):
            if variant in results:
                r = results[variant]
                out.append(f"| {label} | {r['refreshes']} | {r['failed_snapshots']} | {r['late_ticks']} | "
                           f"**{r['cpu_percent']:.1f}** | {r['cpu_ms_per_refresh']:.1f} | "
                           f"{r.get('supervisor_cpu_percent', math.nan):.1f} |")
        out.append("")
    if "tools" in results:
        rows = results["tools"]
        base = rows["one snapshot (observe.snapshot)"]["median"]
        out += table(f"(c) the same facts from the usual tools, {meta['tool_runs']} interleaved rounds",
                     rows, base, "snapshot median")
    if "network" in results:
        n = results["network"]
        base = n["rows"]["engine.netinfo.read (pyroute2 messages, plain socket)"]["median"]
        out += table(f"(d) one network read, {meta['tool_runs']} interleaved rounds", n["rows"], base,
                     "netinfo.read median")
        out += [f"CPU per read: netinfo {n['cpu_ms']['netinfo']:.2f} ms, IPRoute {n['cpu_ms']['iproute']:.2f} ms.",
                ""]
    return "\n".join(out)


# -- clean-up ---------------------------------------------------------------------------

def cleanup(keep_root: bool, *, final: bool = True) -> None:
    """Remove every container of the bench root, its supervisor, its cgroup
    parent and (unless ``keep_root``) the root itself. ``final``: a second
    Ctrl-C no longer interrupts it."""
    if final:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    log("cleaning up ...")
    clean_engine(BENCH_ROOT, CGROUP_PARENT, keep_root=keep_root, log=log)




def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="snapshots per row in (a) (default 200; 50 with --quick)")
    ap.add_argument("--tool-runs", type=int, default=None, help="rounds in (c) and (d) (default 30; 10 with --quick)")
    ap.add_argument("--seconds", type=float, default=None, help="length of each 4 Hz loop (default 10; 5 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer runs, no 3 x 500 loop: a smoke test")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    ap.add_argument("--json", type=Path, help="write the results to this file")
    ap.add_argument("--keep-root", action="store_true", help=f"keep {BENCH_ROOT} (the built lab image)")
    args = ap.parse_args()
    args.runs = args.runs or (50 if args.quick else 200)
    args.tool_runs = args.tool_runs or (10 if args.quick else 30)
    args.seconds = args.seconds or (5.0 if args.quick else 10.0)
    lock = begin(LOCK_FILE, log)
    if lock is None:
        return 2

    meta = run_meta(runs=args.runs, tool_runs=args.tool_runs)
    results: dict = {}
    code = 0
    try:
        ensure_packages()
        cleanup(keep_root=True, final=False)        # leftovers of a run that was killed hard
        from engine.client import Client

        client = Client()
        log(f"starting a container of {BIG_PROCS} processes and two small ones ...")
        start_container(client, PREFIX + "big", busy_cmd(BIG_PROCS), BIG_PROCS)
        start_container(client, PREFIX + "sleep", ["sleep", "1000"], 1)
        start_container(client, PREFIX + "family", ["sh", "-c", "sleep 1000 & sleep 1001 & wait"], 3)
        log("(a) snapshots in this process ...")
        results["snapshot"] = bench_snapshot(client, PREFIX + "big", args.runs)
        results["cold"] = cold_snapshot(PREFIX + "big")
        log("(b) 4 Hz refresh of three containers ...")
        three = [PREFIX + "big", PREFIX + "sleep", PREFIX + "family"]
        results["refresh"] = refresh_loop(client, three, args.seconds)
        results["refresh_direct"] = refresh_loop(client, three, args.seconds, direct=True)
        results["refresh_direct_nonet"] = refresh_loop(client, three, args.seconds, direct=True, network=False)
        log("(c) ps, lsns, findmnt, ip ...")
        results["tools"] = bench_tools(client, PREFIX + "big", args.tool_runs)
        log("(d) one network read three ways ...")
        results["network"] = bench_network(client, PREFIX + "big", args.tool_runs)
        if not args.quick:
            log(f"(b) again with three containers of {BIG_PROCS} processes ...")
            for n in (2, 3):
                start_container(client, f"{PREFIX}big{n}", busy_cmd(BIG_PROCS), BIG_PROCS)
            bigs = [PREFIX + "big", PREFIX + "big2", PREFIX + "big3"]
            results["refresh_stress"] = refresh_loop(client, bigs, args.seconds)
            results["refresh_stress_direct"] = refresh_loop(client, bigs, args.seconds, direct=True)
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    finally:
        meta["load_after"] = os.getloadavg()[0]
        cleanup(args.keep_root)
    if results:
        text = report(meta, results)
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n")
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
