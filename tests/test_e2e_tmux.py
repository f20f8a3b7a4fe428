"""End to end in a real terminal: the installed ``container-lab`` driven through tmux.

Nothing here is Textual's test harness: tmux runs the console script next to
this Python (``.venv/bin/container-lab``) on a 120x40 pseudo-terminal, keys go
in with ``send-keys``, and what a learner would see comes back as text from
``capture-pane``. A learner who has never run the course goes from the welcome
screen to the first lesson, the course map and lesson 7; types a ``docker run
-d`` on the command line; sees the lesson and, in the lab panel, that real
container's PID 1 with its host PID (the engine's own number for it, so a
made-up panel cannot pass); switches to Chinese with F2; quits, removing the
container when asked. Then the app has exited with status 0 and left the
terminal as it found it (tty modes, main screen, cursor shown, mouse reporting
off), nothing it started is left in the terminal's session, and the container
is gone. On both screens the lab panel's borders stand in one column on every
row: a real terminal is where Chinese text that the app measures differently
from the terminal would show.

A second session, at 80x24, works lesson 7's embedded terminal: opened with r, ended with exit and
opened again in the same step (a second terminal widget, never two at once); left with Ctrl+], and
the word "exit" typed by mistake in the lesson neither resets the step nor quits (x, q), while t and
F3 put the keys back into the still-open session.

The app runs in a clean environment: HOME and XDG_STATE_HOME in a temporary
directory (fresh progress; no SUDO_USER, which would send progress to the
invoking user's home) and this test session's private engine
(CONTAINER_LAB_ROOT, from conftest). tmux has its own server on a socket in
that directory. tmux is required: CI installs it (.ci/run); without it this
test fails rather than skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lessons.docker import LABEL_COURSE
from tui import course_cache
from tui.i18n import t

from conftest import cl, needs_root, settle

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

LESSON = "07-shell-in-a-container"
NAME = "e2e"
COMMAND = f"docker run -d --name {NAME} ubuntu sleep 600"
COLS, ROWS = 120, 40
CONFIG = """\
set -g status off
set -g remain-on-exit on
set -g default-terminal tmux-256color
"""
# The pane's program: the app, then (the app gone, the pane still alive, so tmux can tell how it
# left the terminal) its exit status and whether the tty's modes are as before; Enter ends it.
WRAPPER = ('before=$(stty -g); "$0" "$@"; status=$?; '
           '[ "$(stty -g)" = "$before" ] && tty="tty modes restored" || tty="tty modes CHANGED"; '
           'echo "[container-lab exited: $status; $tty]"; read -r _')
# A lab panel row of the process table: PID 1, its host PID, then user, state and command.
PID1_ROW = re.compile(r"│\s*1\s+(\d+)\s+root\b.*\bsleep 600\b")


class Pane:
    """One tmux server on a private socket, with one session running one program."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.tmux_bin = shutil.which("tmux")
        assert self.tmux_bin, "tmux is not installed (apt-get install tmux; .ci/run installs it)"
        self.socket, self.env = workdir / "tmux.sock", env
        self.config = workdir / "tmux.conf"
        self.config.write_text(CONFIG)

    def tmux(self, *args: str) -> str:
        proc = subprocess.run([self.tmux_bin, "-S", str(self.socket), "-f", str(self.config), *args],
                              capture_output=True, text=True, env=self.env, timeout=10)
        assert proc.returncode == 0, f"tmux {' '.join(args)} -> {proc.returncode}: {proc.stderr}"
        return proc.stdout

    def start(self, argv: list[str], cwd: Path, cols: int = COLS, rows: int = ROWS) -> None:
        self.tmux("new-session", "-d", "-s", "lab", "-x", str(cols), "-y", str(rows), "-c", str(cwd), *argv)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "lab", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "lab", "-l", text)

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "lab")

    def state(self, *names: str) -> dict[str, str]:
        """tmux's formats for the pane: pane_dead, alternate_on, cursor_flag ..."""
        out = self.tmux("display-message", "-p", "-t", "lab", "\t".join(f"#{{{n}}}" for n in names))
        return dict(zip(names, out.rstrip("\n").split("\t")))

    def wait_for(self, condition, what: str, timeout: float = 30.0) -> str:
        """The screen, once ``condition(screen)`` holds (AssertionError with the screen after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.socket.exists():
            subprocess.run([self.tmux_bin, "-S", str(self.socket), "kill-server"], capture_output=True, timeout=10)


def host_pid(name: str) -> int:
    """The container's PID 1 as the host sees it, from the engine."""
    settle()
    (record,) = json.loads(cl("inspect", name, check=True).stdout)
    assert record["status"] == "running", record["status"]
    return int(record["pid"])


def lab_borders(screen: str) -> tuple[set[int], set[int]]:
    """The terminal columns where the lab panel's left and right borders are drawn on its rows:
    one of each when the layout holds (a character whose width the app and the terminal
    disagree on moves the border of its row)."""
    from rich.cells import cell_len

    left, right = set(), set()
    for line in screen.splitlines():
        if "▏│" in line:
            left.add(cell_len(line[:line.index("▏│")]))
            right.add(cell_len(line.rstrip()))
    return left, right


def course_containers() -> list[dict]:
    settle()
    out = [json.loads(line) for line in cl("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    return [c for c in out if c["name"] == NAME or (c.get("labels") or {}).get(LABEL_COURSE)]


def test_a_learner_in_a_real_terminal_sees_a_real_container_and_chinese():
    script = Path(sys.executable).parent / "container-lab"
    assert script.is_file(), f"the console script is not installed next to {sys.executable}"
    course = course_cache.load()
    lesson = course.lesson(LESSON)
    number = course.lessons.index(lesson) + 1
    assert lesson.steps[0].commands, "the test types its command on the lesson's first step: it must run commands"
    assert course_containers() == []

    work = Path(tempfile.mkdtemp(prefix="e2e-tmux-", dir="/tmp"))
    home = work / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           **{k: v for k, v in os.environ.items()
              if k.startswith("CONTAINER_LAB_") and k != "CONTAINER_LAB_LEARNER_DIR"}}   # progress in HOME
    pane = None
    try:
        pane = Pane(work, env)
        pane.start(["sh", "-c", WRAPPER, str(script), "--lang", "en"], work)
        assert pane.state("pane_width", "pane_height") == {"pane_width": str(COLS), "pane_height": str(ROWS)}

        # A new learner: the welcome screen. Enter starts the course (lesson 1); m opens the map.
        pane.wait_for(lambda s: t("en", "start.button") in s, "the welcome screen")
        pane.keys("Enter")
        pane.wait_for(lambda s: course.lessons[0].title["en"] in s and "m " + t("en", "key.map") in s,
                      "the first lesson")
        pane.keys("m")
        pane.wait_for(lambda s: t("en", "map.lesson", number=1, title=course.lessons[0].title["en"]) in s,
                      "the course map")
        pane.keys(*["Down"] * (number - 1))
        pane.wait_for(lambda s: t("en", "map.lesson", number=number,
                                  title=lesson.title["en"]) in s, f"the map to highlight lesson {number}")
        pane.keys("Enter")
        first_step = lesson.steps[0].title("en")
        run_key = "r " + t("en", "key.run")
        pane.wait_for(lambda s: t("en", "lesson.subtitle", number=number, total=len(course.lessons),
                                  title=lesson.title["en"]) in s and first_step in s
                      and run_key in s.splitlines()[-1], "the lesson and its keys")

        # The command line (the last row but one): a container that keeps running. The step may still
        # be getting its lab ready (the line then keeps the command): Enter again until it is taken.
        # Letters typed before the line has the focus would be lost (or taken as the lesson's keys):
        # wait for the footer to drop the lesson's keys, as it does while the line has the focus.
        pane.keys(":")
        pane.wait_for(lambda s: "F1 " in s.splitlines()[-1] and run_key not in s.splitlines()[-1],
                      "the command line")
        pane.type(COMMAND)
        pane.wait_for(lambda s: COMMAND in s.splitlines()[-2], "the command typed")
        deadline = time.monotonic() + 30
        while COMMAND in pane.text().splitlines()[-2]:
            assert time.monotonic() < deadline, f"the command line never took the command:\n{pane.text()}"
            pane.keys("Enter")
            time.sleep(0.5)
        pane.keys("Escape")             # back to the lesson: the footer shows the lesson's keys
        pid = None

        def shows_pid1(screen: str) -> bool:
            nonlocal pid
            if pid is None and any(c["name"] == NAME and c["status"] == "running" for c in course_containers()):
                pid = host_pid(NAME)
            match = PID1_ROW.search(screen)
            return pid is not None and match is not None and int(match.group(1)) == pid

        screen = pane.wait_for(lambda s: shows_pid1(s) and run_key in s.splitlines()[-1],
                               f"the lab panel to show {NAME}'s PID 1 with its host PID, and the lesson's keys")
        assert first_step in screen and f"● {NAME}" in screen and "F2 中文" in screen, screen
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00600\x00"     # the host's own view
        left, right = lab_borders(screen)
        assert len(left) == 1 and right == {COLS}, f"the lab panel's borders are not in line:\n{screen}"

        # F2: the lesson and the app in Chinese, the same container still shown.
        pane.keys("F2")
        screen = pane.wait_for(
            lambda s: lesson.title["zh"] in s and "F1 " + t("zh", "key.help") in s and "F2 English" in s
            and (m := PID1_ROW.search(s)) is not None and int(m.group(1)) == pid, "the screen in Chinese")
        assert t("zh", "lesson.subtitle", number=number, total=len(course.lessons),
                 title=lesson.title["zh"]) in screen
        assert "c " + t("zh", "key.check") in screen and "^q " + t("zh", "key.quit") in screen
        assert lab_borders(screen) == (left, right), f"the lab panel's borders moved in Chinese:\n{screen}"

        # Quit: the app asks about the learner's own container; the first answer removes it.
        pane.keys("C-q")
        pane.wait_for(lambda s: t("zh", "quit.title") in s and NAME in s, "the question before quitting")
        pane.keys("Enter")
        screen = pane.wait_for(lambda s: "[container-lab exited:" in s, "the app to exit", timeout=30)
        assert "[container-lab exited: 0; tty modes restored]" in screen, screen
        state = pane.state("alternate_on", "cursor_flag", "mouse_any_flag", "mouse_sgr_flag", "keypad_cursor_flag")
        assert state == {"alternate_on": "0", "cursor_flag": "1", "mouse_any_flag": "0", "mouse_sgr_flag": "0",
                         "keypad_cursor_flag": "0"}, f"the terminal was not restored: {state}"
        assert "▏│" not in pane.text(), "the app's screen was left on the terminal"
        assert course_containers() == []
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/cmdline").read_bytes() != b"sleep\x00600\x00"
        # The pane's shell leads the terminal's session; what the app started and left would still be
        # in it. (Not ps -t: a container's own devpts can number a pty the same as this one.)
        shell = pane.state("pane_pid")["pane_pid"]
        in_session = subprocess.run(["ps", "-o", "pid=,args=", "-s", shell],
                                    capture_output=True, text=True, check=True).stdout.splitlines()
        assert [line.split()[0] for line in in_session] == [shell], \
            f"in the app's terminal session, more than the shell that started it:\n{in_session}"
        pane.keys("Enter")              # the wrapper's last read: the pane's process ends
        deadline = time.monotonic() + 10
        while pane.state("pane_dead")["pane_dead"] != "1":
            assert time.monotonic() < deadline, f"the pane's process did not end:\n{pane.text()}"
            time.sleep(0.1)

        # Progress went to the temporary home, in the language chosen last.
        progress = json.loads((home / "state" / "container-lab" / "progress.json").read_text())
        assert progress["language"] == "zh" and progress["current"]["lesson"] == lesson.id
    finally:
        if pane is not None:
            pane.kill()
        try:
            cl("rm", "-f", NAME)
            for c in course_containers():
                cl("rm", "-f", c["id"])
        finally:
            shutil.rmtree(work, ignore_errors=True)


def test_an_embedded_terminal_reopened_left_and_found_again_at_80_columns():
    """Lesson 7's first step (``docker run -ti ubuntu bash``) at 80x24: the terminal opens with
    r, ends with exit, and opens again with r in the same step; Ctrl+] leaves it, and the word
    "exit" typed by mistake in the lesson neither resets the step (x: the session survives) nor
    quits (q), while t and F3 put the keys back into the terminal. Then the app quits cleanly."""
    script = Path(sys.executable).parent / "container-lab"
    course = course_cache.load()
    lesson = course.lesson(LESSON)
    assert "-ti" in lesson.steps[0].commands[0].text.split() and len(lesson.steps[0].commands) == 1
    assert course_containers() == []
    work = Path(tempfile.mkdtemp(prefix="e2e-tmux-", dir="/tmp"))
    home = work / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           **{k: v for k, v in os.environ.items()
              if k.startswith("CONTAINER_LAB_") and k != "CONTAINER_LAB_LEARNER_DIR"}}   # progress in HOME
    title = "Terminal · ctrl+] back to the lesson"
    pane = None

    def footer(s: str) -> str:
        return (s.rstrip("\n").splitlines() or [""])[-1]

    def open_terminal(what: str) -> str:
        """r until the step's -ti command runs (r while the step is being prepared only says so)."""
        deadline = time.monotonic() + 60
        def live(s: str) -> bool:               # a terminal, not the last one's screen ("has ended")
            return title in s and "The shell has ended" not in s

        while not live(pane.text()):
            assert time.monotonic() < deadline, f"r never opened the terminal:\n{pane.text()}"
            pane.keys("r")
            try:
                pane.wait_for(live, what, 3)
            except AssertionError:
                pass
        return pane.wait_for(lambda s: re.search(r"root@\w+:/# ", s), f"{what}: a prompt")

    def in_terminal(word: str) -> str:
        pane.keys("C-u")
        pane.type(f"echo {word}-$((6*7))")
        pane.keys("Enter")
        return pane.wait_for(lambda s: f"{word}-42" in s, f"the shell to answer {word}")

    try:
        pane = Pane(work, env)
        pane.start(["sh", "-c", WRAPPER, str(script), "--lang", "en", "--lesson", LESSON], work, 80, 24)
        pane.wait_for(lambda s: "r " + t("en", "key.run") in footer(s), "the lesson")
        open_terminal("the first terminal")
        in_terminal("one")
        pane.type("exit")
        pane.keys("Enter")
        pane.wait_for(lambda s: "The shell has ended" in s, "the first session to end")
        screen = open_terminal("the terminal opened again")           # the same step, the same widget id
        assert "one-42" not in screen and "Traceback" not in screen, screen
        in_terminal("two")

        # Ctrl+]: the lesson; its footer names the key back. "exit" typed there: x does not reset
        # the step (which would remove the container the shell runs in), t goes back to the terminal.
        pane.keys("C-]")
        pane.wait_for(lambda s: title not in s and "t " + t("en", "key.terminal") in footer(s), "the lesson")
        pane.type("exit")
        pane.wait_for(lambda s: title in s, "t to show the terminal again")
        in_terminal("three")                                            # the same session, still alive
        pane.keys("C-]")
        pane.wait_for(lambda s: title not in s, "the lesson")
        pane.keys("F2")
        pane.wait_for(lambda s: "t " + t("zh", "key.terminal") in footer(s), "the footer in Chinese")
        pane.keys("q")                                                  # a lone q does not quit ...
        pane.wait_for(lambda s: "Ctrl+Q" in s and "t " + t("zh", "key.terminal") in footer(s), "q to explain")
        pane.keys("F3")                                                 # ... F3 is the terminal again
        pane.wait_for(lambda s: title.split(" · ")[0] in s or "终端" in s.splitlines()[1], "F3: the terminal")
        in_terminal("four")
        pane.type("exit")
        pane.keys("Enter")
        pane.wait_for(lambda s: "exit" in s and "four-42" in s and "ctrl+]" not in footer(s), "the session to end")
        pane.keys("C-q")
        screen = pane.wait_for(lambda s: "[container-lab exited:" in s, "the app to exit", timeout=30)
        assert "[container-lab exited: 0; tty modes restored]" in screen, screen
        assert course_containers() == []
    finally:
        if pane is not None:
            pane.kill()
        try:
            for c in course_containers():
                cl("rm", "-f", c["id"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
