"""The app's step-through start and its visible "show me", against the real engine.

- ``docker run --explain`` in "Our first container" (content/06-first-container)
  starts one stage at a time: the stage panel words each stage in the learner's
  language (F2 switches the next ones too), the engine really holds a half-built
  container (status ``starting``) that the lab panel shows, and once every stage
  is done the step's checks pass as with a plain run;
- stopping it (Esc), leaving the step (n) or the lesson (m) leaves no container,
  no process, no mount and no control group behind;
- "show me" on an interactive step of "'ssh-ing' into a container"
  (content/07-shell-in-a-container) opens the embedded terminal and types the
  step's lines where the learner sees them, with their real output, and the
  step's checks pass.

The lessons are pinned (copied alone into a course folder); the stages are
found by their ids, so an engine that gains a stage does not break the test.
"""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from engine import explain
from lessons.docker import LABEL_COURSE
from tui.i18n import other, t
from tui.screens.lesson import LessonScreen
from tui.start import make_app

from app_support import engine_containers as containers
from app_support import (
    no_course_containers_left,  # noqa: F401 - autouse: nothing of a course is left
    pinned_course,
    quit_app,
    screen_text,
    wait_for,
)
from conftest import cgroup_dirs, needs_root, overlay_mounts

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

FIRST = "06-first-container"
SHELL = "07-shell-in-a-container"


async def open_step(pilot, app, step_id: str) -> LessonScreen:
    """The lesson open at ``step_id`` (n until it is current), its lab ready."""
    await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
    screen = app.screen
    while screen.step.id != step_id:
        await pilot.press("n")
        await pilot.pause()
    await wait_for(pilot, lambda: step_id in screen.cursors and screen.busy is None, 60, f"step {step_id} ready")
    return screen


def stage_shown(screen) -> tuple[int, dict] | None:
    """The number and the stage the stage panel shows (None: no stage yet)."""
    found = screen.query("#stages")
    if not found or found.first().stage is None:
        return None
    number, stage, _last = found.first().stage
    return number, stage


async def start_explained(pilot, screen) -> None:
    """Run the step's docker run --explain (r) and wait for its first stage."""
    await pilot.press("r")
    await wait_for(pilot, lambda: screen.stepping is not None and stage_shown(screen) is not None, 30,
                   "the first stage")


async def step_to(pilot, screen, stage_id: str) -> int:
    """Enter, stage after stage, until ``stage_id`` is the one shown; its number."""
    while (shown := stage_shown(screen))[1]["id"] != stage_id:
        await pilot.press("enter")
        await wait_for(pilot, lambda n=shown[0]: stage_shown(screen)[0] > n, 30, f"the stage after {shown[0]}")
    return shown[0]


def stage_panel_text(screen) -> str:
    return str(screen.query_one("#stages").render())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_stepping_through_our_first_containers_start(lang, tmp_path):
    course = pinned_course(tmp_path, FIRST)

    async def scenario():
        app = make_app(lang, course=course, progress_dir=tmp_path / "progress", lesson=FIRST)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_step(pilot, app, "stages")
            await start_explained(pilot, screen)
            name = screen.stepping.container
            # the first stage, worded in the learner's language, with its kernel calls and shell commands
            number, stage = stage_shown(screen)
            assert number == 1
            text = stage_panel_text(screen)
            assert explain.stage_title(stage, lang) in text
            assert f"{explain.ui('kernel', lang)}: " in text and f"{explain.ui('shell', lang)}:  " in text
            await wait_for(pilot, lambda: t(lang, "key.stage_next") in screen_text(app), 10,
                           "the footer to offer the stage keys")       # (it is drawn again after the stage)
            # after the root is pivoted, the engine really has the container, half-built, and the lab shows it
            at = await step_to(pilot, screen, "pivot_root")
            await pilot.pause(0.3)
            engine = {c["name"]: c for c in containers()}
            assert engine[name]["status"] == "starting"
            assert (engine[name]["labels"] or {}).get(LABEL_COURSE) == app.course.id
            panel = screen.lab_panel()
            await wait_for(pilot, lambda: panel.selected == engine[name]["id"], 10, "the lab panel to show it")
            assert panel.tab == "mounts"
            assert name in screen_text(app)
            assert explain.stage_title(stage_shown(screen)[1], lang) in stage_panel_text(screen)
            assert any(f"[{at}] pivot_root" in line for line in screen.output.plain)
            # F2: this stage worded anew, and the following ones in the other language
            await pilot.press("f2")
            await pilot.pause()
            switched = other(lang)
            assert explain.stage_title(stage_shown(screen)[1], switched) in stage_panel_text(screen)
            await pilot.press("enter")
            await wait_for(pilot, lambda: stage_shown(screen)[0] > at, 30, "the stage after pivot_root")
            following = stage_shown(screen)[1]
            assert explain.stage_title(following, switched) in stage_panel_text(screen)
            assert f"{explain.ui('kernel', switched)}: " in stage_panel_text(screen)
            # f: the rest at once; the command runs, the step's checks pass as for a plain run
            await pilot.press("f")
            await wait_for(pilot, lambda: "stages" in app.learner.done(screen.lesson), 60, "the step to pass")
            assert screen.stepping is None and not screen.query("#stages")
            shown = str(screen.view("stages").query_one(".results").render())
            assert "✓" in shown and "✗" not in shown
            assert "Hello World" in screen.output.plain
            ran = {c["name"]: c for c in containers()}[name]
            assert ran["status"] == "exited" and ran["exit_code"] == 0
            await quit_app(pilot, app)
    asyncio.run(scenario())


@pytest.mark.parametrize("leave", ["escape", "n", "m"])
def test_stopping_or_leaving_mid_way_leaves_nothing_behind(leave, tmp_path):
    course = pinned_course(tmp_path, FIRST)

    async def scenario():
        app = make_app("en", course=course, progress_dir=tmp_path / "progress", lesson=FIRST)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_step(pilot, app, "stages")
            await start_explained(pilot, screen)
            name = screen.stepping.container
            await step_to(pilot, screen, "rootfs")
            half = {c["name"]: c for c in containers()}[name]
            assert half["status"] == "starting" and half["pid"]
            assert os.path.exists(f"/proc/{half['pid']}")
            assert cgroup_dirs(), "the half-built container has its control group"
            await pilot.press(leave)
            await wait_for(pilot, lambda: screen.stepping is None and screen.busy is None, 30, "the start to end")
            await wait_for(pilot, lambda: name not in {c["name"] for c in containers()}, 30,
                           "the half-built container to go")
            assert not os.path.exists(f"/proc/{half['pid']}")
            assert cgroup_dirs() == [] and overlay_mounts() == []
            assert not screen.query("#stages")
            if leave == "escape":
                assert t("en", "output.stopped", name=name) in screen.output.plain
                assert screen.step.id == "stages" and "stages" not in app.learner.done(screen.lesson)
            await quit_app(pilot, app)
    asyncio.run(scenario())


# -- show me, typed where the learner sees it ----------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_show_me_types_an_interactive_step_into_the_terminal(lang, tmp_path, monkeypatch):
    pytest.importorskip("tui.widgets.terminal")
    monkeypatch.setattr(LessonScreen, "typing_delay", 0.005)
    monkeypatch.setattr(LessonScreen, "typing_quiet", 0.3)
    course = pinned_course(tmp_path, SHELL)

    async def scenario():
        app = make_app(lang, course=course, progress_dir=tmp_path / "progress", lesson=SHELL)
        async with app.run_test(size=(120, 40)) as pilot:
            # "shell": docker run -ti ubuntu bash, then ps -ef and exit typed in the terminal
            screen = await open_step(pilot, app, "shell")
            await pilot.press("s")
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            view = screen.terminal
            await wait_for(pilot, lambda: "ps -ef" in view.text, 30, "ps -ef typed")
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            await wait_for(pilot, lambda: "shell" in app.learner.done(screen.lesson), 30, "the checks to pass")
            shell = view.text.replace("\n", "")      # the terminal is narrow: ps's lines wrap
            assert re.search(r"# ps -ef\s*UID\s+PID\s+PPID.*CMD", shell)           # typed at the prompt, its output
            assert re.search(r"root\s+1\s+0\s.*?bash", shell)                     # bash is PID 1
            assert re.search(r"# exit\s*exit\s*$", shell)
            assert t(lang, "terminal.closed", code=0) in screen.output.plain
            shown = str(screen.view("shell").query_one(".results").render())
            assert "✓" in shown and "✗" not in shown
            # "make-sure": a container run in the background first, then a shell typed into with exec
            await pilot.press("n")
            screen = await open_step(pilot, app, "make-sure")
            await pilot.press("s")
            await wait_for(pilot, lambda: screen.terminal is not None, 60, "the terminal")
            view = screen.terminal
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            await wait_for(pilot, lambda: "make-sure" in app.learner.done(screen.lesson), 30, "the checks to pass")
            box = {c["name"]: c for c in containers()}["box"]
            assert box["status"] == "running"
            shell = view.text.replace("\n", "")
            assert f"# hostname{box['id'][:12]}" in shell        # typed, and the container's own hostname
            assert re.search(r"# ps -ef\s*UID\s+PID", shell)
            await quit_app(pilot, app)
    asyncio.run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_show_me_steps_through_an_explained_start_by_itself(lang, tmp_path, monkeypatch):
    """Show me on "stages": the start goes stage by stage with no key pressed, each
    shown a moment (stage_pace), through to exec; then the step's checks pass."""
    monkeypatch.setattr(LessonScreen, "stage_pace", 0.2)
    course = pinned_course(tmp_path, FIRST)

    async def scenario():
        app = make_app(lang, course=course, progress_dir=tmp_path / "progress", lesson=FIRST)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_step(pilot, app, "stages")
            seen: list[str] = []

            paced = t(lang, "stage.paced", seconds="0.2")
            said: list[bool] = []

            def watch() -> bool:
                shown = stage_shown(screen)
                if shown is not None and (not seen or seen[-1] != shown[1]["id"]):
                    seen.append(shown[1]["id"])
                    said.append(paced in str(screen.query_one("#stages").render()))
                return "stages" in app.learner.done(screen.lesson)

            await pilot.press("s")
            await wait_for(pilot, watch, 90, "show me to step through and pass")
            assert len(seen) >= 3, seen                                  # the panel moved on, no key pressed
            assert said[0] and any(said), said                          # ... saying f skips ahead
            logged = [re.search(r"\[\d+\] (\w+)", line) for line in screen.output.plain]
            logged = [m.group(1) for m in logged if m]
            for stage in ("limits", "rootfs", "pivot_root", "seccomp", "exec"):   # every stage was shown
                assert stage in logged, logged
            assert screen.stepping is None and not screen.query("#stages")
            shown = str(screen.view("stages").query_one(".results").render())
            assert "✓" in shown and "✗" not in shown
            ran = [c for c in containers() if (c.get("labels") or {}).get("course.origin") == "show"]
            assert ran and ran[0]["status"] == "exited" and ran[0]["exit_code"] == 0
            await quit_app(pilot, app)
    asyncio.run(scenario())


def test_the_command_line_and_the_run_button_start_stage_by_stage_too(tmp_path):
    """'Why containers' (content/03-why-containers): the explained run typed on the command
    line (Space for the next stage), then again with the step's Run button (f for the rest)."""
    course = pinned_course(tmp_path, "03-why-containers")

    async def scenario():
        app = make_app("en", course=course, progress_dir=tmp_path / "progress", lesson="03-why-containers")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_step(pilot, app, "anatomy")
            await pilot.press("colon", *"docker run --explain lab echo hello", "enter")
            await wait_for(pilot, lambda: stage_shown(screen) is not None, 30, "the first stage")
            assert screen.focused is screen.query_one("#lesson-scroll")   # Enter and Space: the stage keys
            await pilot.press("space")
            await wait_for(pilot, lambda: stage_shown(screen)[0] == 2, 30, "the second stage")
            await pilot.press("f")
            await wait_for(pilot, lambda: "anatomy" in app.learner.done(screen.lesson), 60, "the step to pass")
            assert "hello" in screen.output.plain
            screen.query_one("#step-anatomy .run").scroll_visible(animate=False)
            await pilot.pause()
            await pilot.click("#step-anatomy .run")
            await wait_for(pilot, lambda: stage_shown(screen) is not None, 30, "the first stage again")
            await pilot.press("f")
            await wait_for(pilot, lambda: screen.busy is None and screen.stepping is None, 60, "the second run")
            assert screen.output.plain.count("hello") == 2
            await quit_app(pilot, app)
    asyncio.run(scenario())
