#!/usr/bin/env python3
"""How soon things happen: the wall-clock figures the test suite does not
assert (a busy machine would fail them), measured here as medians over many
runs, side by side with a baseline in the same run.

    sudo .venv/bin/python bench/timings.py [--runs N] [--quick]

a. ``container-lab --help`` (``python -m tui.launcher --help``), from
   posix_spawn to waitpid, interleaved with ``python -c pass`` and
   ``python -m engine.cli --help``, bytecode caches as a pip install leaves
   them (``PYTHONDONTWRITEBYTECODE`` unset, one warm-up run each).
   Target: a median of at most 500 ms.
b. one ``engine.netinfo.read`` of a loopback-only container, interleaved with
   ``nsenter -t PID -n ip -j addr``. Target: a median of at most 50 ms.
c. events: a container started through ``Client().run`` (``true``, ``--rm``)
   on a thread; from that call until it returns (the container has started),
   until its ``started``, ``exited`` and ``removed`` events reach a
   ``Client().subscribe`` subscription, and until a running ``container-lab
   events --follow`` prints its ``started`` line. Targets, after ``run``
   returned: at most 1.5 s for the line, 2 s for ``removed``.
d. a changed command line in ``observe.snapshot``, polled every 10 ms: after
   an exec (noticed at once: the process's name and argument addresses in
   /proc/PID/stat change), against argv rewritten in place (seen only at the
   next timed re-read, :data:`engine.observe.REFRESH_FIRST` +-25 % after the
   process was first seen).

Everything it makes is removed at the end, on Ctrl-C and SIGTERM too: its
containers, its supervisor, its cgroup parent and its state under
CONTAINER_LAB_ROOT=/tmp/clab-timings (``--keep-root`` keeps the built image).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_ROOT = Path("/tmp/clab-timings")
LOCK_FILE = Path("/tmp/clab-bench.lock")           # shared with the other benchmarks: never two at once
CGROUP_PARENT = "clab-timings"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, begin, clean_engine, percentile, run_meta, use_engine_root  # noqa: E402

# Before the engine is imported: never touch a learner's containers or cgroups.
use_engine_root(BENCH_ROOT, CGROUP_PARENT)

PREFIX = "timebench-"
_devnull = -1


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples) if samples else math.nan,
            "p95": percentile(samples, 0.95), "max": max(samples, default=math.nan), "n": len(samples)}


def spawn_wait(argv: list[str], env: dict | None = None) -> float:
    """Run ``argv`` in the checkout with stdout on /dev/null; its wall time in
    ms (posix_spawn to waitpid). Raises on a non-zero exit."""
    global _devnull
    if _devnull < 0:
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    path = shutil.which(argv[0]) or argv[0]
    cwd = os.getcwd()
    os.chdir(REPO)                                  # python -m finds the checkout's packages
    try:
        t = time.perf_counter()
        pid = os.posix_spawn(path, argv, env or os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, _devnull, 0), (os.POSIX_SPAWN_DUP2, _devnull, 1)], setpgroup=0)
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter() - t) * 1000
    finally:
        os.chdir(cwd)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} exited with {os.waitstatus_to_exitcode(status)}")
    return elapsed


def interleaved(rows: dict, runs: int) -> dict[str, list[float]]:
    """Each row (label -> function returning ms) once per round, the order
    rotating, so the noise of a shared machine falls on every row alike."""
    samples: dict[str, list[float]] = {label: [] for label in rows}
    labels = list(rows)
    for i in range(runs):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            samples[label].append(rows[label]())
    return samples


# -- (a) container-lab --help -------------------------------------------------------------

def bench_help(runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")}
    py = sys.executable
    rows = {"`python -c pass`": lambda: spawn_wait([py, "-c", "pass"], env),
            "`container-lab --help` (python -m tui.launcher --help)":
                lambda: spawn_wait([py, "-m", "tui.launcher", "--help"], env),
            "`python -m engine.cli --help`": lambda: spawn_wait([py, "-m", "engine.cli", "--help"], env)}
    for row in rows.values():                       # warm the .pyc files
        row()
    return {k: stats(v) for k, v in interleaved(rows, runs).items()}


# -- (b) one network read -----------------------------------------------------------------

def bench_network(pid: int, runs: int) -> dict:
    from engine import netinfo

    def read() -> float:
        t = time.perf_counter()
        netinfo.read(pid)
        return (time.perf_counter() - t) * 1000

    read()                                          # pyroute2 imported
    rows = {"`engine.netinfo.read`": read,
            "`nsenter -t PID -n ip -j addr`": lambda: spawn_wait(["nsenter", "-t", str(pid), "-n", "ip", "-j",
                                                                   "addr"])}
    return {k: stats(v) for k, v in interleaved(rows, runs).items()}


# -- (c) events ---------------------------------------------------------------------------

def bench_events(client, runs: int) -> dict:
    """From the call of ``Client().run`` (made on a thread of its own, so that
    this one sees each event as it arrives) to each event."""
    import threading

    from engine.client import Client
    from engine.spec import ContainerConfig

    name = PREFIX + "ev"
    rows = {"returned": "`Client().run` returns (the container has started)",
            "sub:started": "subscription: `started`", "follow": "`events --follow` prints `started`",
            "sub:exited": "subscription: `exited`", "sub:removed": "subscription: `removed`"}
    samples: dict[str, list[float]] = {label: [] for label in rows.values()}
    follower = subprocess.Popen([sys.executable, "-m", "engine.cli", "events", "--follow", "--since",
                                 str(client.cursor()), "--filter", "kind=started", "--filter", f"name={name}"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, bufsize=0)
    buffered = b""
    null = os.open(os.devnull, os.O_RDWR)
    runner = Client()

    def run(seen: dict) -> None:
        attached = runner.run(ContainerConfig(image="lab", name=name, cmd=["true"], remove=True), stdio=[null, null])
        seen["returned"] = time.perf_counter()
        attached.wait()
        attached.close()

    try:
        with client.subscribe(after=client.cursor()) as sub:
            for n in range(runs + 1):               # the first round warms up
                seen: dict[str, float] = {}
                called = time.perf_counter()
                thread = threading.Thread(target=run, args=(seen,))
                thread.start()
                while len(seen) < len(rows) and time.perf_counter() < called + 30:
                    ready = [sub] if sub.pending() else select.select([sub, follower.stdout], [], [], 0.5)[0]
                    if sub in ready:
                        event = sub.get(timeout=0)
                        if event and event.get("name") == name and f"sub:{event['kind']}" in rows:
                            seen.setdefault(f"sub:{event['kind']}", time.perf_counter())
                    if follower.stdout in ready:
                        buffered += os.read(follower.stdout.fileno(), 65536)
                        if b"\n" in buffered:
                            buffered = buffered.split(b"\n", 1)[1]
                            seen.setdefault("follow", time.perf_counter())
                thread.join(30)
                if len(seen) < len(rows):
                    raise RuntimeError(f"not everything came within 30 s: only {sorted(seen)}")
                for key, label in rows.items():
                    if n:
                        samples[label].append((seen[key] - called) * 1000)
    finally:
        follower.kill()
        follower.wait()
        os.close(null)
    return {k: stats(v) for k, v in samples.items()}


# -- (d) a changed command line in a snapshot -----------------------------------------------

def bench_observe(client, name: str, runs: int, rewrites: int) -> dict:
    from engine import observe

    record = client.inspect(name)
    cgroup = client._cgroup_of(record)
    root = f"/proc/{record['pid']}/root"

    def processes() -> list[dict]:
        return observe.snapshot(record, cgroup=cgroup, network=False)["processes"]

    def until(test, what: str, timeout: float = 30.0) -> tuple[dict, float]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            found = [p for p in processes() if test(p)]
            if found:
                return found[0], time.perf_counter()
            time.sleep(0.01)
        raise RuntimeError(f"no {what} in a snapshot within {timeout} s")

    exec_ms, rewrite_ms = [], []
    for n in range(runs):
        fifo = f"/tmp/go{n}"
        os.mkfifo(root + fifo)
        argv = ["sh", "-c", f"read _ < {fifo}; exec sleep 100{n}"]
        client.exec(name, argv, detach=True)
        shell, _ = until(lambda p: p["cmd"] == argv, "shell")
        with open(root + fifo, "w") as f:
            f.write("\n")
        released = time.perf_counter()
        _, seen = until(lambda p: p["host_pid"] == shell["host_pid"] and p["cmd"][0] == "sleep", "exec")
        exec_ms.append((seen - released) * 1000)
    for n in range(rewrites):
        client.exec(name, ["sleep", f"200{n}"], detach=True)
        proc, _ = until(lambda p: p["cmd"] == ["sleep", f"200{n}"], "sleep")
        with open(f"/proc/{proc['host_pid']}/stat", "rb") as f:
            arg_start = int(f.read().rsplit(b")", 1)[1].split()[45])
        with open(f"/proc/{proc['host_pid']}/mem", "r+b", buffering=0) as mem:
            mem.seek(arg_start)
            mem.write(b"zzzzz")                     # over "sleep": the same length, no exec
        written = time.perf_counter()
        _, seen = until(lambda p: p["host_pid"] == proc["host_pid"] and p["cmd"][0] == "zzzzz", "rewrite")
        rewrite_ms.append((seen - written) * 1000)
    return {"after an exec": stats(exec_ms),
            f"argv rewritten in place (REFRESH_FIRST = {observe.REFRESH_FIRST:g} s)": stats(rewrite_ms)}


# -- output -----------------------------------------------------------------------------

def table(title: str, rows: dict[str, dict], base_label: str | None, target: tuple[str, float] | None) -> list[str]:
    head = "| what | median ms | p95 ms | max ms | runs |" + (f" ratio to {base_label} |" if base_label else "")
    lines = [f"### {title}", "", head, "|---|---:|---:|---:|---:|" + ("---:|" if base_label else "")]
    base = next(iter(rows.values()))["median"]
    for label, s in rows.items():
        lines.append(f"| {label} | {s['median']:.1f} | {s['p95']:.1f} | {s['max']:.1f} | {s['n']} |"
                     + (f" {s['median'] / base:.2f}x |" if base_label else ""))
    if target:
        label, limit = target
        median = rows[label]["median"]
        lines += ["", f"Target: a median of at most {limit:g} ms for {label}: "
                      f"{'met' if median <= limit else 'NOT met'} ({median:.1f} ms)."]
    return lines + [""]


TARGETS = {"help": ("`container-lab --help` (python -m tui.launcher --help)", 500.0),
           "network": ("`engine.netinfo.read`", 50.0)}


def report(meta: dict, results: dict) -> str:
    out = [f"## Timings, {meta['date']}", "",
           f"{meta['machine']}; engine at {meta['git']}; load average {meta['load_before']:.2f} at the start, "
           f"{meta.get('load_after', math.nan):.2f} at the end.", "", f"```sh\n{meta['command']}\n```", ""]
    if "help" in results:
        out += table(f"(a) exec to exit, {meta['runs']} interleaved rounds", results["help"], "`python -c pass`",
                     TARGETS["help"])
    if "network" in results:
        out += table(f"(b) one network read of a loopback-only container, {meta['runs'] * 3} interleaved rounds",
                     results["network"], "netinfo.read", TARGETS["network"])
    if "events" in results:
        ev = results["events"]
        out += table(f"(c) from the call of `Client().run` (`true`, `--rm`) to each event, {meta['runs']} runs",
                     ev, "`run` returning", None)
        first = next(iter(ev.values()))["median"]
        late = {label: round(row["median"] - first, 1) + 0.0 for label, row in list(ev.items())[1:]}
        follow, removed = late["`events --follow` prints `started`"], late["subscription: `removed`"]
        out += [f"After `run` returned (medians): the `--follow` line {follow:.1f} ms (target: at most 1500 ms, "
                f"{'met' if follow <= 1500 else 'NOT met'}), `removed` {removed:.1f} ms (target: at most 2000 ms, "
                f"{'met' if removed <= 2000 else 'NOT met'}).", ""]
    if "observe" in results:
        out += table("(d) from the change to the first `observe.snapshot` (polled every 10 ms) that shows it",
                     results["observe"], "the exec", None)
    return "\n".join(out)


# -- clean-up ---------------------------------------------------------------------------

def cleanup(keep_root: bool, *, final: bool = True) -> None:
    if final:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    log("cleaning up ...")
    clean_engine(BENCH_ROOT, CGROUP_PARENT, keep_root=keep_root, log=log)




def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="rounds of (a), (c) and (d), 3x that of (b) "
                                                           "(default 30; 10 with --quick)")
    ap.add_argument("--rewrites", type=int, default=None, help="in-place argv rewrites in (d), about 1 s each "
                                                               "(default 10; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer runs: a smoke test")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    ap.add_argument("--json", type=Path, help="write the results to this file")
    ap.add_argument("--keep-root", action="store_true", help=f"keep {BENCH_ROOT} (the built lab image)")
    args = ap.parse_args()
    args.runs = args.runs or (10 if args.quick else 30)
    args.rewrites = args.rewrites or (3 if args.quick else 10)
    lock = begin(LOCK_FILE, log)
    if lock is None:
        return 2

    meta = run_meta(runs=args.runs)
    results: dict = {}
    code = 0
    try:
        cleanup(keep_root=True, final=False)        # leftovers of a run that was killed hard
        from engine.client import Client
        from engine.spec import ContainerConfig

        client = Client()
        log("(a) container-lab --help ...")
        results["help"] = bench_help(args.runs)
        log("starting a container ...")
        client.run(ContainerConfig(image="lab", cmd=["sleep", "1000"], name=PREFIX + "box", detach=True),
                   attach=False)
        log("(b) one network read ...")
        results["network"] = bench_network(client.inspect(PREFIX + "box")["pid"], args.runs * 3)
        log("(c) events ...")
        results["events"] = bench_events(client, args.runs)
        log("(d) a changed command line in a snapshot ...")
        results["observe"] = bench_observe(client, PREFIX + "box", args.runs, args.rewrites)
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
