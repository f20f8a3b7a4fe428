"""Screenshots of the app (pytest-textual-snapshot), compared with the SVGs in
``__snapshots__/test_app_snapshots/``: the welcome screen, the course map and the lesson screen,
in English and Chinese, at 80x24 and 120x40; the help; a quiz answered.

Deterministic: the machine is pinned, the course is the fixture course, progress lives in a
fresh directory (seeded where a screen shows some), the lab is a stub that needs no engine and
the lab panel a placeholder; the shot is taken once every worker has finished. After a
deliberate change: ``pytest tests/test_app_snapshots.py --snapshot-update``, then look at the
report (or render each SVG) before keeping them.
"""

from __future__ import annotations

import pytest

from lessons.progress import ProgressStore
from tui.screens.parts import LabPlaceholder
from tui.start import make_app

from app_support import FIXTURE, ROOT_V2, StubLab

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture(autouse=True)
def _colors_on(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


async def settled(pilot) -> None:
    """Every worker done, every message handled (a step's lab is set up after its first frame)."""
    for _ in range(4):
        await pilot.pause(0.05)                     # a frame: callbacks after refresh run
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def app(tmp_path, lang: str, *, progress: dict | None = None, lesson: str | None = None):
    store = ProgressStore(tmp_path / "progress")
    if progress:
        for (lesson_id, step_id), fields in progress.items():
            store.record_step("fixture", lesson_id, step_id, **fields)
    return make_app(lang, machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "progress", lab=StubLab,
                    lab_panel=LabPlaceholder, engine=False, lesson=lesson)


def returning(tmp_path, lang: str):
    """A learner who finished lesson 1 and stopped in lesson 2."""
    done = {("hello", s): {"done": True} for s in ("hello", "shell", "why")}
    done[("isolation", "look")] = {"done": True}
    made = app(tmp_path, lang, progress=done)
    made.learner.store.set_current("fixture", "isolation", "neighbours")
    made.learner.record = made.learner.store.load()
    return made


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_welcome(snap_compare, tmp_path, lang, size):
    assert snap_compare(app(tmp_path, lang), terminal_size=SIZES[size], run_before=settled)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_course_map(snap_compare, tmp_path, lang, size):
    async def to_the_map(pilot):
        await settled(pilot)
        await pilot.press("m")
        await settled(pilot)
    assert snap_compare(returning(tmp_path, lang), terminal_size=SIZES[size], run_before=to_the_map)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_lesson(snap_compare, tmp_path, lang, size):
    async def with_a_hint(pilot):
        await settled(pilot)
        await pilot.press("h")
        await settled(pilot)
    assert snap_compare(app(tmp_path, lang, lesson="hello"), terminal_size=SIZES[size], run_before=with_a_hint)


def test_lesson_narrow_showing_the_lab(snap_compare, tmp_path):
    async def to_the_lab(pilot):
        await settled(pilot)
        await pilot.press("f3")
        await settled(pilot)
    assert snap_compare(app(tmp_path, "en", lesson="hello"), terminal_size=(80, 24), run_before=to_the_lab)


def test_quiz_answered_wrong(snap_compare, tmp_path):
    async def answer(pilot):
        await settled(pilot)
        await pilot.press("n", "n")
        await settled(pilot)
        await pilot.press("enter", "c")           # the first option: wrong
        await settled(pilot)
    assert snap_compare(app(tmp_path, "en", lesson="hello"), terminal_size=(120, 40), run_before=answer)


def test_help(snap_compare, tmp_path):
    assert snap_compare(app(tmp_path, "en", lesson="hello"), terminal_size=(120, 40), press=["f1"],
                        run_before=settled)
