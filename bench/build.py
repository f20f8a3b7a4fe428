#!/usr/bin/env python3
"""Build benchmark: ``container-lab build`` against ``podman build``, the same
Dockerfile and context, cold and fully cached, side by side in ONE run.

    sudo .venv/bin/python bench/build.py [--runs N] [--files N] [--mib N]

The Dockerfile::

    FROM lab
    RUN dd if=/dev/urandom of=/data.bin bs=1M count=MIB    (4 MiB by default)
    COPY files /files                                      (3000 small files by default)

``lab`` is the engine's built-in image; podman gets the very same image
(``container-lab save lab | podman load``). Each round, for each tool in an
order that rotates every round:

* ``cold``: the previous image and every layer nothing else needs removed
  (``rmi`` + ``image prune -f`` and the build cache; ``podman rmi`` + ``podman
  image prune -f``), then ``build --no-cache`` -- every step runs, every
  layer is written and stored;
* ``cached``: the same ``build`` again, nothing changed -- every step comes
  from the cache.

Each is one CLI process, timed from start to exit. Podman runs with its
storage in a directory of its own (``--root``/``--runroot``), with runc
(crun refuses hybrid cgroups). Everything is removed at the end, on Ctrl-C
too: the images, podman's storage, the context, the engine root
(CONTAINER_LAB_ROOT=/tmp/clab-bench-build) and its cgroups.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("/tmp/clab-bench-build")
CGROUP_PARENT = "clab-bench-build"
LOCK_FILE = Path("/tmp/clab-bench.lock")           # shared with the other benchmarks: never two at once
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, begin, clean_engine, is_mount, percentile, run_meta, use_engine_root  # noqa: E402

use_engine_root(ROOT, CGROUP_PARENT)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)    # time the CLI as a learner runs it: with bytecode caches
os.environ["PYTHONPYCACHEPREFIX"] = str(ROOT / "pycache")
VENV_BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "container-lab").exists() \
    else REPO / ".venv" / "bin"
CLI = str(VENV_BIN / "container-lab")
CONTEXT = ROOT / "context"
PODMAN_DIR = ROOT / "podman"
PODMAN = ["podman", "--root", str(PODMAN_DIR / "storage"), "--runroot", str(PODMAN_DIR / "run"),
          "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
TAG = "clab-bench-build:1"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sh(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc


def prepare(files: int, mib: int) -> None:
    (CONTEXT / "files").mkdir(parents=True)
    for i in range(files):
        (CONTEXT / "files" / f"f{i:05d}.txt").write_text(f"file {i}\n" * (1 + i % 8))
    (CONTEXT / "Dockerfile").write_text(
        f"FROM lab\nRUN dd if=/dev/urandom of=/data.bin bs=1M count={mib} 2>/dev/null\nCOPY files /files\n")
    sh([CLI, "images"])                                     # the lab image, assembled once
    archive = ROOT / "lab.tar"
    sh([CLI, "save", "-o", str(archive), "lab"])
    sh(PODMAN + ["load", "-i", str(archive)])
    archive.unlink()


def reset(tool: str) -> None:
    """What a cold build starts from: no image of it, no layer only it used, no cache."""
    if tool == "container-lab":
        sh([CLI, "rmi", TAG], check=False)
        sh([CLI, "image", "prune", "-f"])
        shutil.rmtree(ROOT / "lib" / "build-cache", ignore_errors=True)
    else:
        sh(PODMAN + ["rmi", "-f", TAG], check=False)
        sh(PODMAN + ["image", "prune", "-f"])


def timed_build(tool: str, cold: bool) -> float:
    flags = ["--no-cache"] if cold else []
    cmd = [CLI, "build", "-q", *flags, "-t", TAG, str(CONTEXT)] if tool == "container-lab" else \
        PODMAN + ["build", "-q", *flags, "-t", TAG, str(CONTEXT)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} build failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return took


def measure(runs: int, tools: list[str]) -> dict:
    results = {t: {"cold": [], "cached": []} for t in tools}
    for tool in tools:                                      # one untimed round each: caches, page cache
        reset(tool)
        timed_build(tool, True)
        timed_build(tool, False)
    for r in range(runs):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for tool in order:
            reset(tool)
            results[tool]["cold"].append(timed_build(tool, True))
            results[tool]["cached"].append(timed_build(tool, False))
        log(f"round {r + 1}/{runs}: " + ", ".join(
            f"{t} cold {results[t]['cold'][-1]:.2f} s cached {results[t]['cached'][-1]:.2f} s" for t in tools))
    return results


def report(meta: dict, results: dict) -> str:
    def med(values) -> float:
        return statistics.median(values) if values else math.nan

    ours = results.get("container-lab")
    rows = []
    for tool, r in results.items():
        cells = []
        for mode in ("cold", "cached"):
            cells.append(f"{med(r[mode]):.2f} s (p95 {percentile(r[mode], 0.95):.2f})")
        ratio = [f"{med(r[m]) / med(ours[m]):.1f}x" if ours and tool != "container-lab" else "1x"
                 for m in ("cold", "cached")]
        rows.append(f"| {tool} | {cells[0]} | {cells[1]} | {ratio[0]} | {ratio[1]} |")
    return "\n".join([
        f"## Build, {meta['date']}", "",
        f"{meta['machine']}; engine at {meta['git']}; load average {meta['load_before']:.2f} at the start, "
        f"{meta.get('load_after', math.nan):.2f} at the end; {meta['runs']} interleaved rounds; "
        f"FROM lab, RUN writing {meta['mib']} MiB, COPY of {meta['files']} small files.", "",
        f"```sh\n{meta['command']}\n```", "",
        "| tool | cold (median) | fully cached (median) | cold / container-lab | cached / container-lab |",
        "|---|---:|---:|---:|---:|", *rows])


def cleanup() -> None:
    if shutil.which("podman") and PODMAN_DIR.exists():
        sh(PODMAN + ["rmi", "-a", "-f"], check=False)
        sh(PODMAN + ["system", "reset", "-f"], check=False)
        for path in (PODMAN_DIR / "storage" / "overlay", PODMAN_DIR / "storage"):
            if is_mount(path):
                sh(["umount", str(path)], check=False)
    clean_engine(ROOT, CGROUP_PARENT, log=log)
    shutil.rmtree(ROOT, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--files", type=int, default=3000, help="small files COPY copies (default 3000)")
    ap.add_argument("--mib", type=int, default=4, help="MiB the RUN step writes (default 4)")
    ap.add_argument("--json", type=Path, help="also write every sample to this file")
    args = ap.parse_args()
    lock = begin(LOCK_FILE, log)
    if lock is None:
        return 2
    tools = ["container-lab"] + (["podman"] if shutil.which("podman") else [])
    if len(tools) == 1:
        log("podman is not installed (apt-get install -y podman): container-lab alone")
    meta = run_meta(runs=args.runs, files=args.files, mib=args.mib)
    results: dict = {}
    code = 0
    try:
        shutil.rmtree(ROOT, ignore_errors=True)
        prepare(args.files, args.mib)
        results = measure(args.runs, tools)
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except RuntimeError as e:
        log(f"build benchmark: {e}")
        code = 1
    finally:
        meta["load_after"] = os.getloadavg()[0]
        cleanup()
    if results:
        print(report(meta, results))
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
