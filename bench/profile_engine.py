#!/usr/bin/env python3
"""Where the time of one ``Client().run(...)`` goes: a timeline per container.

    sudo .venv/bin/python bench/profile_engine.py [--runs 100] [--cold] [--cprofile FILE]

Starts its own supervisor (same CONTAINER_LAB_ROOT as bench/startup.py, in the
foreground) with timing wrappers put around the engine's functions at run
time -- the engine's code is not changed -- then runs ``--runs`` containers
(``true``, 64 MiB and 100 pids limits, ``--rm``) one after another and prints
the median of each segment:

* supervisor side: every wrapped method's wall time (nested: a parent
  includes its children);
* child side: each start stage of ``runtime.child_main``, stamped with
  CLOCK_MONOTONIC (the same clock in every process), so the segments between
  the client, the supervisor, the child and the container's exit line up.

``--cprofile FILE`` also runs the supervisor under cProfile (which slows the
Python parts) and prints its top functions.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import startup  # noqa: E402  (sets CONTAINER_LAB_ROOT & co. before the engine is imported)

REPO = startup.REPO

# Supervisor-side functions to time: (module, qualified name).
WRAP = [
    ("engine.supervisor", "Supervisor.handle"),
    ("engine.supervisor", "Supervisor.op_run"),
    ("engine.supervisor", "Supervisor.create"),
    ("engine.supervisor", "Supervisor.launch"),
    ("engine.supervisor", "Supervisor.start"),
    ("engine.supervisor", "Supervisor.stdio_for"),
    ("engine.supervisor", "Supervisor.fork_into"),
    ("engine.supervisor", "Supervisor.on_starting"),
    ("engine.supervisor", "Supervisor.on_exit"),
    ("engine.supervisor", "Supervisor.finish"),
    ("engine.supervisor", "Supervisor.check_limits"),
    ("engine.supervisor", "Supervisor.remove"),
    ("engine.supervisor", "Supervisor.remove_files"),
    ("engine.supervisor", "Supervisor.emit"),
    ("engine.supervisor", "Supervisor.unique_name"),
    ("engine.supervisor", "Supervisor.check_network_config"),
    ("engine.supervisor", "Supervisor.plug_in"),
    ("engine.supervisor", "Supervisor.unplug"),
    ("engine.supervisor", "Supervisor.new_netns"),
    ("engine.supervisor", "Supervisor.refresh_names"),
    ("engine.supervisor", "Supervisor.tidy_one"),
    ("engine.network.ipam", "lease"),
    ("engine.network.bridge", "attach"),
    ("engine.network.bridge", "teardown"),
    ("engine.supervisor", "_resolv_conf"),
    ("engine.container", "write_json_atomic"),
    ("engine.container", "process_start_time"),
    ("engine.container", "Container.save"),
    ("engine.images.store", "ImageStore.resolve"),
    ("engine.cgroups", "V1Driver.create"),
    ("engine.cgroups", "V2Driver.create"),
    ("engine.cgroups", "Cgroup.destroy"),
    ("engine.cgroups", "Cgroup.kill_all"),
    ("engine.cgroups", "Cgroup._remove"),
    ("engine.cgroups", "Cgroup.oom_killed"),
    ("engine.cgroups", "Cgroup.usage"),
    ("engine.cgroups", "V1Cgroup.usage"),
    ("engine.spec", "ContainerConfig.from_dict"),
    ("engine.spec", "ContainerConfig.validate"),
    ("shutil", "rmtree"),
]


# -- inside the supervisor process --------------------------------------------------

RUNS: list[dict] = []          # one per op_run: {"calls": {name: [ms...]}, "t": {...}, "stages": [...]}
CURRENT: dict | None = None


def _record(name: str, ms: float) -> None:
    if CURRENT is not None:
        CURRENT["calls"].setdefault(name, []).append(ms)


def _wrap_callable(fn, name):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            _record(name, (time.perf_counter() - t0) * 1000)
    wrapper.__wrapped_timer__ = True
    return wrapper


def install_wrappers() -> list[str]:
    import importlib

    import engine.runtime as rt
    import engine.supervisor as sup

    missing = []
    for modname, qual in WRAP:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            missing.append(f"{modname}.{qual}")
            continue
        owner, _, attr = qual.rpartition(".")
        target = getattr(mod, owner, None) if owner else mod
        fn = getattr(target, attr, None) if target is not None else None
        if fn is None:
            missing.append(f"{modname}.{qual}")
            continue
        wrapped = _wrap_callable(fn, qual)
        setattr(target, attr, wrapped)
        if not owner:       # a module-level function: rebind it wherever it was imported by name
            for m in list(sys.modules.values()):
                if getattr(m, "__name__", "").startswith("engine") and getattr(m, attr, None) is fn:
                    setattr(m, attr, wrapped)

    # Mark the boundaries of one run.
    op_run = sup.Supervisor.op_run

    def op_run_marked(self, *a, **kw):
        global CURRENT
        CURRENT = {"calls": {}, "t": {"op_run": time.perf_counter()}, "stages": []}
        RUNS.append(CURRENT)
        try:
            return op_run(self, *a, **kw)
        finally:
            CURRENT["t"]["op_run_done"] = time.perf_counter()
    sup.Supervisor.op_run = op_run_marked

    handle = sup.Supervisor.handle

    def handle_marked(self, *a, **kw):
        handle(self, *a, **kw)
        if CURRENT is not None and "op_run_done" in CURRENT["t"] and "reply_sent" not in CURRENT["t"]:
            CURRENT["t"]["reply_sent"] = time.perf_counter()
    sup.Supervisor.handle = handle_marked

    for hook in ("on_exit", "finish"):
        orig = getattr(sup.Supervisor, hook)

        def marked(self, *a, _orig=orig, _hook=hook, **kw):
            if CURRENT is not None:
                CURRENT["t"].setdefault(f"{_hook}_enter", time.perf_counter())
            try:
                return _orig(self, *a, **kw)
            finally:
                if CURRENT is not None:
                    CURRENT["t"].setdefault(f"{_hook}_done", time.perf_counter())
        setattr(sup.Supervisor, hook, marked)

    fork_into = sup.Supervisor.fork_into

    def fork_marked(self, *a, **kw):
        if CURRENT is not None:
            CURRENT["t"]["fork"] = time.perf_counter()
        return fork_into(self, *a, **kw)
    sup.Supervisor.fork_into = fork_marked

    # Child side: stamps ride back to the supervisor inside the transcript.
    child_main = rt.child_main

    def child_main_marked(*a, **kw):
        rt._bench_t_child = time.perf_counter()
        return child_main(*a, **kw)
    rt.child_main = child_main_marked

    begin = rt.Builder.begin

    def begin_marked(self, *a, **kw):
        begin(self, *a, **kw)
        self.t.stages[-1]["t_begin"] = time.perf_counter()
        if len(self.t.stages) == 1 or "t_child" not in self.t.stages[0]:
            self.t.stages[0]["t_child"] = getattr(rt, "_bench_t_child", None)
    rt.Builder.begin = begin_marked

    send = rt.send

    def send_marked(chan, message, *a, **kw):
        if isinstance(message, dict) and message.get("transcript"):
            message["transcript"][-1]["t_send"] = time.perf_counter()
        return send(chan, message, *a, **kw)
    for m in list(sys.modules.values()):      # each of the runtime's modules that sends holds its own name
        if getattr(m, "__name__", "").startswith("engine.runtime") and getattr(m, "send", None) is send:
            m.send = send_marked

    complete_start = sup.Supervisor.complete_start

    def complete_marked(self, c, transcript, pty, error, child_stages, *a, **kw):
        if CURRENT is not None:
            CURRENT["t"]["started"] = time.perf_counter()
            CURRENT["stages"] = [{k: v for k, v in s.items() if k in ("id", "t_begin", "t_send", "t_child")}
                                 for s in child_stages]
        return complete_start(self, c, transcript, pty, error, child_stages, *a, **kw)
    sup.Supervisor.complete_start = complete_marked

    # The exit notification: when the pidfd became readable is not known, but
    # when the loop first saw it is (on_exit_enter).
    return missing


def supervisor_main(out: str, cprofile: str | None) -> None:
    missing = install_wrappers()
    import engine.supervisor as sup

    try:
        if cprofile:
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
            try:
                sup.main()
            finally:
                prof.disable()
                prof.dump_stats(cprofile)
        else:
            sup.main()
    finally:
        Path(out).write_text(json.dumps({"runs": RUNS, "missing": missing}))


# -- the driver -------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "--as-supervisor":
        os.environ["CONTAINER_LAB_ROOT"] = sys.argv[2]       # startup.py set the default on import
        supervisor_main(sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--cold", action="store_true", help="sleep 0.2 s before each run")
    ap.add_argument("--cprofile", help="also profile the supervisor with cProfile into this file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--keep-root", action="store_true", help="keep the bench root (the built lab image)")
    ap.add_argument("--root", help="CONTAINER_LAB_ROOT for this profile (default /tmp/clab-bench, on the "
                                   "root file system here); e.g. a tmpfs dir to see what the disk costs")
    args = ap.parse_args()
    if args.root:
        os.environ["CONTAINER_LAB_ROOT"] = args.root
        startup.BENCH_ROOT = Path(args.root)

    import fcntl

    lock = open(startup.LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("bench/startup.py (or another profile) is running: it shares this supervisor; try later")
        return 2

    from engine.client import Client
    from engine.spec import ContainerConfig

    startup.shutdown_supervisor()
    out = f"/tmp/clab-bench-profile.{os.getpid()}.json"
    BENCH = startup.BENCH_ROOT / "run"
    BENCH.mkdir(parents=True, exist_ok=True)
    log = open(BENCH / "profile-supervisor.log", "ab")
    argv = [sys.executable, str(Path(__file__).resolve()), "--as-supervisor", str(startup.BENCH_ROOT), out]
    if args.cprofile:
        argv.append(str(Path(args.cprofile).resolve()))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    sup = subprocess.Popen(argv, cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           start_new_session=True)
    client = Client(autostart=False)
    from engine import paths
    from engine.images import ImageStore
    ImageStore(paths.data_dir() / "images").resolve("lab")          # built before the clock starts
    deadline = time.monotonic() + 30
    while not os.path.exists(client.socket_path):
        if time.monotonic() > deadline or sup.poll() is not None:
            if sup.poll() is None:
                sup.terminate()
                sup.wait()
            print("the profiling supervisor did not start; see", BENCH / "profile-supervisor.log")
            return 1
        time.sleep(0.05)
    devnull = os.open(os.devnull, os.O_RDWR)
    cfg = dict(image="lab", cmd=["true"], remove=True, memory=64 << 20, pids_limit=100)
    client_t = []
    try:
        for _ in range(args.runs + 5):
            if args.cold:
                time.sleep(0.2)
            t0 = time.perf_counter()
            run = Client(autostart=False).run(ContainerConfig(**cfg), stdio=[devnull, devnull])
            t_reply = time.perf_counter()
            info = run.wait()
            run.close()
            t1 = time.perf_counter()
            if info.get("exit_code") != 0:
                print("run failed:", info)
            client_t.append({"start": t0, "reply": t_reply, "end": t1})
    finally:
        try:
            Client(autostart=False).shutdown()
            sup.wait(timeout=60)
        except Exception:  # noqa: BLE001 - never leave our supervisor behind
            sup.terminate()
            sup.wait()
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    try:
        from engine.supervisor.networks import remove_all_networks
        remove_all_networks(startup.BENCH_ROOT / "lib")
    except Exception as e:  # noqa: BLE001
        print(f"networks of {startup.BENCH_ROOT}: {e}")
    try:
        from engine.cgroups import detect
        detect().remove_parent_if_empty(startup.CGROUP_PARENT)
    except Exception as e:  # noqa: BLE001
        print(f"cgroup parent {startup.CGROUP_PARENT}: {e}")
    if not args.keep_root and not os.path.exists(client.socket_path):
        import shutil
        shutil.rmtree(startup.BENCH_ROOT, ignore_errors=True)
    runs = data["runs"][5:]
    client_t = client_t[5:]
    if data["missing"]:
        print("not found (not timed):", ", ".join(data["missing"]))

    # Timeline segments, each a median over the runs.
    seg: dict[str, list[float]] = {}

    def add(name, a, b):
        if a is not None and b is not None:
            seg.setdefault(name, []).append((b - a) * 1000)

    stage_ms: dict[str, list[float]] = {}
    for r, c in zip(runs, client_t):
        t, st = r["t"], r["stages"]
        add("client total", c["start"], c["end"])
        add("1 client -> supervisor op_run (connect, send, json)", c["start"], t.get("op_run"))
        add("2 op_run until fork (validate, create, cgroup create, ...)", t.get("op_run"), t.get("fork"))
        child0 = st[0].get("t_child") if st else None
        add("3 fork -> child_main entered", t.get("fork"), child0)
        first = st[0]["t_begin"] if st else None
        add("4 child_main entered -> first stage (stdio, close fds, signals)", child0, first)
        last_send = st[-1].get("t_send") if st else None
        add("5 child stages (cgroup .. exec), total", first, last_send)
        add("6 child exec-ready -> supervisor read_start_channel returned", last_send, t.get("started"))
        add("7 started -> reply sent (transcript, save, events)", t.get("started"), t.get("reply_sent"))
        add("8 reply sent -> exit seen by the supervisor loop", t.get("reply_sent"), t.get("on_exit_enter"))
        add("8a child exec-ready -> exit seen (true runs, exits; kernel teardown)", last_send, t.get("on_exit_enter"))
        add("9 on_exit/finish (reap, limits, cgroup destroy, rm, events)", t.get("on_exit_enter"), t.get("on_exit_done"))
        add("10 exit event -> client returns", t.get("on_exit_done"), c["end"])
        for i, s in enumerate(st):
            end = st[i + 1]["t_begin"] if i + 1 < len(st) else s.get("t_send")
            if end is not None and s.get("t_begin") is not None:
                stage_ms.setdefault(s["id"], []).append((end - s["t_begin"]) * 1000)

    mode = "cold (0.2 s idle before each run)" if args.cold else "hot (back to back)"
    print(f"\n{len(runs)} runs, {mode}; medians in ms\n")
    print("| segment | median ms | p95 ms |\n|---|---:|---:|")
    for name in sorted(seg, key=lambda n: (n != "client total", n)):
        v = seg[name]
        print(f"| {name} | {med(v):.2f} | {startup.percentile(v, 0.95):.2f} |")
    print("\n| child stage | median ms | p95 ms |\n|---|---:|---:|")
    for name, v in stage_ms.items():
        print(f"| {name} | {med(v):.2f} | {startup.percentile(v, 0.95):.2f} |")
    print("\n| supervisor function (nested) | calls/run | median ms per run | p95 ms per run |\n|---|---:|---:|---:|")
    names = sorted({n for r in runs for n in r["calls"]},
                   key=lambda n: -med([sum(r["calls"].get(n, [0])) for r in runs]))
    for n in names:
        per_run = [sum(r["calls"].get(n, [0])) for r in runs]
        calls = med([len(r["calls"].get(n, [])) for r in runs])
        print(f"| {n} | {calls:g} | {med(per_run):.2f} | {startup.percentile(per_run, 0.95):.2f} |")
    if args.cprofile:
        import pstats
        print(f"\ncProfile of the supervisor ({args.cprofile}), top {args.top} by own time:\n")
        pstats.Stats(args.cprofile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
