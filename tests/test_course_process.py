"""What PID 1 must do, and reading what a container uses: the checks of
lesson 8's signals and zombies and lesson 10's ``docker stats``, on real
containers.

- ``docker stats`` is recorded (a ``stats`` event per container shown) and
  ``stats-read`` passes only after it, for that container;
- ``process-state``: a PID 1 that never waits leaves an orphan a zombie
  (``Z``); with ``--init`` (tini as PID 1) none is left;
- a PID 1 without a handler ignores ``SIGTERM``: ``docker stop`` waits its
  grace and kills (137); with ``--init`` the signal is passed on (143).
"""

from __future__ import annotations

import time

import pytest

from lessons.checks import evaluate, validate
from lessons.model import CheckSpec
from lessons.view import EngineView

from conftest import cl, needs_root, settle

ORPHAN = "(sleep 1 &); exec sleep 300"      # the subshell exits: its sleep is an orphan, PID 1's child


@pytest.fixture(scope="module")
def view() -> EngineView:
    return EngineView()


def check(view, kind: str, cursor: int, lang: str = "en", **args):
    return evaluate(CheckSpec(kind, args), view, cursor, lang)


def test_the_process_kinds_take_their_arguments():
    assert validate("process-state", {"container": "z", "state": "Z", "present": False, "settle": 1}) == []
    assert validate("process-state", {"container": "z", "state": "zombie"}) == \
        ["check 'process-state': 'state' must be one of: R, S, D, Z, T, t, I"]
    assert validate("process-state", {"state": "Z"}) == ["check 'process-state': 'container' is required"]
    assert validate("stats-read", {"container": "x"}) == []
    assert validate("stats-read", {"name": "x"}) == \
        ["check 'stats-read': unknown argument 'name' (it takes: container)"]


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_docker_stats_is_recorded_per_container(view):
    cl("run", "-d", "--name", "gauged", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "unread", "lab", "sleep", "300", check=True)
    cursor = view.cursor()
    idle = check(view, "stats-read", cursor, container="gauged")
    assert not idle.passed and idle.saw == "no docker stats since this step began"
    out = cl("stats", "--no-stream", "gauged", check=True).stdout
    assert "gauged" in out and "MEM USAGE" in out
    (event,) = [e for e in view.events(cursor) if e["kind"] == "stats"]
    assert event["name"] == "gauged"
    ok = check(view, "stats-read", cursor, container="gauged")
    assert ok.passed and ok.saw == "docker stats gauged" and ok.expected == "docker stats was run on container gauged"
    assert check(view, "stats-read", cursor).passed
    other = check(view, "stats-read", cursor, "zh", container="unread")
    assert not other.passed and other.saw == "docker stats gauged"
    assert other.expected == "对容器 unread 运行过 docker stats"
    # A name that is no container: docker's error, nothing recorded.
    after = view.cursor()
    bad = cl("stats", "--no-stream", "no-such-box")
    assert bad.returncode == 1 and "no-such-box" in bad.stderr
    assert [e for e in view.events(after) if e["kind"] == "stats"] == []


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_a_pid1_that_never_waits_keeps_a_zombie_and_init_reaps_it(view):
    cursor = view.cursor()
    cl("run", "-d", "--name", "nozomb", "lab", "sh", "-c", ORPHAN, check=True)
    cl("run", "-d", "--name", "reaped", "--init", "lab", "sh", "-c", ORPHAN, check=True)
    # Straight after the start, "no zombie" is not yet worth anything (a settle time of 30 s,
    # not the default 2: a loaded machine may take longer than 2 s between the start and the look).
    early = check(view, "process-state", cursor, container="reaped", state="Z", present=False, settle=30)
    assert not early.passed and early.saw == "reaped started less than 30 s ago: look again in a moment"
    deadline = time.monotonic() + 10
    while not (zombie := check(view, "process-state", cursor, container="nozomb", state="Z")).passed:
        assert time.monotonic() < deadline, zombie
        time.sleep(0.2)
    assert zombie.saw.startswith("nozomb has 2 processes, PID ") and zombie.saw.endswith("(sleep) in state Z")
    states = {pid: (st, comm) for pid, st, comm in view.process_states(view.container("nozomb")["pid"])}
    assert states[1] == ("S", "sleep") and ("Z", "sleep") in states.values()
    assert not check(view, "process-state", cursor, container="nozomb", state="Z", present=False).passed
    time.sleep(2)
    none = check(view, "process-state", cursor, "zh", container="reaped", state="Z", present=False)
    assert none.passed and none.saw == "容器 reaped 有 2 个进程，没有一个的状态是 Z", none
    assert not check(view, "process-state", cursor, container="reaped", state="Z").passed
    ps = cl("exec", "nozomb", "ps", "-o", "stat=", check=True).stdout.split()
    assert "Z" in ps
    gone = check(view, "process-state", cursor, container="no-such-box", state="Z")
    assert not gone.passed and gone.saw == "there is no container named no-such-box"


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_sigterm_needs_a_handler_in_pid1_and_init_passes_it_on(view):
    cursor = view.cursor()
    cl("run", "-d", "--name", "stubborn", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "polite", "--init", "lab", "sleep", "300", check=True)
    # From inside, PID 1 without a handler does not even notice SIGTERM.
    cl("exec", "stubborn", "kill", "1", check=True)
    time.sleep(0.5)
    assert view.container("stubborn")["status"] == "running"
    began = time.monotonic()
    cl("stop", "-t", "2", "stubborn", check=True)
    assert time.monotonic() - began >= 2                    # the grace ran out
    began = time.monotonic()
    cl("stop", "polite", check=True)
    assert time.monotonic() - began < 5                     # tini passed SIGTERM on; sleep died of it
    killed = check(view, "container-ran", cursor, name="stubborn", exit_code=137)
    assert killed.passed, killed
    assert check(view, "container-ran", cursor, name="polite", exit_code=143).passed
    assert not check(view, "container-ran", cursor, name="polite", exit_code=137).passed
    # SIGKILL from the host always gets through, handler or not.
    cl("start", "stubborn", check=True)
    cl("kill", "stubborn", check=True)
    settle()
    assert view.container("stubborn")["status"] == "exited"
    assert view.container("stubborn")["exit_code"] == 137
