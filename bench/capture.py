#!/usr/bin/env python3
"""Plain-text captures of the lesson screen in a real terminal, in English and in Chinese.

    sudo .venv/bin/python bench/capture.py --out-dir DIR [--lesson ID] [--step ID] [--size 120x40]

tmux runs the installed ``container-lab`` (next to this Python) on a private
server at the given size. The learner's progress says LESSON, STEP (default:
lesson 8's "from-host", which leaves a container running), so the app opens
there; ``s`` (show me) runs the step's commands and checks, and once the step
is done and the lab panel shows the container's PID 1 with the host PID the
engine reports for it, ``capture-pane`` writes DIR/capture-en.txt; F2, and the same in Chinese
(DIR/capture-zh.txt). Then the app quits (removing the container) and the
private engine root, its supervisor and the tmux server go.

It also says, for each capture, whether every row fits the width and the lab
panel's borders stand in one column on every row (misaligned CJK would move
them): what a pilot test's screen cannot show, since there Textual measures
its own text. tests/test_e2e_tmux.py drives the app the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = "set -g status off\nset -g remain-on-exit on\nset -g default-terminal tmux-256color\n"


class Pane:
    """One tmux server on a private socket, one session running one program."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.tmux_bin = shutil.which("tmux")
        self.socket, self.config, self.env = workdir / "tmux.sock", workdir / "tmux.conf", env
        self.config.write_text(CONFIG)

    def tmux(self, *args: str) -> str:
        return subprocess.run([self.tmux_bin, "-S", str(self.socket), "-f", str(self.config), *args],
                              capture_output=True, text=True, env=self.env, timeout=10, check=True).stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "lab")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "lab", *keys)

    def wait_for(self, condition, what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while not condition(screen := self.text()):
            if time.monotonic() > deadline:
                sys.exit(f"capture.py: timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)
        return screen

    def settled(self, quiet: float = 1.0, timeout: float = 15.0) -> str:
        """The screen once it has not changed for ``quiet`` s (scrolling done, the panel refreshed)."""
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            screen = self.text()
            if screen != last:
                last, since = screen, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.1)
        return last

    def kill(self) -> None:
        subprocess.run([self.tmux_bin, "-S", str(self.socket), "kill-server"], capture_output=True, timeout=10)


def layout_problems(screen: str, cols: int) -> list[str]:
    """Rows wider than the terminal; lab panel borders not in one column."""
    from rich.cells import cell_len

    problems, left, right = [], set(), set()
    for n, line in enumerate(screen.splitlines(), 1):
        if cell_len(line) > cols:
            problems.append(f"row {n} is {cell_len(line)} cells wide")
        if "▏│" in line:
            left.add(cell_len(line[:line.index("▏│")]))
            right.add(cell_len(line.rstrip()))
    if len(left) > 1 or len(right) > 1:
        problems.append(f"lab panel borders in columns {sorted(left)} (left) and {sorted(right)} (right)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", required=True, help="where capture-en.txt and capture-zh.txt go")
    parser.add_argument("--lesson", default="08-under-the-covers", help="lesson (id or folder)")
    parser.add_argument("--step", default="from-host", help="its step; it must leave a container running")
    parser.add_argument("--size", default="120x40")
    ns = parser.parse_args()
    cols, rows = (int(x) for x in ns.size.split("x"))
    out = Path(ns.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    script = Path(sys.executable).parent / "container-lab"
    if not script.is_file():
        sys.exit(f"capture.py: no container-lab next to {sys.executable}: pip install the project in this venv")
    if not shutil.which("tmux"):
        sys.exit("capture.py: tmux is not installed (apt-get install tmux)")

    sys.path.insert(0, str(REPO))
    from lessons.loader import load_course
    from tui.i18n import t

    course = load_course(None)
    lesson = course.lesson(ns.lesson) if ns.lesson in {x.id for x in course.lessons} else \
        next(x for x in course.lessons if x.folder == ns.lesson)
    step = next(s for s in lesson.steps if s.id == ns.step)

    work = Path(tempfile.mkdtemp(prefix="clab-capture-", dir="/tmp"))
    learner = work / "learner"
    learner.mkdir()
    (learner / "progress.json").write_text(json.dumps({
        "version": 1, "language": "en", "courses": {},
        "current": {"course": course.id, "lesson": lesson.id, "step": step.id}}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "CONTAINER_LAB_ROOT": str(work / "root"), "CONTAINER_LAB_LEARNER_DIR": str(learner),
           "CONTAINER_LAB_CGROUP_PARENT": f"container-lab-capture-{os.getpid()}"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("CONTAINER_LAB_")})
    from engine.client import Client
    from engine.errors import SupervisorError

    pane = Pane(work, env)
    try:
        subprocess.run([str(script), "images"], env=env, check=True, capture_output=True, timeout=600)  # the lab image
        client = Client()
        client.ping()               # the supervisor, started here (not by the app), so it is stopped here
        pane.tmux("new-session", "-d", "-s", "lab", "-x", str(cols), "-y", str(rows), "-c", str(work), str(script))
        pane.wait_for(lambda s: step.title("en") in s and " r " in s.splitlines()[-1], "the lesson")
        pane.keys("s")              # show me: the step's commands, then its checks
        pid = None

        def ready(screen: str) -> bool:
            nonlocal pid
            if pid is None:
                running = [c for c in client.ps() if c.get("status") == "running"]
                pid = client.inspect(running[0]["id"])["pid"] if running else None
            return pid is not None and f" {pid} " in screen and t("en", "status.done") in screen

        pane.wait_for(ready, "the step to pass with its container's PID 1 in the lab panel")
        captures = {"en": pane.settled()}
        pane.keys("F2")
        pane.wait_for(lambda s: lesson.title["zh"] in s and f" {pid} " in s and "F2 English" in s, "Chinese")
        captures["zh"] = pane.settled()
        for lang, screen in captures.items():
            path = out / f"capture-{lang}.txt"
            path.write_text(screen)
            problems = layout_problems(screen, cols)
            print(f"{path}: {len(screen.splitlines())} rows; host PID {pid} shown; "
                  f"{'; '.join(problems) if problems else 'rows fit, lab panel borders aligned'}")
        pane.keys("C-q")
        deadline, answered = time.monotonic() + 30, False
        while pane.tmux("display-message", "-p", "-t", "lab", "#{pane_dead}").strip() != "1":
            if not answered and t("zh", "quit.title") in pane.text():
                pane.keys("Enter")  # containers of the learner's own: remove them too
                answered = True
            if time.monotonic() > deadline:
                sys.exit(f"capture.py: the app did not quit; the screen:\n{pane.text()}")
            time.sleep(0.2)
    finally:
        pane.kill()
        try:
            client = Client(autostart=False)
            for c in client.ps(all=True):
                subprocess.run([str(script), "rm", "-f", c["id"]], env=env, capture_output=True, timeout=60)
            client.shutdown()
        except SupervisorError:     # never started, or gone already
            pass
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
