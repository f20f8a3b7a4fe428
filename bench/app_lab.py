"""What the lab panel's live refresh costs: CPU of the app process, per wall second.

    sudo .venv/bin/python bench/app_lab.py [--procs 500] [--seconds 10] [--rate 2]

Starts a real container with ``--procs`` sleeping processes through the
engine, then runs, headless in ``App.run_test()`` at 120x40, (1) an app
with nothing but a static text, as a baseline, and (2) the same app with a
:class:`tui.widgets.lab.LabPanel` showing that container, refreshing at
``--rate`` Hz, once on the Processes tab and once on the Resources tab. For
each it reports this process's CPU time (every thread: the app's loop, the
refresh worker reading /proc, the event listener) divided by the wall time,
in percent of one core; the target is 15 % at 2 Hz with 500 processes.
The supervisor's own CPU (answering ``ps`` and ``inspect``) is reported
apart. The container is removed at the end, and the bench's engine root
(``/tmp/clab-bench-app``) with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path("/tmp/clab-bench-app")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clean_engine, use_engine_root  # noqa: E402

use_engine_root(ROOT, "clab-bench-app")

from textual.app import App, ComposeResult  # noqa: E402
from textual.widgets import Static  # noqa: E402

from engine.client import Client  # noqa: E402
from engine.spec import ContainerConfig  # noqa: E402
from tui.widgets.lab import LabPanel  # noqa: E402

NAME = "bench-lab"


class Baseline(App):
    def compose(self) -> ComposeResult:
        yield Static("nothing to refresh")


class WithPanel(App):
    def __init__(self, rate: float, tab: str):
        super().__init__()
        self.rate, self.tab = rate, tab

    def compose(self) -> ComposeResult:
        yield LabPanel("en", rate=self.rate)

    def on_mount(self) -> None:
        panel = self.query_one(LabPanel)
        panel.select(NAME)
        panel.show_tab(self.tab)


def supervisor_cpu() -> float:
    """CPU seconds the supervisor has used so far (utime + stime)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"engine.supervisor" in cmd and str(ROOT).encode() in Path(f"/proc/{entry}/environ").read_bytes():
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return 0.0


async def measure(app: App, seconds: float, *, settle: float = 2.0) -> dict:
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(settle)                     # start-up and the first refreshes are not steady state
        panel = app.query(LabPanel).first() if app.query(LabPanel) else None
        before = panel.refreshes if panel else 0
        cpu0, wall0, sup0 = time.process_time(), time.perf_counter(), supervisor_cpu()
        await asyncio.sleep(seconds)
        cpu, wall, sup = time.process_time() - cpu0, time.perf_counter() - wall0, supervisor_cpu() - sup0
        rows = len(app.query_one("#lab-processes").table.rows) if panel else 0
        return {"cpu_pct": 100 * cpu / wall, "supervisor_pct": 100 * sup / wall, "wall": wall,
                "refreshes": (panel.refreshes - before) if panel else 0, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (real namespaces and cgroups)", file=sys.stderr)
        return 1
    client = Client()
    client.remove(NAME, force=True) if any(c["name"] == NAME for c in client.ps(all=True)) else None
    client.run(ContainerConfig(image="lab", name=NAME, pids_limit=args.procs + 100,
                               cmd=["sh", "-c", f"for i in $(seq {args.procs}); do sleep 100000 & done; wait"]),
               attach=False)
    try:
        deadline = time.monotonic() + 60
        while len(client.snapshot(NAME)["processes"]) < args.procs + 1:
            if time.monotonic() > deadline:
                raise SystemExit("the processes did not all start")
            time.sleep(0.2)
        print(f"container {NAME}: {args.procs + 1} processes; {args.seconds:.0f} s each, headless 120x40, "
              f"{os.cpu_count()} cores\n")
        print(f"{'case':<34} {'app CPU':>8} {'supervisor':>11} {'refreshes':>10} {'rows':>5}")
        cases = [("baseline: a static app", Baseline()),
                 (f"LabPanel {args.rate:g} Hz, Processes", WithPanel(args.rate, "processes")),
                 (f"LabPanel {args.rate:g} Hz, Resources", WithPanel(args.rate, "resources"))]
        for label, app in cases:
            r = asyncio.run(measure(app, args.seconds))
            print(f"{label:<34} {r['cpu_pct']:7.1f}% {r['supervisor_pct']:10.1f}% {r['refreshes']:>10} "
                  f"{r['rows']:>5}")
    finally:
        clean_engine(ROOT, "clab-bench-app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
