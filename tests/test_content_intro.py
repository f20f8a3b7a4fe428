"""The shipped course's introduction (lessons 1 to 5) against the real engine.

The lessons are copied into a course of their own (course.toml, glossary and
the five folders), so they are tested on their own whatever state the later
lessons are in. For each lesson, in English and in Chinese, ``solve`` must do
every step and pass every check and quiz; every hands-on step must also work
when opened directly (reset to that step, as "reset step" does), and must
fail at least one check when the learner has done nothing. A step that
requires what this machine lacks (``container-lab doctor``) is skipped, as
the lab would skip it. Nothing may be left behind.
"""

from __future__ import annotations

import shutil

import pytest

from conftest import REPO, needs_root, overlay_mounts, settle
from lessons.lab import Lab
from lessons.loader import load_course
from lessons.solve import solve
from lessons.view import EngineView

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

CONTENT = REPO / "content"
FOLDERS = sorted(p.name for p in CONTENT.iterdir() if p.is_dir() and p.name[:3] in {f"0{n}-" for n in range(1, 6)})


@pytest.fixture(scope="module")
def intro(tmp_path_factory):
    root = tmp_path_factory.mktemp("intro")
    for name in ("course.toml", "glossary.toml"):
        shutil.copy(CONTENT / name, root / name)
    for folder in FOLDERS:
        shutil.copytree(CONTENT / folder, root / folder)
    return load_course(root)


@pytest.fixture(scope="module")
def view():
    return EngineView()


def _leftovers(view, course) -> list[str]:
    settle()
    return [c["name"] for c in view.containers() if (c.get("labels") or {}).get("course") == course.id]


def test_the_five_lessons_are_there(intro):
    assert len(FOLDERS) == 5
    assert [lesson.folder for lesson in intro.lessons] == FOLDERS


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_solve(intro, view, folder, lang):
    lesson = intro.lesson(folder)
    lines: list[str] = []
    report = solve(intro, lang=lang, lessons=[lesson.id], out=lines.append, view=view)
    assert report.ok, "\n".join(lines + report.failures)
    assert report.steps == len(lesson.steps)
    runnable = [s for s in lesson.steps if not Lab(intro, lesson, view=view).lacking(s)]
    assert report.checks == sum(len(s.checks) for s in runnable)
    assert not _leftovers(view, intro)
    assert not overlay_mounts()


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_step_opens_directly_and_needs_doing(intro, view, folder):
    lesson = intro.lesson(folder)
    lab = Lab(intro, lesson, view=view)
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
            lab.show_me(step)
            results = lab.check(step, cursor, wait=10)
            assert all(r.passed for r in results), f"{step.id}: {[r for r in results if not r.passed]}"
    finally:
        lab.cleanup()
    assert not _leftovers(view, intro)
