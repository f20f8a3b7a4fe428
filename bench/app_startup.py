#!/usr/bin/env python3
"""How long ``container-lab`` takes from exec to its first painted screen.

    .venv/bin/python bench/app_startup.py [--runs N] [--course DIR] [--size 120x40]

What is timed: the wall time from ``Popen`` of ``python -m tui.launcher`` (what
the ``container-lab`` script runs) on a fresh pseudo-terminal of the given size,
until the terminal has received the first frame of the screen -- detected as a
text that only that screen shows appearing in the output (escape sequences
stripped). Then Ctrl+Q quits it, and the run ends when the process has exited
(not timed). Each run has a fresh learner directory (CONTAINER_LAB_LEARNER_DIR);
all share a private engine root (CONTAINER_LAB_ROOT), so nothing of the learner's
or the machine's is touched; its supervisor, started by the lesson scenario's lab
after the first frame, is shut down at the end.

Scenarios, each ``--runs`` times, interleaved:

* ``welcome``  a new learner: the welcome screen (its title is the marker);
* ``lesson``   a returning learner: progress says lesson N, step 1, so the
               lesson screen opens at once (Markdown of every step, the lab
               panel) -- the marker is the lesson's title.

Baselines in the same run: ``python -c pass`` and ``python -c "import textual.app"``.
Reported: median, min and max in milliseconds. The target is a median of at most
1000 ms for both scenarios.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\x1b\][^\x07]*\x07")
TARGET_MS = 1000


def run_app(args: list[str], marker: str, env: dict, size: tuple[int, int], timeout: float = 20.0) -> float:
    """Seconds from exec to ``marker`` on the terminal."""
    cols, rows = size
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tui.launcher", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=REPO, env=env, start_new_session=True)
    os.close(slave)
    seen, elapsed = b"", None
    want = marker.encode()
    deadline = start + timeout
    try:
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            seen += chunk
            if want in ANSI.sub(b"", seen).replace(b"\r", b""):
                elapsed = time.perf_counter() - start
                break
        if elapsed is None:
            text = ANSI.sub(b"", seen).decode("utf-8", "replace")[-600:]
            raise RuntimeError(f"no {marker!r} within {timeout} s; the terminal showed: {text!r}")
        os.write(master, b"\x11")                       # Ctrl+Q
        end = time.perf_counter() + 10
        while proc.poll() is None and time.perf_counter() < end:
            select.select([master], [], [], 0.05)
            try:
                os.read(master, 65536)
            except OSError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return elapsed


def baseline(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--course", help="course folder (default: the shipped content/)")
    parser.add_argument("--lesson", help="lesson of the 'lesson' scenario (default: the course's first)")
    parser.add_argument("--size", default="120x40")
    parser.add_argument("--json", help="also write every sample here")
    ns = parser.parse_args()
    size = tuple(int(x) for x in ns.size.split("x"))

    sys.path.insert(0, str(REPO))
    from lessons.loader import load_course

    course = load_course(ns.course)
    lesson = course.lesson(ns.lesson) if ns.lesson else course.lessons[0]
    course_args = ["--course", ns.course] if ns.course else []
    work = Path(tempfile.mkdtemp(prefix="clab-appbench-"))
    base_env = {**os.environ, "TERM": "xterm-256color", "CONTAINER_LAB_ROOT": str(work / "root"),
                "LANG": "C.UTF-8", "LANGUAGE": "en"}
    base_env.pop("NO_COLOR", None)

    def scenario(name: str, n: int) -> float:
        learner = work / f"{name}-{n}"
        learner.mkdir()
        if name == "lesson":
            (learner / "progress.json").write_text(json.dumps({
                "version": 1, "language": "en", "courses": {},
                "current": {"course": course.id, "lesson": lesson.id, "step": lesson.steps[0].id}}))
            marker = lesson.title["en"]
        else:
            marker = "What is container-lab"
        return run_app(course_args, marker, {**base_env, "CONTAINER_LAB_LEARNER_DIR": str(learner)}, size)

    samples: dict[str, list[float]] = {"python -c pass": [], "import textual.app": [], "welcome": [], "lesson": []}
    try:
        scenario("welcome", -1)                         # warm the .pyc files
        scenario("lesson", -1)
        for n in range(ns.runs):
            samples["python -c pass"].append(baseline("pass"))
            samples["import textual.app"].append(baseline("import textual.app"))
            for name in ("welcome", "lesson"):
                samples[name].append(scenario(name, n))
    finally:
        os.environ["CONTAINER_LAB_ROOT"] = str(work / "root")
        from engine.client import Client
        Client(autostart=False).shutdown()          # the supervisor a lesson's lab started
        shutil.rmtree(work, ignore_errors=True)

    print(f"container-lab: exec to first painted screen, {ns.runs} runs each, {size[0]}x{size[1]}, "
          f"course {ns.course or 'content/'} (lesson scenario: {lesson.folder}), {os.cpu_count()} CPUs")
    print(f"{'':24}{'median':>9}{'min':>9}{'max':>9}   (ms)")
    for name, values in samples.items():
        ms = [v * 1000 for v in values]
        print(f"{name:24}{statistics.median(ms):9.0f}{min(ms):9.0f}{max(ms):9.0f}")
    worst = max(statistics.median(samples[s]) for s in ("welcome", "lesson")) * 1000
    print(f"target: median <= {TARGET_MS} ms: {'met' if worst <= TARGET_MS else 'NOT met'} ({worst:.0f} ms)")
    if ns.json:
        Path(ns.json).write_text(json.dumps(samples, indent=1))
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
