#!/usr/bin/env python3
"""What the CLI's imports cost: ``python -X importtime`` of ``container-lab run
--rm lab true``, as the console script runs it, with bytecode caches.

    bench/cli_imports.py [--runs N] [--checkout DIR ...] [--wall]

Each run is a real ``run`` (the supervisor and the ``lab`` image warmed first,
under CONTAINER_LAB_ROOT=/tmp/clab-cli-imports); the figure is the sum of the
top-level cumulative import times from ``tui.launcher`` on -- what our code
imports, not the interpreter's own start-up nor the console script's ``re``.
With ``--checkout``, other trees (e.g. an older commit unpacked with ``git
archive``) are timed in the same run, interleaved, for a fair comparison;
``--wall`` also times whole runs without ``-X importtime`` (spawn to exit,
subprocess's own overhead included alike for every tree).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = "/tmp/clab-cli-imports"
SCRIPT = "import re, sys\nfrom tui.launcher import main\nsys.argv[0] = 'container-lab'\nsys.exit(main())\n"
LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def _env(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), CONTAINER_LAB_ROOT=ROOT, CONTAINER_LAB_CGROUP_PARENT="clab-cli-imports",
               PYTHONPYCACHEPREFIX=f"{ROOT}/pycache-{abs(hash(str(tree)))}")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(tree: Path) -> float:
    """One whole ``run --rm lab true`` in ms."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "run", "--rm", "lab", "true"], env=_env(tree),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    t1 = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: run failed")
    return (t1 - t0) * 1000


def one(tree: Path) -> tuple[float, list[tuple[float, str]]]:
    env = _env(tree)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", SCRIPT, "run", "--rm", "lab", "true"],
                          env=env, capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: run failed: {proc.stderr.strip().splitlines()[-1:]}")
    seen, rows = False, []
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name = m.group(2)
        seen = seen or name == "tui.launcher"
        if seen and not name.startswith(" "):
            rows.append((int(m.group(1)) / 1000, name))
    return sum(ms for ms, _ in rows), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--checkout", action="append", default=[], help="another tree to time alongside")
    ap.add_argument("--wall", action="store_true", help="also time whole runs (no -X importtime)")
    args = ap.parse_args()
    trees = [REPO, *map(Path, args.checkout)]
    for tree in trees:              # warm: caches compiled, supervisor started, lab image built
        for _ in range(3):
            one(tree)
    totals: dict[Path, list[float]] = {t: [] for t in trees}
    walls: dict[Path, list[float]] = {t: [] for t in trees}
    last: dict[Path, list] = {}
    for _ in range(args.runs):
        for tree in trees:
            total, rows = one(tree)
            totals[tree].append(total)
            last[tree] = rows
            if args.wall:
                walls[tree].append(wall(tree))
    for tree in trees:
        values = sorted(totals[tree])
        print(f"{tree}: median {statistics.median(values):.2f} ms, min {values[0]:.2f} ms "
              f"({args.runs} runs)")
        print("   " + ", ".join(f"{name} {ms:.2f}" for ms, name in last[tree]))
        if args.wall:
            w = sorted(walls[tree])
            print(f"   whole run: median {statistics.median(w):.1f} ms, min {w[0]:.1f} ms")
    subprocess.run([sys.executable, "-c", "from engine.client import Client; Client(autostart=False).shutdown()\n"
                    "from pathlib import Path; from engine.supervisor.networks import remove_all_networks\n"
                    f"remove_all_networks(Path({str(ROOT)!r}) / 'lib')"],
                   env=dict(os.environ, PYTHONPATH=str(REPO), CONTAINER_LAB_ROOT=ROOT), capture_output=True)


if __name__ == "__main__":
    main()
