"""A learner works "Our first container" (content/06-first-container) in the app, by keyboard,
against the real engine: Run (r), and the checks that follow on their own, until every step is
done, the quizzes answered (arrows, Enter/Space, c), and the lesson's completion moment shows.
Then quitting removes the lesson's containers.

The lesson is pinned (copied alone into a course folder), so the test does not change as other
lessons are written; the keys are worked out from the lesson's own model (how many commands,
which quiz options), so an edit to its wording does not break it either.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import RadioSet, SelectionList

from lessons.i18n import msg
from tui.i18n import t
from tui.screens.dialogs import CompletionScreen, QuitScreen
from tui.screens.lesson import LessonScreen
from tui.start import make_app

from app_support import (
    course_containers,
    no_course_containers_left,  # noqa: F401 - autouse: nothing of a course is left
    pinned_course,
    quit_app,
    screen_text,
    wait_for,
)
from conftest import cl, needs_root

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

LESSON = "06-first-container"


async def choose(pilot, screen: LessonScreen, wanted: frozenset[str]) -> None:
    """Answer the current step's quiz by keyboard: arrows, then Enter (one answer) or Space (several)."""
    quiz = screen.view(screen.step.id).quiz()
    choices = quiz.choices()
    await wait_for(pilot, lambda: screen.focused is choices, 5, "the quiz to take the focus")
    options = list(screen.step.quiz.options)
    if isinstance(choices, RadioSet):
        target = options.index(next(iter(wanted)))
        for _ in range(target):
            await pilot.press("down")
        await pilot.press("enter")
    else:
        assert isinstance(choices, SelectionList)
        if choices.highlighted is None:
            await pilot.press("down")
        for i, option in enumerate(options):
            assert choices.highlighted == i
            if option in wanted:
                await pilot.press("space")
            await pilot.press("down")
    await pilot.pause()
    assert quiz.selected() == wanted


async def work_lesson(pilot, app, lang: str) -> None:
    """Every step of the open lesson, done by keyboard."""
    screen = app.screen
    assert isinstance(screen, LessonScreen)
    lesson = screen.lesson
    for number, step in enumerate(lesson.steps):
        assert screen.step.id == step.id and screen.index == number
        if step.quiz is not None:
            await choose(pilot, screen, step.quiz.answer)
            await pilot.press("c")
        else:
            for n, _command in enumerate(step.commands):
                await wait_for(pilot, lambda: step.id in screen.cursors and screen.busy is None, 60,
                               f"step {step.id} to be ready")
                await pilot.press("r")
                await wait_for(pilot, lambda: screen.busy is None or screen.stepping is not None, 60,
                               f"command {n} of {step.id}")
                if screen.stepping is not None:     # docker run --explain, stage by stage: f, the rest at once
                    await pilot.press("f")
                await wait_for(pilot, lambda: screen.busy is None, 60, f"command {n} of {step.id}")
        await wait_for(pilot, lambda: step.id in app.learner.done(lesson), 60, f"step {step.id} to pass")
        view = screen.view(step.id)
        assert view.has_class("-done") and view.has_class("-current")
        if step.checks:             # the checks passed against the engine, worded in the learner's language
            shown = str(view.query_one(".results").render())
            assert "✓" in shown and "✗" not in shown
        if number < len(lesson.steps) - 1:
            await pilot.press("n")
            await pilot.pause()
    await wait_for(pilot, lambda: isinstance(app.screen, CompletionScreen), 10, "the completion moment")
    assert t(lang, "complete.title") in screen_text(app)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_learner_completes_our_first_container_by_keyboard(lang, tmp_path):
    course = pinned_course(tmp_path, LESSON)

    async def scenario():
        app = make_app(lang, course=course, progress_dir=tmp_path / "progress")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("enter")                      # the welcome screen: start
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            assert screen.lesson.folder == LESSON
            await work_lesson(pilot, app, lang)
            # the output pane shows what the engine printed, and the fallback notice in this language
            output = "\n".join(screen.output.plain)
            assert "Hello World" in output
            from lessons.docker import registry_has

            state, where = registry_has("ubuntu")                  # "Docker Hub" is where nothing listens
            assert msg(lang, f"notice.fallback.{state}", image="ubuntu", fallback="lab", registry=where) in output
            assert output.count(msg(lang, f"notice.fallback.{state}", image="ubuntu", fallback="lab",
                                    registry=where)) == 1            # once in the lesson
            assert course_containers(), "the lesson's containers exist until the app quits"
            await pilot.press("escape")                     # stay
            await quit_app(pilot, app)
        record = json.loads((tmp_path / "progress" / "progress.json").read_text())
        steps = record["courses"][app.course.id][screen.lesson.id]
        assert {s.id for s in screen.lesson.steps} == {sid for sid, rec in steps.items() if rec.get("done")}
        assert record["language"] in (None, lang)
        assert course_containers() == []
    asyncio.run(scenario())


def test_switching_language_mid_step_keeps_the_position_and_rewords_the_checks(tmp_path):
    course = pinned_course(tmp_path, LESSON)

    async def scenario():
        app = make_app("en", course=course, progress_dir=tmp_path / "progress", lesson=LESSON)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            step = screen.step
            await wait_for(pilot, lambda: step.id in screen.cursors, 60, "the step to be ready")
            await pilot.press("r")
            await wait_for(pilot, lambda: step.id in app.learner.done(screen.lesson), 60, "the step to pass")
            view = screen.view(step.id)
            assert msg("en", "exp.container_ran") in str(view.query_one(".results").render())
            await pilot.press("f2")
            # the check messages come again, worded in Chinese, for the same step
            await wait_for(pilot, lambda: msg("zh", "exp.container_ran") in str(view.query_one(".results").render()),
                           30, "the checks in Chinese")
            assert screen.step.id == step.id and screen.view(step.id).has_class("-current")
            assert step.title("zh") in screen_text(app)
            assert json.loads((tmp_path / "progress" / "progress.json").read_text())["language"] == "zh"
            await quit_app(pilot, app)
    asyncio.run(scenario())


def test_quitting_asks_about_the_learners_own_running_containers(tmp_path):
    course = pinned_course(tmp_path, LESSON)

    async def scenario():
        app = make_app("en", course=course, progress_dir=tmp_path / "progress", lesson=LESSON)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: screen.step.id in screen.cursors, 60, "the step to be ready")
            await pilot.press("colon")
            await pilot.press(*"docker run -d --name mine ubuntu sleep 300")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.busy is None and any(
                c["name"] == "mine" and c["status"] == "running" for c in course_containers()), 60, "mine to run")
            await pilot.press("escape")                     # back to the lesson from the command line
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), 30, "the question")
            assert "mine" in screen_text(app)
            await pilot.press("tab", "enter")               # "Keep them running"
            await wait_for(pilot, lambda: not app.is_running, 30, "the app to quit")
        kept = course_containers()
        assert [c["name"] for c in kept] == ["mine"] and kept[0]["status"] == "running"
        cl("rm", "-f", "mine", check=True)
    asyncio.run(scenario())


# -- interactive sessions in the embedded terminal ---------------------------------------------------

FIXTURE_COURSE = Path(__file__).resolve().parent / "fixtures" / "course"


async def typed(pilot, view, line: str) -> None:
    """Type ``line`` and Enter into the terminal, as a learner would."""
    assert view.has_focus
    await pilot.press(*line, "enter")


def test_an_interactive_step_runs_in_the_embedded_terminal(tmp_path):
    pytest.importorskip("tui.widgets.terminal")

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await pilot.press("n")                          # "A shell inside": docker run -it --name shell ...
            await wait_for(pilot, lambda: "shell" in screen.cursors, 60, "the step to be ready")
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            view = screen.terminal
            await wait_for(pilot, lambda: "#" in view.text, 30, "a prompt")
            assert view.has_focus and screen.has_class("-terminal")
            await pilot.press("r")                          # typed into the shell, not a Run
            await pilot.press("backspace")
            await typed(pilot, view, "rm /etc/passwd")
            await typed(pilot, view, "exit")
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            await wait_for(pilot, lambda: "shell" in app.learner.done(screen.lesson), 30, "the checks to pass")
            assert "rm /etc/passwd" in view.text               # the last screen stays in view
            assert t("en", "terminal.closed", code=0) in screen.output.plain
            await quit_app(pilot, app)
    asyncio.run(scenario())


def test_o_opens_a_shell_in_the_lessons_running_container(tmp_path):
    pytest.importorskip("tui.widgets.terminal")

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "look" in screen.cursors, 60, "the lesson's setup (web)")
            await pilot.press("o")
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            view = screen.terminal
            await wait_for(pilot, lambda: "#" in view.text, 30, "a prompt")
            await typed(pilot, view, "cat /proc/1/cmdline | tr '\\0' ' '; echo")
            await wait_for(pilot, lambda: "sleep 1000" in view.text, 10, "PID 1 of web")
            await pilot.press("ctrl+right_square_bracket")  # back to the lesson; the shell stays
            assert screen.focused is screen.query_one("#lesson-scroll") and screen.terminal is not None
            await pilot.press("ctrl+q")                     # quitting hangs it up and removes web
            await wait_for(pilot, lambda: not app.is_running, 30, "the app to quit")
    asyncio.run(scenario())


def test_a_terminal_opened_again_in_the_same_step_replaces_the_last(tmp_path):
    """A session ended, the next one in the same step: the last screen goes before the new
    terminal takes its place (the same widget id: never two at once)."""
    pytest.importorskip("tui.widgets.terminal")

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "look" in screen.cursors, 60, "the lesson's setup (web)")
            for n in range(3):
                await pilot.press("o")
                await wait_for(pilot, lambda: screen.terminal is not None, 30, f"terminal {n + 1}")
                view = screen.terminal
                await wait_for(pilot, lambda: "#" in view.text, 30, "a prompt")
                assert list(screen.query("#terminal")) == [view]
                await typed(pilot, view, f"echo session-{n}; exit")
                await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
                assert f"session-{n}" in view.text               # its last screen stays until the next
            await quit_app(pilot, app)
    asyncio.run(scenario())


def test_an_open_terminal_is_one_key_away_and_typed_letters_do_not_reset_or_quit(tmp_path):
    """80x24: Ctrl+] leaves the terminal, F3 and t put the keys back into it; while the session
    is open, an x or a q typed outside it (\"exit\" typed in the lesson) neither resets nor quits."""
    pytest.importorskip("tui.widgets.terminal")

    def notices():
        return [n.message for n in app._notifications]

    async def scenario():
        nonlocal app
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="isolation")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "look" in screen.cursors, 60, "the lesson's setup (web)")
            (web,) = [c["id"] for c in course_containers()]
            await pilot.press("o")
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            view = screen.terminal
            await wait_for(pilot, lambda: "#" in view.text, 30, "a prompt")
            assert view.has_focus and screen.has_class("-show-side")
            await pilot.press("ctrl+right_square_bracket")  # back to the lesson: the lesson shows
            assert not screen.has_class("-show-side") and not view.has_focus
            assert "t " + t("en", "key.terminal") in screen_text(app).splitlines()[-1]
            await pilot.press(*"exit")                      # meant for the shell, typed in the lesson
            await pilot.pause()
            assert app.is_running and screen.terminal is not None and view.has_focus   # t: back in it
            assert t("en", "busy.terminal") in notices()    # x said why it did nothing
            assert [c["id"] for c in course_containers()] == [web] and screen.busy is None
            assert t("en", "output.reset") not in screen.output.plain
            await pilot.press("ctrl+right_square_bracket", "q")
            await pilot.pause()
            assert app.is_running and t("en", "quit.terminal_open") in notices()
            await pilot.press("f3")                         # the lab side, and the keys into the terminal
            assert screen.has_class("-show-side") and view.has_focus
            await pilot.press("f3")
            assert not screen.has_class("-show-side") and screen.focused is screen.query_one("#lesson-scroll")
            await pilot.press("t")
            assert screen.has_class("-show-side") and view.has_focus
            await typed(pilot, view, "exit")
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            await pilot.press("ctrl+right_square_bracket")
            assert "t " + t("en", "key.terminal") not in screen_text(app).splitlines()[-1]
            await quit_app(pilot, app)

    app = None
    asyncio.run(scenario())


def test_two_apps_of_one_user_keep_to_their_own_containers(tmp_path):
    """Another app of the same user (its Lab, with its own session) runs web, the isolation
    lesson's setup, and mine, a container its learner started. This app's lab panel lists
    neither, its setup says in one line whose web is (and neither uses nor removes it), and
    quitting neither asks about mine nor removes anything of the other's."""
    from lessons.lab import LABEL_SESSION, Lab
    from tui import course_cache
    from tui.widgets.lab import LabPanel

    course = course_cache.load(FIXTURE_COURSE)
    other = Lab(course, course.lesson("isolation"), session="4242-0ther")
    other.begin_step(course.lesson("isolation").steps[0])
    assert other.run("docker run -d --name mine lab sleep 300").ok
    theirs = {c["name"]: c["id"] for c in course_containers()}
    assert sorted(theirs) == ["mine", "web"]
    assert {c["labels"][LABEL_SESSION] for c in course_containers()} == {"4242-0ther"}

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="isolation",
                       mark=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            taken = "The name web is taken by a container of another container-lab app running as this user " \
                    "(process 4242)"
            await wait_for(pilot, lambda: any(taken in line for line in screen.output.plain), 60,
                           "the setup to say whose web is")
            panel = screen.lab_panel()
            assert isinstance(panel, LabPanel)
            await wait_for(pilot, lambda: panel.refreshes > 0, 30, "the lab panel")
            assert panel._containers == []                  # the other app's are not this one's
            await quit_app(pilot, app)                      # nothing of its own: no question
        assert {c["name"]: c["id"] for c in course_containers()} == theirs

        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="hello",
                       mark=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "hello" in screen.cursors, 60, "the step to be ready")
            await pilot.press("r")                          # docker run ubuntu echo Hello World
            await wait_for(pilot, lambda: len(course_containers()) == 3, 60, "hello's container")
            (mine,) = [c for c in course_containers() if c["id"] not in theirs.values()]
            assert mine["labels"][LABEL_SESSION] == app.session != "4242-0ther"
            panel = screen.lab_panel()
            await wait_for(pilot, lambda: [c["id"] for c in panel._containers] == [mine["id"]], 30,
                           "the lab panel to list this app's container alone")
            await quit_app(pilot, app)                      # its own removed, the other's kept
        assert {c["name"]: c["id"] for c in course_containers()} == theirs
        zh = Lab(course, course.lesson("isolation"), lang="zh", session="5151-third")
        assert zh.taken(zh.translate("docker run -d --name web lab sleep 1")) == \
            "名称 web 已被本用户另一个正在运行的 container-lab 应用（进程 4242）的容器占用：请换一个名称，或先退出那个应用。"

    try:
        asyncio.run(scenario())
    finally:
        other.cleanup()


def test_the_lab_panel_follows_what_was_just_started_and_keeps_to_the_lesson(tmp_path):
    """A foreground run without a name, an -it run with one, an -it run without one: the lab
    panel shows each as soon as it is started. A container kept from another lesson is not
    in the next lesson's panel."""
    pytest.importorskip("tui.widgets.terminal")
    from tui.widgets.lab import LabPanel

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="hello", mark=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "hello" in screen.cursors and isinstance(screen.lab_panel(), LabPanel),
                           60, "the step to be ready")
            panel = screen.lab_panel()

            def newest() -> dict:
                return max(course_containers(), key=lambda c: c["created"])

            async def shown(what: str) -> dict:
                started = newest()
                await wait_for(pilot, lambda: panel.selected == started["id"], 30, f"the panel to show {what}")
                return started

            await pilot.press("colon", *"docker run -d --name keep lab sleep 300", "enter")
            assert (await shown("keep"))["name"] == "keep"
            await pilot.press("escape", "r")                # docker run ubuntu echo Hello World: no name, no -d
            await wait_for(pilot, lambda: screen.busy is None and len(course_containers()) == 2, 60, "hello")
            assert (await shown("echo's container"))["name"] != "keep"
            screen.go(1)                                     # docker run -it --name shell ubuntu bash
            await wait_for(pilot, lambda: "shell" in screen.cursors, 60, "the step to be ready")
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            assert (await shown("shell"))["name"] == "shell"
            await typed(pilot, screen.terminal, "exit")
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            await pilot.press("colon", *"docker run -it lab sh", "enter")    # -it, no name
            await wait_for(pilot, lambda: screen.terminal is not None, 30, "the terminal")
            assert (await shown("sh's container"))["name"] not in ("shell", "keep")
            await typed(pilot, screen.terminal, "exit")
            await wait_for(pilot, lambda: screen.terminal is None, 30, "the session to end")
            app.open_lesson("isolation")                    # keep stays (the learner's own, running)
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen) and app.screen is not screen
                           and isinstance(app.screen.lab_panel(), LabPanel), 10, "the next lesson")
            panel = app.screen.lab_panel()
            await wait_for(pilot, lambda: [c["name"] for c in panel._containers] == ["web"], 60,
                           "the panel to list the lesson's web alone")
            assert "keep" in [c["name"] for c in course_containers()]
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), 30, "the question")
            await pilot.press("enter")                      # "Remove them"
            await wait_for(pilot, lambda: not app.is_running, 30, "the app to quit")
    asyncio.run(scenario())


# -- leaving tidily, and after a crash ------------------------------------------------------------------

def test_leaving_a_lesson_removes_its_containers_but_the_learners_own(tmp_path):
    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 10, "the lesson")
            screen = app.screen
            await wait_for(pilot, lambda: "look" in screen.cursors, 60, "the lesson's setup (web)")
            assert [c["name"] for c in course_containers()] == ["web"]
            await pilot.press("colon", *"docker run -d --name mine lab sleep 300", "enter")
            await wait_for(pilot, lambda: screen.busy is None and len(course_containers()) == 2, 60, "mine")
            await pilot.press("escape", "m")
            await wait_for(pilot, lambda: [c["name"] for c in course_containers()] == ["mine"], 30,
                           "web to go and mine to stay")
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), 30, "the question")
            await pilot.press("enter")                      # "Remove them"
            await wait_for(pilot, lambda: not app.is_running, 30, "the app to quit")
        assert course_containers() == []
    asyncio.run(scenario())


def test_the_next_start_removes_what_a_crashed_session_left(tmp_path):
    progress = tmp_path / "progress"
    progress.mkdir()
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    (progress / "app-session.json").write_text(json.dumps({"pid": crashed.pid, "started": started,
                                                           "course": "fixture"}))
    for name, origin in (("left-setup", "setup"), ("left-mine", "learner")):
        cl("run", "-d", "--name", name, "--label", "course=fixture", "--label", "course.lesson=isolation",
           "--label", f"course.origin={origin}", "lab", "sleep", "300", check=True)
    assert len(course_containers()) == 2

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=progress)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: course_containers() == [], 30, "the leftovers to go")
            await wait_for(pilot, lambda: any("left-mine" in n.message for n in app._notifications), 10,
                           "the learner to be told")
            assert json.loads((progress / "app-session.json").read_text())["pid"] == os.getpid()
            await quit_app(pilot, app)
        assert not (progress / "app-session.json").exists()
    asyncio.run(scenario())


def test_the_next_start_removes_what_a_crashed_app_left_even_when_its_mark_was_written_over(tmp_path):
    """Two apps of one learner: the mark file is the last one's. One crashed (its process is
    gone): its containers go at the next start all the same, found by their session label;
    those of an app still running (here: this process) stay."""
    from lessons.lab import Lab
    from tui import course_cache

    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    course = course_cache.load(FIXTURE_COURSE)
    lesson = course.lesson("isolation")
    gone = Lab(course, lesson, session=f"{crashed.pid}-dead")
    alive = Lab(course, lesson, session=f"{os.getpid()}-alive")
    assert gone.run("docker run -d --name left-by-crash lab sleep 300").ok
    assert alive.run("docker run -d --name still-used lab sleep 300").ok

    async def scenario():
        app = make_app("en", course=FIXTURE_COURSE, progress_dir=tmp_path / "progress", lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: [c["name"] for c in course_containers()] == ["still-used"], 30,
                           "the crashed app's container to go")
            await quit_app(pilot, app)
        assert [c["name"] for c in course_containers()] == ["still-used"]

    try:
        asyncio.run(scenario())
    finally:
        alive.cleanup()
        gone.cleanup()
