"""The shipped course (content/, all twelve lessons) against the real engine.

For each lesson, in English and in Chinese, ``solve`` must do
every step and pass every check and quiz; every hands-on step must also work
when opened directly (reset to that step, as "reset step" does) and must fail
at least one check when the learner has done nothing. A step that requires
what this machine lacks (``container-lab doctor``) is skipped, as the lab
would skip it. Nothing may be left behind: no container, no network.

A lesson that publishes a fixed host port (``-p 8080:80``) holds that port
while it runs, so such a lesson runs in one test at a time across the
machine (a lock: pytest-xdist workers and other test sessions each have
an engine of their own, but the host's ports are shared), and it starts once
no program listens on the port any more (a connection's TIME-WAIT does not
hold it: the engine binds as a server does, with SO_REUSEADDR).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time

import pytest

from lessons.lab import Lab
from lessons.loader import load_course
from lessons.solve import solve
from lessons.view import EngineView

from conftest import REPO, needs_root, overlay_mounts, settle

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

CONTENT = REPO / "content"
FOLDERS = sorted((p.name for p in CONTENT.iterdir() if p.is_dir() and p.name[:2].isdigit()),
                 key=lambda name: int(name.split("-", 1)[0]))


@pytest.fixture(scope="module")
def core():
    return load_course(CONTENT)


@pytest.fixture(scope="module")
def view():
    return EngineView()


def _leftovers(view, course) -> list[str]:
    settle()
    left = [c["name"] for c in view.containers() if (c.get("labels") or {}).get("course") == course.id]
    made = {name for lesson in course.lessons for name in Lab(course, lesson, view=view).networks()}
    return left + sorted(made & set(view.networks()))


def _host_ports(lesson) -> set[int]:
    """The host ports the lesson's commands publish by number (``-p [IP:]HOST:CONTAINER``)."""
    texts = [c.text for c in lesson.setup]
    for step in lesson.steps:
        texts += [c.text for c in (*step.setup, *step.commands, *step.show)]
    ports = set()
    for text in texts:
        for spec in re.findall(r"(?:^|\s)(?:-p|--publish)[ =](\S+)", text):
            parts = spec.split("/")[0].split(":")
            if len(parts) >= 2 and parts[-2].isdigit():
                ports.add(int(parts[-2]))
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _holding_ports(lesson, timeout: float = 90, wait_turn: float = 900, ports: set[int] | None = None):
    """Run a lesson that publishes fixed host ports alone, once its ports can be bound
    (``ports``: these instead of the lesson's, e.g. a whole course's).
    The lock is an abstract Unix socket name: machine-wide, nothing left on disk, and let
    go by the kernel if the test process dies."""
    ports = _host_ports(lesson) if ports is None else ports
    if not ports:
        yield
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as lock:
        deadline = time.monotonic() + wait_turn
        while True:
            try:
                lock.bind(b"\0container-lab-test-host-ports")
                break
            except OSError:
                assert time.monotonic() < deadline, "another test held the lesson's host ports too long"
                time.sleep(0.5)
        deadline = time.monotonic() + timeout
        while not all(_bindable(p) for p in ports):
            assert time.monotonic() < deadline, f"host ports {sorted(ports)} stayed in use"
            time.sleep(1)
        yield


def test_the_twelve_lessons_are_there(core, view):
    assert [lesson.folder for lesson in core.lessons] == FOLDERS
    assert [f.split("-", 1)[0] for f in FOLDERS] == [f"{n:02d}" for n in range(1, 13)]
    namespaces = core.lesson("namespaces")
    assert [s.id for s in namespaces.steps][:8] == ["pid", "user", "uts", "mnt", "net", "ipc", "cgroup", "time"]
    limits = core.lesson("cgroups")
    assert {s.id: s.requires for s in limits.steps if s.requires} == {
        "limits": ("cgroup.memory", "cgroup.pids"), "memory": ("cgroup.memory",), "fork-bomb": ("cgroup.pids",),
        "cpu": ("cgroup.cpu",), "clean-up": ("cgroup.cpu",)}
    images = core.lesson("build-and-share")
    assert [s.id for s in images.steps] == ["first-pull", "an-image-is-a-tar", "build", "history", "cache",
                                            "push-and-pull-back", "recap"]
    assert {s.id: s.requires for s in images.steps if s.requires} == {"push-and-pull-back": ("registry.course",)}
    assert [name for name, _ in images.files] == ["Dockerfile", "Dockerfile.changed"]
    networks = core.lesson("networks")
    assert [s.id for s in networks.steps] == ["bridge", "by-name", "publish", "none", "by-name-how", "recap"]
    assert {s.id for s in networks.steps if "network.bridge" in s.requires} == {"bridge", "by-name", "publish",
                                                                                "none"}
    # What a classroom seat may not have (host namespaces, host paths): those steps say so for a seat.
    assert {(lesson.id, s.id) for lesson in core.lessons for s in lesson.steps if "host.access" in s.requires} == {
        ("vm-vs-container", "memory"), ("namespaces", "user"), ("namespaces", "uts"), ("namespaces", "mnt"),
        ("namespaces", "net"), ("networks", "publish")}
    assert _host_ports(networks) == {8080}
    assert Lab(core, networks, view=view).networks() == ("lab-net",)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_solve(core, view, folder, lang):
    lesson = core.lesson(folder)
    lines: list[str] = []
    with _holding_ports(lesson):
        report = solve(core, lang=lang, lessons=[lesson.id], out=lines.append, view=view)
    assert report.ok, "\n".join(lines + report.failures)
    assert report.steps == len(lesson.steps)
    runnable = [s for s in lesson.steps if not Lab(core, lesson, view=view).lacking(s)]
    assert report.checks == sum(len(s.checks) for s in runnable)
    assert report.skipped == len(lesson.steps) - len(runnable)
    assert not _leftovers(view, core)
    assert not overlay_mounts()


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_step_opens_directly_and_needs_doing(core, view, folder):
    lesson = core.lesson(folder)
    lab = Lab(core, lesson, view=view)
    with _holding_ports(lesson):
        _every_step_directly(lab, lesson)
    assert not _leftovers(view, core)


def _every_step_directly(lab, lesson) -> None:
    try:
        for step in lesson.steps:
            if not step.checks:
                assert step.quiz is not None, f"{step.id}: a step with neither checks nor a quiz"
                continue
            if lab.lacking(step):
                continue
            cursor, setup = lab.reset(step)
            assert all(r.ok for r in setup), f"{step.id}: setup failed: {setup}"
            idle = lab.check(step, cursor)
            assert not all(r.passed for r in idle), f"{step.id}: its checks pass with nothing done"
            # Each show-me command ends well, or as the step expects: an exit code a check names, or
            # any where a limit is to be hit (a killed hog, a refused fork). A non-zero exit is put
            # after an arrow in the app: it must not come where the lesson does not say why. (A
            # shell typed into ends with its last command's code: that is the learner's.)
            expected = {0} | {c.args["exit_code"] for c in step.checks if "exit_code" in c.args}
            limit = any(c.kind == "limit-hit" for c in step.checks)
            # Tried once more from the step's start when a command ends badly, as a learner (and
            # course solve) would: a server just started in a container may not listen yet when
            # a fast automated learner asks it (lesson 11's wget right after its httpd).
            for attempt in (1, 2):
                ran = list(zip(step.show_me, lab.show_me(step)))
                bad = [(c, r) for c, r in ran if r.error or not (r.exit_code in expected or limit or c.type)]
                if not bad or attempt == 2:
                    break
                time.sleep(1)
                cursor, setup = lab.reset(step)
            assert not bad, f"{step.id}: `{bad[0][0].text}`: {bad[0][1]}"
            results = lab.check(step, cursor, wait=10)
            assert all(r.passed for r in results), f"{step.id}: {[r for r in results if not r.passed]}"
    finally:
        lab.cleanup()
