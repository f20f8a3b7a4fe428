#!/usr/bin/env python3
"""Container start-up benchmark: container-lab's engine against crun, runc,
bubblewrap and (when installed) podman, side by side in ONE run.

    sudo .venv/bin/python bench/startup.py [--runs N] [--quick]

What is timed (see bench/README.md for the full story):

* ``api``    ``Client().run(ContainerConfig(image="lab", cmd=["true"], remove=True,
             memory=64 MiB, pids_limit=100), stdio=[devnull, devnull])``, ``wait()``,
             ``close()`` -- in this process, the supervisor already running.
* ``cli``    ``container-lab run --rm -m 64m --pids-limit 100 lab true`` (the venv's
             entry point, a fresh Python process every time).
* ``crun``   ``crun run`` on an OCI bundle whose rootfs is the lab image's layer
             (read-only bind mount), 64 MiB memory and 100 pids limits. crun 1.8
             refuses hybrid cgroups, so it runs in a helper process inside a
             private mount namespace with /sys/fs/cgroup/unified unmounted; the
             helper times crun itself, so unshare's cost is not in the numbers.
* ``runc``   ``runc run`` on the same bundle.
* ``bwrap``  ``bwrap --unshare-all --die-with-parent --bind <rootfs> / --proc /proc
             --dev /dev true``: no cgroup, no limits at all.
* ``podman`` ``podman --runtime runc run --rm --network none -m 64m --pids-limit 100
             --rootfs <rootfs>:O true`` (overlay over the same layer), if installed;
             ``podman-bridge`` the same on podman's default bridge (netavark).
* ``api-none``, ``cli-none``: ``api`` and ``cli`` with ``--network none`` -- the
             difference to ``api``/``cli`` (default bridge) is the network stage's cost.

Each tool runs ``--runs`` times per mode: ``hot`` (back to back) and ``cold``
(0.2 s of sleep before every run, not timed). Tools are interleaved in blocks
of ``--block`` runs, the order rotating every round, so that the noise of a
shared machine falls on all of them alike.

Then density: ``--density`` detached ``sleep 300`` containers through the
engine and through ``crun run -d``, against the same number of plain
``sleep 300`` processes as the baseline.

Everything it makes is removed at the end, on Ctrl-C too: containers, the
bundle and its bind mount, cgroups, the engine's state under
CONTAINER_LAB_ROOT=/tmp/clab-bench (``--keep-root`` keeps the built image).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_ROOT = Path("/tmp/clab-bench")
BUNDLE_DIR = Path("/tmp/clab-bench-oci")
LOCK_FILE = Path("/tmp/clab-bench.lock")
CGROUP_PARENT = "clab-bench"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, clean_engine, git_info, is_mount, machine, percentile, use_engine_root  # noqa: E402

# Before the engine is imported: never touch a learner's containers or cgroups.
use_engine_root(BENCH_ROOT, CGROUP_PARENT)
# Time the CLI as a learner runs it: with bytecode caches. This machine's
# sessions export PYTHONDONTWRITEBYTECODE=1, which makes every CLI start
# compile the engine from source; the caches go to a private prefix so the
# checkout is never written to. The ``cli-nopyc`` row shows the other case.
NOPYC_ENV = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
NOPYC_ENV.pop("PYTHONPYCACHEPREFIX", None)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = str(BENCH_ROOT / "pycache")

VENV_BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "container-lab").exists() \
    else REPO / ".venv" / "bin"
CLI = str(VENV_BIN / "container-lab")
ID_PREFIX = "clabbench-"
MEMORY = 64 << 20
PIDS = 100
COLD_SLEEP = 0.2


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


class RunError(Exception):
    pass


# -- timing one external command ----------------------------------------------

_devnull = -1
_errfile = -1


def _stdio_fds() -> tuple[int, int]:
    global _devnull, _errfile
    if _devnull < 0:
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        _errfile = os.open(f"/tmp/clab-bench-stderr.{os.getpid()}", os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.unlink(f"/tmp/clab-bench-stderr.{os.getpid()}")
    return _devnull, _errfile


def spawn_wait(argv: list[str], env: dict | None = None) -> float:
    """Run ``argv`` (stdin/stdout /dev/null) and return its wall time in ms.

    Timed: posix_spawn to waitpid, nothing else. The child gets its own process
    group, so a Ctrl-C on the terminal reaches only this script, which lets the
    run finish and then cleans up. Raises RunError on a non-zero exit."""
    devnull, err = _stdio_fds()
    os.ftruncate(err, 0)
    os.lseek(err, 0, os.SEEK_SET)
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
               (os.POSIX_SPAWN_DUP2, err, 2)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(path, argv, env if env is not None else os.environ, file_actions=actions, setpgroup=0)
    try:
        _, status = os.waitpid(pid, 0)
    except KeyboardInterrupt:
        os.waitpid(pid, 0)        # let it finish (runs are short), then stop
        raise
    t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        os.lseek(err, 0, os.SEEK_SET)
        text = os.read(err, 4096).decode(errors="replace").strip().splitlines()
        raise RunError(f"exit {code}: {text[-1] if text else ''}")
    return (t1 - t0) * 1000.0


# -- the crun helper (runs inside `unshare -m` with cgroup2 unmounted) ----------

def crun_worker(bundle_true: str, bundle_sleep: str) -> None:
    """Line protocol on stdin/stdout, one JSON reply per request:
    ``run ID`` (time ``crun run``), ``detach ID`` (``crun run -d``, reply the pid),
    ``delete ID``, ``cleanup`` (delete every detached one). EOF cleans up too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    detached: list[str] = []

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def delete(cid):
        subprocess.run(["crun", "delete", "-f", cid], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    reply({"ready": True, "unified_mounted": is_mount(Path("/sys/fs/cgroup/unified"))})
    try:
        while line := sys.stdin.readline():
            verb, _, arg = line.strip().partition(" ")
            try:
                if verb == "run":
                    reply({"ms": spawn_wait(["crun", "run", "--bundle", bundle_true, arg])})
                elif verb == "detach":
                    detached.append(arg)
                    ms = spawn_wait(["crun", "run", "-d", "--bundle", bundle_sleep, arg])
                    state = json.loads(subprocess.run(["crun", "state", arg], capture_output=True,
                                                      text=True, check=True).stdout)
                    reply({"ms": ms, "pid": state["pid"]})
                elif verb == "delete":
                    delete(arg)
                    if arg in detached:
                        detached.remove(arg)
                    reply({"ok": True})
                elif verb == "cleanup":
                    for cid in detached:
                        delete(cid)
                    detached.clear()
                    reply({"ok": True})
                elif verb == "quit":
                    break
                else:
                    reply({"error": f"unknown request {verb!r}"})
            except (RunError, OSError, subprocess.CalledProcessError, ValueError, KeyError) as e:
                reply({"error": str(e)})
    finally:
        for cid in detached:
            delete(cid)


class CrunHelper:
    def __init__(self, bundle_true: Path, bundle_sleep: Path):
        script = 'umount /sys/fs/cgroup/unified && exec "$@"'
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
             sys.executable, str(Path(__file__).resolve()), "--crun-worker", str(bundle_true), str(bundle_sleep)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        hello = self.proc.stdout.readline()
        if not hello:
            raise RunError("the crun helper did not start (unshare or umount failed?)")
        info = json.loads(hello)
        if info.get("unified_mounted"):
            raise RunError("the crun helper still sees /sys/fs/cgroup/unified")

    def request(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RunError("the crun helper died")
        reply = json.loads(answer)
        if "error" in reply:
            raise RunError(reply["error"])
        return reply

    def close(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.request("cleanup")
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except (OSError, RunError, ValueError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the tools ------------------------------------------------------------------

class Tool:
    name = ""
    limits = "64m memory, 100 pids"
    counter = 0

    def next_id(self) -> str:
        Tool.counter += 1
        return f"{ID_PREFIX}{os.getpid()}-{self.name}-{Tool.counter}"

    def once(self) -> float:
        raise NotImplementedError


class ApiTool(Tool):
    name = "api"
    label = "container-lab API (in-process Client; default bridge network)"
    network = "bridge"

    def __init__(self):
        from engine.client import Client
        from engine.spec import ContainerConfig
        self.Client, self.ContainerConfig = Client, ContainerConfig
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def once(self) -> float:
        Client, ContainerConfig = self.Client, self.ContainerConfig
        t0 = time.perf_counter()
        run = Client().run(ContainerConfig(image="lab", cmd=["true"], remove=True, memory=MEMORY,
                                           pids_limit=PIDS, network=self.network),
                           stdio=[self.devnull, self.devnull])
        info = run.wait()
        run.close()
        t1 = time.perf_counter()
        if info.get("exit_code") != 0:
            raise RunError(f"exit {info.get('exit_code')}: {info.get('error')}")
        return (t1 - t0) * 1000.0


class ApiNoneTool(ApiTool):
    name = "api-none"
    label = "container-lab API, `--network none` (loopback only: no network stage)"
    network = "none"


class CliTool(Tool):
    name = "cli"
    label = "container-lab CLI (`run --rm -m 64m --pids-limit 100 lab true`; default bridge network)"

    def once(self) -> float:
        return spawn_wait([CLI, "run", "--rm", "-m", "64m", "--pids-limit", str(PIDS), "lab", "true"])


class CliNoneTool(Tool):
    name = "cli-none"
    label = "container-lab CLI, `--network none`"

    def once(self) -> float:
        return spawn_wait([CLI, "run", "--rm", "--network", "none", "-m", "64m", "--pids-limit", str(PIDS),
                           "lab", "true"])


class CliNoPycTool(Tool):
    name = "cli-nopyc"
    label = "container-lab CLI, no bytecode cache (PYTHONDONTWRITEBYTECODE=1)"

    def once(self) -> float:
        return spawn_wait([CLI, "run", "--rm", "-m", "64m", "--pids-limit", str(PIDS), "lab", "true"], NOPYC_ENV)


class RuncTool(Tool):
    name = "runc"

    def __init__(self, bundle: Path):
        self.bundle = str(bundle)
        self.label = f"runc {_version(['runc', '--version'])} (`runc run`)"

    def once(self) -> float:
        cid = self.next_id()
        try:
            return spawn_wait(["runc", "run", "--bundle", self.bundle, cid])
        except RunError:
            subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
            raise


class CrunTool(Tool):
    name = "crun"

    def __init__(self, helper: CrunHelper):
        self.helper = helper
        self.label = f"crun {_version(['crun', '--version'])} (`crun run`, timed inside `unshare -m`)"

    def once(self) -> float:
        return self.helper.request(f"run {self.next_id()}")["ms"]


class BwrapTool(Tool):
    name = "bwrap"
    limits = "**none** (no cgroup)"

    def __init__(self, rootfs: Path):
        self.argv = ["bwrap", "--unshare-all", "--die-with-parent", "--bind", str(rootfs), "/",
                     "--proc", "/proc", "--dev", "/dev", "true"]
        self.label = f"bubblewrap {_version(['bwrap', '--version'])} (`--unshare-all`)"

    def once(self) -> float:
        return spawn_wait(self.argv)


class PodmanTool(Tool):
    name = "podman"
    network = "none"

    def __init__(self, rootfs: Path):
        self.argv = ["podman", "--runtime", "runc", "run", "--rm", "--label", "clabbench=1",
                     "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                     "-m", "64m", "--pids-limit", str(PIDS), "--network", self.network,
                     "--rootfs", f"{rootfs}:O", "true"]
        self.label = (f"podman {_version(['podman', '--version'])} (runc, `--rootfs <layer>:O`, "
                      f"`--network {self.network}`)")

    def once(self) -> float:
        return spawn_wait(self.argv)


class PodmanBridgeTool(PodmanTool):
    """podman's default bridge: netavark makes the veth pair and the rules."""

    name = "podman-bridge"
    network = "bridge"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = out.strip().splitlines()[0] if out.strip() else "?"
    return first.split()[-1] if first.split() else "?"


# -- set-up ----------------------------------------------------------------------

def ensure_packages() -> None:
    missing = [pkg for pkg, exe in (("crun", "crun"), ("runc", "runc"), ("bubblewrap", "bwrap"),
                                    ("podman", "podman"), ("netavark", "/usr/lib/podman/netavark"),
                                    ("aardvark-dns", "/usr/lib/podman/aardvark-dns"))
               if shutil.which(exe) is None and not os.path.exists(exe)]
    if missing:
        log(f"installing {' '.join(missing)} ...")
        subprocess.run(["apt-get", "install", "-y", *missing], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def make_bundles(layer: Path) -> tuple[Path, Path, Path]:
    """BUNDLE_DIR/rootfs: the layer bind-mounted read-only; true/ and sleep/ bundles."""
    rootfs = BUNDLE_DIR / "rootfs"
    rootfs.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(layer), str(rootfs)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(rootfs)], check=True)
    bundles = []
    for name, args, memory, pids in (("true", ["true"], MEMORY, PIDS),
                                     ("sleep", ["sleep", "300"], 1 << 30, 1024)):
        b = BUNDLE_DIR / name
        b.mkdir()
        subprocess.run(["runc", "spec"], cwd=b, check=True)
        spec = json.loads((b / "config.json").read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = args
        spec["root"] = {"path": str(rootfs), "readonly": False}
        spec["linux"].setdefault("resources", {})
        spec["linux"]["resources"]["memory"] = {"limit": memory}
        spec["linux"]["resources"]["pids"] = {"limit": pids}
        (b / "config.json").write_text(json.dumps(spec, indent=1))
        bundles.append(b)
    return rootfs, bundles[0], bundles[1]


def remove_bundles() -> None:
    """Unmount the bind-mounted layer FIRST: deleting through it would delete the image."""
    rootfs = BUNDLE_DIR / "rootfs"
    for _ in range(5):
        if not is_mount(rootfs):
            break
        subprocess.run(["umount", str(rootfs)], stderr=subprocess.DEVNULL)
        if is_mount(rootfs):
            time.sleep(0.2)
    if is_mount(rootfs):
        subprocess.run(["umount", "-l", str(rootfs)], stderr=subprocess.DEVNULL)
    if is_mount(rootfs):
        log(f"WARNING: {rootfs} is still mounted; not deleting {BUNDLE_DIR}")
        return
    shutil.rmtree(BUNDLE_DIR, ignore_errors=True)


def shutdown_supervisor() -> None:
    from engine.client import Client
    with contextlib.suppress(Exception):
        Client(autostart=False).shutdown()


# -- statistics and output --------------------------------------------------------

def measure(tools: list[Tool], mode: str, runs: int, block: int) -> dict:
    samples: dict[str, list[float]] = {t.name: [] for t in tools}
    errors: dict[str, list[str]] = {t.name: [] for t in tools}
    active = list(tools)
    rounds = math.ceil(runs / block)
    for rnd in range(rounds):
        k = min(block, runs - rnd * block)
        shift = rnd % len(active) if active else 0
        for t in active[shift:] + active[:shift]:
            for _ in range(k):
                if mode == "cold":
                    time.sleep(COLD_SLEEP)
                try:
                    samples[t.name].append(t.once())
                except RunError as e:
                    errors[t.name].append(str(e))
            if len(errors[t.name]) >= 5 and not samples[t.name]:
                log(f"  {t.name}: giving up after 5 errors: {errors[t.name][-1]}")
        active = [t for t in active if not (len(errors[t.name]) >= 5 and not samples[t.name])]
        if rnd % max(1, rounds // 10) == 0 or rnd == rounds - 1:
            log(f"  {mode}: round {rnd + 1}/{rounds}  " + "  ".join(
                f"{n}={statistics.median(v):.1f}" for n, v in samples.items() if v))
    return {name: {"samples": samples[name], "errors": errors[name]} for name in samples}


MEMINFO_KERNEL = ("Slab", "KernelStack", "PageTables")


def meminfo_kib() -> dict[str, int]:
    """MemAvailable and the kernel's own use (slab + stacks + page tables),
    each the median of five readings 0.2 s apart."""
    readings: dict[str, list[int]] = {"avail": [], "kernel": []}
    for i in range(5):
        if i:
            time.sleep(0.2)
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0])
        readings["avail"].append(info["MemAvailable"])
        readings["kernel"].append(sum(info.get(k, 0) for k in MEMINFO_KERNEL))
    return {k: int(statistics.median(v)) for k, v in readings.items()}


def _delta(before: dict, during: dict, after: dict) -> dict:
    """Memory the containers held, KiB: the reading while they ran against the
    mean of the readings before they started and after they were removed, so
    that a steady drift of the machine's memory (other users) cancels out."""
    return {k + "_kib": (during[k] - (before[k] + after[k]) / 2) * (-1 if k == "avail" else 1)
            for k in ("avail", "kernel")}


def cgroup_memory_bytes(pid: int) -> int | None:
    """memory.usage_in_bytes of the v1 memory cgroup ``pid`` is in."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if "memory" in controllers.split(","):
                    return int(Path(f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes").read_text())
    except (OSError, ValueError):
        return None
    return None


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


SETTLE = 2.0


def density_plain(n: int, state: dict) -> dict:
    before = meminfo_kib()
    devnull, _ = _stdio_fds()
    sleep = shutil.which("sleep")
    pids = state["sleeps"]
    for _ in range(n):
        pids.append(os.posix_spawn(sleep, ["sleep", "300"], os.environ, setpgroup=0,
                                   file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                                 (os.POSIX_SPAWN_DUP2, devnull, 1)]))
    time.sleep(SETTLE)
    during = meminfo_kib()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    pids.clear()
    time.sleep(SETTLE)
    return _delta(before, during, meminfo_kib())


def density_engine(n: int, state: dict) -> dict:
    from engine.client import Client
    from engine.spec import ContainerConfig

    sup_pid = int((BENCH_ROOT / "run" / "supervisor.pid").read_text())
    sup_before = rss_kib(sup_pid)
    before = meminfo_kib()
    ids = state["engine_ids"]
    t0 = time.perf_counter()
    for _ in range(n):
        reply = Client().run(ContainerConfig(image="lab", cmd=["sleep", "300"], detach=True, remove=True),
                             attach=False)
        ids.append(reply["id"])
    start_s = time.perf_counter() - t0
    time.sleep(SETTLE)
    during = meminfo_kib()
    cg = [cgroup_memory_bytes(Client().inspect(cid)["pid"]) for cid in ids]
    sup_after = rss_kib(sup_pid)
    t0 = time.perf_counter()
    for cid in list(ids):
        Client().remove(cid, force=True)
        ids.remove(cid)
    rm_s = time.perf_counter() - t0
    time.sleep(SETTLE)
    out = _delta(before, during, meminfo_kib())
    out.update(start_s=start_s, remove_s=rm_s,
               cgroup_bytes=sum(x for x in cg if x), cgroups_read=sum(1 for x in cg if x),
               supervisor_rss_growth_kib=sup_after - sup_before)
    return out


def density_crun(n: int, helper: CrunHelper, state: dict) -> dict:
    before = meminfo_kib()
    cids = state["crun_ids"]
    cpids = []
    t0 = time.perf_counter()
    for _ in range(n):
        Tool.counter += 1
        cid = f"{ID_PREFIX}{os.getpid()}-crund-{Tool.counter}"
        cids.append(cid)
        cpids.append(helper.request(f"detach {cid}")["pid"])
    start_s = time.perf_counter() - t0
    time.sleep(SETTLE)
    during = meminfo_kib()
    cg = [cgroup_memory_bytes(p) for p in cpids]
    t0 = time.perf_counter()
    for cid in list(cids):
        helper.request(f"delete {cid}")
        cids.remove(cid)
    rm_s = time.perf_counter() - t0
    time.sleep(SETTLE)
    out = _delta(before, during, meminfo_kib())
    out.update(start_s=start_s, remove_s=rm_s,
               cgroup_bytes=sum(x for x in cg if x), cgroups_read=sum(1 for x in cg if x))
    return out


def density(n: int, reps: int, helper: CrunHelper | None, state: dict) -> dict:
    """``reps`` rounds of: n plain sleeps, n engine containers, n crun containers."""
    out: dict = {"n": n, "reps": reps, "plain": [], "engine": [], "crun": []}
    for rep in range(reps):
        for name in ("plain", "engine", "crun"):
            log(f"density {rep + 1}/{reps}: {n} x {name}")
            try:
                if name == "plain":
                    out[name].append(density_plain(n, state))
                elif name == "engine":
                    out[name].append(density_engine(n, state))
                elif helper is not None:
                    out[name].append(density_crun(n, helper, state))
            except (RunError, OSError) as e:
                out.setdefault("errors", {})[name] = str(e)
                log(f"  {name} failed: {e}")
    return out


def render(results: dict, meta: dict, tools: list[Tool]) -> str:
    crun_hot = results["modes"].get("hot", {}).get("crun", {}).get("samples") or []
    base = statistics.median(crun_hot) if crun_hot else math.nan
    lines = [
        f"Date {meta['date']}; {meta['machine']}; command `{meta['command']}`; "
        f"{meta['runs']} runs per tool and mode; load average {meta['load_before']} before, "
        f"{meta['load_after']} after; engine at {meta['git']}.",
        "",
        "| tool | mode | limits | median ms | p95 ms | ratio to crun hot median | runs ok / failed |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    by_name = {t.name: t for t in tools}
    for name in [t.name for t in tools]:
        for mode in ("hot", "cold"):
            r = results["modes"].get(mode, {}).get(name)
            if r is None:
                continue
            s = r["samples"]
            med = statistics.median(s) if s else math.nan
            p95 = percentile(s, 0.95)
            ratio = med / base if s and base == base else math.nan
            lines.append(f"| {by_name[name].label} | {mode} | {by_name[name].limits} | "
                         f"{med:.1f} | {p95:.1f} | {ratio:.2f}x | {len(s)} / {len(r['errors'])} |")
    for name, why in meta.get("skipped", {}).items():
        lines.append(f"| {name} | - | - | - | - | - | not run: {why} |")
    d = results.get("density")
    if d and d["plain"]:
        n, reps = d["n"], d["reps"]

        def med(name, key):
            return statistics.median(r[key] for r in d[name])

        plain_avail, plain_kernel = med("plain", "avail_kib"), med("plain", "kernel_kib")
        lines += ["", f"Density: {n} detached `sleep 300` containers at once, {reps} round(s), medians. Memory is "
                  f"`/proc/meminfo` read {SETTLE:.0f} s after the last start against the mean of the readings before "
                  f"the first start and {SETTLE:.0f} s after the last removal (each the median of 5 readings), so a "
                  f"steady drift of a shared machine cancels; \"beyond plain sleep\" subtracts the same number of plain `sleep 300` host processes "
                  f"(they took {plain_avail / 1024:.1f} MiB of MemAvailable and {plain_kernel / 1024:.1f} MiB of "
                  f"kernel memory for all {n}). Kernel = Slab + KernelStack + PageTables.", "",
                  "| tool | start all (s) | remove all (s) | MemAvailable drop MiB/ctr (min to max) | beyond plain sleep MiB/ctr "
                  "| kernel beyond plain sleep MiB/ctr | cgroup memory.usage MiB/ctr | notes |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for name, label in (("engine", "container-lab (`Client().run(detach=True)`)"), ("crun", "crun `run -d`")):
            if not d.get(name):
                if name in d.get("errors", {}):
                    lines.append(f"| {label} | - | - | - | - | - | - | failed: {d['errors'][name]} |")
                continue
            avail, kern = med(name, "avail_kib"), med(name, "kernel_kib")
            cgb = statistics.median(r["cgroup_bytes"] / max(1, r["cgroups_read"]) for r in d[name])
            notes = "overlayfs + upper dir each, limits 1 GiB / 1024 pids (the defaults)" if name == "engine" \
                else "one shared read-only rootfs (no overlay), limits 1 GiB / 1024 pids"
            if name == "engine":
                notes += f"; supervisor RSS +{med(name, 'supervisor_rss_growth_kib') / 1024:.1f} MiB"
            spread = ""
            if len(d[name]) > 1:
                lo, hi = (f(r["avail_kib"] for r in d[name]) / n / 1024 for f in (min, max))
                spread = f" ({lo:.2f} to {hi:.2f})"
            lines.append(
                f"| {label} | {med(name, 'start_s'):.2f} | {med(name, 'remove_s'):.2f} | {avail / n / 1024:.2f}{spread} | "
                f"{(avail - plain_avail) / n / 1024:.2f} | {(kern - plain_kernel) / n / 1024:.2f} | "
                f"{cgb / 2**20:.2f} | {notes} |")
    return "\n".join(lines) + "\n"


# -- clean-up ------------------------------------------------------------------------

def cleanup(state: dict, keep_root: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log("cleaning up ...")
    for pid in state["sleeps"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    # The engine's containers: everything under the bench root is ours.
    clean_engine(BENCH_ROOT, CGROUP_PARENT, keep_root=True, log=log)
    if state.get("helper") is not None:
        state["helper"].close()
    # Leftovers of runc, crun, podman (interrupted runs).
    for cid in _runtime_ids(["runc", "list", "-q"]):
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    for cid in _runtime_ids(["crun", "list", "-q"]):
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        'umount /sys/fs/cgroup/unified; crun delete -f "$0"', cid], capture_output=True)
    if shutil.which("podman"):
        left = subprocess.run(["podman", "ps", "-aq", "--filter", "label=clabbench=1"], capture_output=True,
                              text=True).stdout.split()
        if left:
            subprocess.run(["podman", "rm", "-f", *left], capture_output=True)
    remove_bundles()
    clean_engine(BENCH_ROOT, CGROUP_PARENT, keep_root=keep_root, log=log)    # the parent, once crun's are gone too


def _runtime_ids(argv: list[str]) -> list[str]:
    if shutil.which(argv[0]) is None:
        return []
    out = subprocess.run(argv, capture_output=True, text=True).stdout.split()
    return [x for x in out if x.startswith(ID_PREFIX)]


# -- main -------------------------------------------------------------------------

def _terminate(*_):
    raise KeyboardInterrupt


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--crun-worker":
        crun_worker(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="timed runs per tool and mode (default 200, 20 with --quick)")
    ap.add_argument("--quick", action="store_true", help="20 runs and 30 density containers: a smoke test")
    ap.add_argument("--block", type=int, default=10, help="back-to-back runs of one tool before the next (default 10)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per tool before timing (default 5)")
    ap.add_argument("--modes", default="hot,cold", help="hot,cold (default both)")
    ap.add_argument("--tools", default="api,api-none,cli,cli-none,cli-nopyc,crun,runc,bwrap,podman,podman-bridge", help="which tools (default all)")
    ap.add_argument("--density", type=int, default=None,
                    help="containers for the density test (default 100, 30 with --quick; 0 skips it)")
    ap.add_argument("--density-reps", type=int, default=None, help="density rounds (default 3, 1 with --quick)")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    ap.add_argument("--json", type=Path, help="write every sample to this file")
    ap.add_argument("--keep-root", action="store_true", help=f"keep {BENCH_ROOT} (the built lab image)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 20 if args.quick else 200
    if args.density is None:
        args.density = 30 if args.quick else 100
    if args.density_reps is None:
        args.density_reps = 1 if args.quick else 3
    if os.geteuid() != 0:
        log("run me as root: containers with cgroup limits need it")
        return 2

    lock = open(LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another bench/startup.py is running")
        return 2
    signal.signal(signal.SIGTERM, _terminate)

    state: dict = {"sleeps": [], "engine_ids": [], "crun_ids": [], "helper": None}
    meta: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                  "command": " ".join([sys.executable, os.path.relpath(os.path.abspath(sys.argv[0]), REPO),
                                       *sys.argv[1:]]),
                  "runs": args.runs, "git": git_info(), "load_before": os.getloadavg()[0], "skipped": {}}
    results: dict = {"modes": {}}
    tools: list[Tool] = []
    interrupted = False
    try:
        ensure_packages()
        # Leftovers of a run that was killed hard.
        shutdown_supervisor()
        remove_bundles()

        from engine import paths
        from engine.client import Client
        from engine.images import ImageStore

        log("warming the supervisor and the lab image ...")
        Client().ping()
        layer = ImageStore(paths.data_dir() / "images").resolve("lab").layers[0]
        rootfs, bundle_true, bundle_sleep = make_bundles(layer)

        for name in args.tools.split(","):
            try:
                if name == "api":
                    t = ApiTool()
                elif name == "api-none":
                    t = ApiNoneTool()
                elif name == "cli":
                    t = CliTool()
                elif name == "cli-none":
                    t = CliNoneTool()
                elif name == "cli-nopyc":
                    t = CliNoPycTool()
                elif name == "crun":
                    state["helper"] = CrunHelper(bundle_true, bundle_sleep)
                    t = CrunTool(state["helper"])
                elif name == "runc":
                    t = RuncTool(bundle_true)
                elif name == "bwrap":
                    t = BwrapTool(rootfs)
                elif name in ("podman", "podman-bridge"):
                    if shutil.which("podman") is None:
                        meta["skipped"][name] = "not installed (`apt-get install -y podman`)"
                        continue
                    t = PodmanTool(rootfs) if name == "podman" else PodmanBridgeTool(rootfs)
                else:
                    raise RunError(f"unknown tool {name}")
                t.once()              # does it work at all here? (also the first warm-up run)
                for _ in range(args.warmup - 1):
                    t.once()
                tools.append(t)
            except (RunError, OSError) as e:
                meta["skipped"][name] = str(e)
                log(f"skipping {name}: {e}")
        for mode in args.modes.split(","):
            log(f"{mode} mode: {args.runs} runs per tool, blocks of {args.block}")
            results["modes"][mode] = measure(tools, mode, args.runs, args.block)
        if args.density > 0:
            try:
                results["density"] = density(args.density, args.density_reps, state["helper"], state)
            except RunError as e:
                log(f"density failed: {e}")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted")
    finally:
        meta["load_after"] = os.getloadavg()[0]
        cleanup(state, args.keep_root)
        with contextlib.suppress(OSError):
            LOCK_FILE.unlink()
    if interrupted and not results["modes"]:
        return 130
    table = render(results, meta, tools)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
