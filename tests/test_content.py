"""The shipped course (content/, all ten lessons) against the real engine.

For each lesson, in English and in Chinese, ``solve`` must do
every step and pass every check and quiz; every hands-on step must also work
when opened directly (reset to that step, as "reset step" does) and must fail
at least one check when the learner has done nothing. A step that requires
what this machine lacks (``container-lab doctor``) is skipped, as the lab
would skip it. Nothing may be left behind.
"""

from __future__ import annotations

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
    return [c["name"] for c in view.containers() if (c.get("labels") or {}).get("course") == course.id]


def test_the_ten_lessons_are_there(core):
    assert [lesson.folder for lesson in core.lessons] == FOLDERS
    assert [f.split("-", 1)[0] for f in FOLDERS] == [f"{n:02d}" for n in range(1, 11)]
    namespaces = core.lesson("namespaces")
    assert [s.id for s in namespaces.steps][:8] == ["pid", "user", "uts", "mnt", "net", "ipc", "cgroup", "time"]
    limits = core.lesson("cgroups")
    assert {s.id: s.requires for s in limits.steps if s.requires} == {
        "memory": ("cgroup.memory",), "fork-bomb": ("cgroup.pids",), "cpu": ("cgroup.cpu",),
        "clean-up": ("cgroup.cpu",)}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_solve(core, view, folder, lang):
    lesson = core.lesson(folder)
    lines: list[str] = []
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
            for command, ran in zip(step.show_me, lab.show_me(step)):
                assert not ran.error and (ran.exit_code in expected or limit or command.type), \
                    f"{step.id}: `{command.text}`: {ran}"
            results = lab.check(step, cursor, wait=10)
            assert all(r.passed for r in results), f"{step.id}: {[r for r in results if not r.passed]}"
    finally:
        lab.cleanup()
    assert not _leftovers(view, core)
