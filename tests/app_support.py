"""What the app's tests share: a lab that needs no engine, a pinned machine,
a pinned one-lesson course, waiting for the app (and quitting it), the screen
as text, and -- for the tests against the real engine -- the course's
containers and the check that none is left behind."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from lessons.checks import Result
from lessons.i18n import msg
from tui.machine import Machine

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course"
ROOT_V2 = Machine.pinned()
USER_NONE = Machine.pinned(root=False, cgroup="none", limits=(), overlayfs=False,
                           reason="cgroup v2 at /sys/fs/cgroup is not writable by uid 1000")


class StubLab:
    """A lesson's lab without an engine (a :class:`tui.contracts.LessonLab`, as the
    real one): every step is ready at once, every check passes once asked (worded
    in the lab's language), nothing runs."""

    def __init__(self, lesson):
        self.lesson, self.lang = lesson, "en"
        self.checked: list[tuple[str, str]] = []        # (step id, language) of each check
        self.ran: list[str] = []                        # the commands "run"

    def begin_step(self, step, cancel=None):
        return 0, []

    def reset(self, step=None, cancel=None):
        return 0, []

    def unavailable(self, step):
        return None

    def check(self, step, cursor, *, wait=0.0, cancel=None):
        self.checked.append((step.id, self.lang))
        return [Result(spec.kind, True, msg(self.lang, "saw.no_container"), msg(self.lang, "exp.container_ran"))
                for spec in step.checks]

    def containers(self):
        return []

    def translate(self, text, step=None, origin="learner"):
        from lessons.docker import Context, translate
        return translate(text, Context(course="fixture", lesson=self.lesson.id, lang=self.lang), check_only=True)

    def run(self, command, step=None, *, origin="learner", cancel=None, on_output=None, timeout=120):
        from lessons.runner import RunResult
        self.ran.append(command)
        if on_output:
            on_output("pretend output\n")
        return RunResult(command, 0, "pretend output\n")

    def run_explained(self, command, step=None, *, gate, origin="learner", cancel=None, on_begin=None,
                      on_stage=None, on_output=None):
        """No engine, so no stages: the command "runs" at once, as :meth:`run`."""
        return self.run(command, step, origin=origin, cancel=cancel, on_output=on_output)

    def taken(self, cmd):
        return None

    def clear_leftovers(self, step):
        return []

    def show_me(self, step, *, cancel=None, on_output=None, origin="show"):
        return [self.run(c.text, step, on_output=on_output) for c in step.show_me]


def pinned_course(tmp_path: Path, *lessons: str) -> Path:
    """A course folder with the shipped course's course.toml and glossary and only
    ``lessons`` (folders of content/): the test does not change as other lessons are written."""
    src, dst = REPO / "content", tmp_path / "course"
    dst.mkdir()
    for name in ("course.toml", "glossary.toml"):
        shutil.copy(src / name, dst / name)
    for lesson in lessons:
        shutil.copytree(src / lesson, dst / lesson)
    return dst


def screen_text(app) -> str:
    """What the terminal shows, as text (what a snapshot shows, without its colours)."""
    return "\n".join("".join(seg.text for seg in strip).rstrip()
                     for strip in app.screen._compositor.render_strips())


def engine_containers(all_: bool = True) -> list[dict]:
    """The engine's containers (``ps [-a] --format json``), once earlier exits are tidied."""
    from conftest import cl, settle

    settle()
    out = cl("ps", *(["-a"] if all_ else []), "--format", "json", check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def course_containers() -> list[dict]:
    """The containers a course made (labelled with its id)."""
    from lessons.docker import LABEL_COURSE

    return [c for c in engine_containers() if (c.get("labels") or {}).get(LABEL_COURSE)]


@pytest.fixture(autouse=True)
def no_course_containers_left():
    """Nothing of a course is left after a test (the app's quit removes it; this
    checks). Autouse in each test module that imports it."""
    from conftest import cl

    assert course_containers() == []
    yield
    left = course_containers()
    for c in left:
        cl("rm", "-f", c["id"])
    assert left == [], f"the app left {[c['name'] for c in left]}"


async def quit_app(pilot, app, timeout: float = 30.0) -> None:
    """Ctrl+Q, and wait until the app has stopped."""
    await pilot.press("ctrl+q")
    await wait_for(pilot, lambda: not app.is_running, timeout, "the app to quit")


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds (AssertionError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await pilot.pause(0.05)
