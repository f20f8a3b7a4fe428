"""The app's screens driven by keyboard and mouse, with a lab that needs no engine (StubLab):
resuming where the learner left off, the course map, moving between steps, hints, quizzes,
the completion moment, a corrupt progress file, a machine that cannot run a step, the narrow
layout, and the language switch keeping the position. The same flows against the real engine
are in test_app_lesson.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from textual.widgets import RadioButton, RadioSet

from lessons.checks import Result
from lessons.i18n import msg
from lessons.progress import ProgressStore
from tui.i18n import t
from tui.machine import Machine
from tui.screens.course_map import CourseMapScreen
from tui.screens.dialogs import CompletionScreen
from tui.screens.lesson import LessonScreen
from tui.screens.parts import option_text
from tui.screens.welcome import WelcomeScreen
from tui.start import make_app

from app_support import FIXTURE, ROOT_V2, USER_NONE, StubLab, screen_text, wait_for


@pytest.fixture(autouse=True)
def _colors_on(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


def app_for(tmp_path, lang="en", machine=ROOT_V2, **kwargs):
    return make_app(lang, machine=machine, course=FIXTURE, progress_dir=tmp_path / "progress", lab=StubLab,
                    engine=False, **kwargs)


def progress(tmp_path) -> dict:
    return json.loads((tmp_path / "progress" / "progress.json").read_text())


def run(coro):
    return asyncio.run(coro)


async def lesson_ready(pilot, app) -> LessonScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5, "the lesson screen")
    screen = app.screen
    await wait_for(pilot, lambda: screen.step.id in screen.cursors or not screen.step.checks, 5, "the step")
    await pilot.pause(0.05)                                 # laid out
    return screen


# -- where the learner left off ----------------------------------------------------------------

def test_a_returning_learner_is_back_in_the_step_they_left(tmp_path):
    ProgressStore(tmp_path / "progress").set_current("fixture", "isolation", "limits")

    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            assert (screen.lesson.id, screen.step.id) == ("isolation", "limits")
            assert screen.view("limits").has_class("-current")
            assert screen.view("limits").region.y < 40                    # scrolled into view
            assert [type(s) for s in app.screen_stack] == [LessonScreen]      # the first screen drawn
            await pilot.press("m")                                       # the map is made when wanted
            await pilot.pause()
            assert [type(s) for s in app.screen_stack] == [LessonScreen, CourseMapScreen]   # at rest under the map
    run(scenario())


def test_lesson_opens_a_lesson_at_its_first_step_not_done(tmp_path):
    ProgressStore(tmp_path / "progress").record_step("fixture", "hello", "hello", done=True)

    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            assert screen.step.id == "shell"
            assert screen.view("hello").has_class("-done") and "✓" in screen_text(app)
    run(scenario())


def test_a_corrupt_progress_file_gives_a_notice_not_a_crash(tmp_path):
    (tmp_path / "progress").mkdir()
    (tmp_path / "progress" / "progress.json").write_text("{not json")

    async def scenario(lang):
        app = app_for(tmp_path, lang)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, WelcomeScreen)        # a fresh start
            notices = [n.message for n in app._notifications]
            (aside,) = sorted((tmp_path / "progress").glob("progress.json.corrupt-*"))
            assert len(notices) == 1 and str(aside) in notices[0]
            lead = msg(lang, "progress.corrupt", error="§", path="§").split("§")[0]
            assert notices[0].startswith(lead)                  # in the learner's language
            await pilot.press("enter")                          # and the course goes on
            await lesson_ready(pilot, app)
        aside.unlink()
        (tmp_path / "progress" / "progress.json").write_text("[1, 2]")
    run(scenario("en"))
    run(scenario("zh"))


# -- the course map --------------------------------------------------------------------------------

def test_the_course_map_jumps_to_a_lesson(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            await lesson_ready(pilot, app)
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, CourseMapScreen), 5, "the map")
            text = screen_text(app)
            assert "Hello, container" in text and "Isolation" in text and "0/4" in text
            await pilot.press("down", "enter")
            screen = await lesson_ready(pilot, app)
            assert screen.lesson.id == "isolation" and screen.step.id == "look"
            assert progress(tmp_path)["current"] == {"course": "fixture", "lesson": "isolation", "step": "look"}
    run(scenario())


def test_the_map_shows_what_is_done_and_where_the_learner_is(tmp_path):
    store = ProgressStore(tmp_path / "progress")
    for step in ("hello", "shell", "why"):
        store.record_step("fixture", "hello", step, done=True)
    store.set_current("fixture", "isolation", "look")

    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await lesson_ready(pilot, app)
            await pilot.press("m")
            await pilot.pause()
            lines = screen_text(app).splitlines()
            hello = next(line for line in lines if "Hello, container" in line and "/3" in line)
            isolation = next(line for line in lines if "Isolation" in line and "/4" in line)
            assert "✓" in hello and "3/3" in hello
            assert "▸" in isolation and "0/4" in isolation
            assert t("en", "map.status.new", total=4) in screen_text(app)     # the highlighted one's preview
    run(scenario())


# -- working a lesson ---------------------------------------------------------------------------------

def test_run_check_hints_and_steps_by_keyboard(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("h")
            await pilot.pause()
            assert "docker exec NAME COMMAND" in screen_text(app)
            await pilot.press("h")                          # the only hint: a notice, no more
            await pilot.pause()
            assert t("en", "hint.last") in [n.message for n in app._notifications]
            assert progress(tmp_path)["courses"]["fixture"]["isolation"]["look"]["hints"] == 1
            await pilot.press("r")
            await wait_for(pilot, lambda: "look" in app.learner.done(screen.lesson), 5, "the step done")
            assert screen.lab.ran == ["docker exec web ps -ef"]
            assert "$ docker exec web ps -ef" in screen.output.plain and "pretend output" in screen.output.plain
            assert t("en", "status.done") in screen_text(app)
            await pilot.press("n")
            await pilot.pause()
            assert screen.step.id == "neighbours" and progress(tmp_path)["current"]["step"] == "neighbours"
            await pilot.press("p")
            await pilot.pause()
            assert screen.step.id == "look"
    run(scenario())


def test_the_buttons_work_with_the_mouse(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.click("#step-look .run")
            await wait_for(pilot, lambda: "look" in app.learner.done(screen.lesson), 5, "the step done")
            assert screen.lab.ran == ["docker exec web ps -ef"]
            await pilot.click("#step-look .next")
            await pilot.pause()
            assert screen.step.id == "neighbours"
            await pilot.click("#step-neighbours .hint")
            await pilot.pause()
            assert screen.view("neighbours").hints_shown == 1
    run(scenario())


def test_the_command_line_runs_what_is_typed_and_remembers_it(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("colon")
            assert screen.focused is screen.query_one("#command")
            assert not any(b.binding.key == "r" for b in screen.active_bindings.values())   # typing, not keys
            await pilot.press(*"docker ps -a", "enter")
            await wait_for(pilot, lambda: screen.busy is None and screen.lab.ran, 5, "the command")
            assert screen.lab.ran == ["docker ps -a"]
            await pilot.press(*"container-lab ps", "enter")        # the engine's own verbs too
            await wait_for(pilot, lambda: screen.busy is None and len(screen.lab.ran) == 2, 5, "the command")
            assert screen.lab.ran[-1] == "container-lab ps"
            await pilot.press(*"kubectl get pods", "enter")
            await pilot.pause()
            assert msg("en", "cmd.not_docker", word="kubectl") in screen.output.plain
            await pilot.press("up", "up", "up")
            assert screen.query_one("#command").value == "docker ps -a"
            await pilot.press("escape")
            assert screen.focused is screen.query_one("#lesson-scroll")
    run(scenario())


def test_a_quiz_explains_a_wrong_answer_and_accepts_the_right_one(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("n", "n")
            await wait_for(pilot, lambda: isinstance(screen.focused, RadioSet), 5, "the quiz's focus")
            await pilot.press("enter", "c")                 # "vm": wrong
            await pilot.pause()
            text = screen_text(app)
            assert t("en", "quiz.wrong") in text and "A VM brings its own kernel" in text
            assert "why" not in app.learner.done(screen.lesson)
            await wait_for(pilot, lambda: isinstance(screen.focused, RadioSet), 5, "the quiz's focus again")
            await pilot.press("down", "enter", "c")         # "process": right
            await pilot.pause()
            assert t("en", "quiz.right") in screen_text(app)
            assert "why" in app.learner.done(screen.lesson)
            assert progress(tmp_path)["courses"]["fixture"]["hello"]["why"]["quiz"] == ["process"]
    run(scenario())


def test_the_completion_moment_leads_to_the_next_lesson(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("c")                          # the stub's checks pass
            await wait_for(pilot, lambda: "hello" in app.learner.done(screen.lesson), 5)
            await pilot.press("n")
            await wait_for(pilot, lambda: "shell" in screen.cursors, 5)
            await pilot.press("c")
            await wait_for(pilot, lambda: "shell" in app.learner.done(screen.lesson), 5)
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(screen.focused, RadioSet), 5)
            await pilot.press("down", "enter", "c")
            await wait_for(pilot, lambda: isinstance(app.screen, CompletionScreen), 5, "the completion moment")
            text = screen_text(app)
            assert t("en", "complete.title") in text and t("en", "complete.next", title="Isolation") in text
            await pilot.press("enter")                      # "Next lesson"
            nxt = await lesson_ready(pilot, app)
            assert nxt.lesson.id == "isolation"
    run(scenario())


# -- what this machine cannot do --------------------------------------------------------------------

def test_without_root_the_steps_say_why_instead_of_failing(tmp_path):
    async def scenario():
        app = app_for(tmp_path, machine=USER_NONE, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5)
            screen = app.screen
            await pilot.pause()
            why = t("en", "need.root", detail=USER_NONE.blocker)
            assert why in screen_text(app).replace("\n", " ") or why[:40] in screen_text(app)
            assert screen.cursors == {}                     # the engine was never asked
            await pilot.press("r")
            await pilot.pause()
            assert why in [n.message for n in app._notifications] and screen.lab.ran == []
            await pilot.press("c")                          # go on: the step is skipped, not failed
            await pilot.pause()
            assert app.learner.step_record(screen.lesson, "hello") | {"time": ""} == \
                {"done": True, "skipped": True, "time": ""}
    run(scenario())


def test_a_step_that_requires_what_the_machine_lacks_says_why(tmp_path):
    class NoMemoryLimits(StubLab):
        def unavailable(self, step):
            return "needs memory limits" if step.id == "limits" else None

    async def scenario():
        app = make_app("en", machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=NoMemoryLimits,
                       engine=False, lesson="isolation")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("n", "n")
            await pilot.pause()
            assert screen.step.id == "limits"
            assert "needs memory limits" in screen_text(app)
            assert "limits" not in screen.cursors
            await pilot.press("s")
            await pilot.pause()
            assert screen.lab.ran == []
    run(scenario())


# -- the layout -------------------------------------------------------------------------------------

def test_at_80_columns_one_side_shows_and_f3_switches(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            side, lesson = screen.query_one("#side"), screen.query_one("#lesson-col")
            assert screen.has_class("-narrow") and not side.display and lesson.display
            await wait_for(pilot, lambda: "F3" in screen_text(app).splitlines()[-1], 5, "the footer")
            footer = screen_text(app).splitlines()[-1]
            assert "F1" in footer and "F2" in footer and "F3" in footer
            await pilot.press("f3")
            await pilot.pause()
            assert side.display and not lesson.display
            assert t("en", "lab.placeholder")[:30] in screen_text(app)
            await pilot.press("f3")
            await pilot.pause()
            assert lesson.display and not side.display
    run(scenario())


def test_at_120_columns_both_sides_show_and_f3_is_not_offered(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            assert screen.query_one("#side").display and screen.query_one("#lesson-col").display
            assert "f3" not in screen.active_bindings
    run(scenario())


# -- the language ----------------------------------------------------------------------------------

def test_switching_language_in_a_lesson_keeps_step_hints_quiz_and_results(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("c")
            await wait_for(pilot, lambda: "hello" in app.learner.done(screen.lesson), 5)
            await pilot.press("n", "n")
            await wait_for(pilot, lambda: isinstance(screen.focused, RadioSet), 5)
            await pilot.press("down", "enter")              # chosen, not yet checked
            await pilot.press("h")                          # no hints in a quiz: a notice
            scroll = screen.query_one("#lesson-scroll").scroll_y
            await pilot.press("f2")
            await pilot.pause()
            text = screen_text(app)
            assert app.lang == "zh" and screen.lang == "zh" and screen.lab.lang == "zh"
            assert screen.step.id == "why" and screen.index == 2
            assert "为什么这么快" in text and "一个普通的、被隔离的进程" in text
            assert screen.view("why").quiz().selected() == {"process"}     # the choice is kept
            assert abs(screen.query_one("#lesson-scroll").scroll_y - scroll) <= 2
            assert progress(tmp_path)["language"] == "zh"
            await pilot.press("f2")
            await pilot.pause()
            assert "Why so fast?" in screen_text(app)
            # the first step's check results are worded again in each language
            assert ("hello", "zh") in screen.lab.checked and ("hello", "en") in screen.lab.checked[-1:]
    run(scenario())


def test_chinese_lines_break_between_characters_while_the_app_runs(tmp_path):
    import textual._wrap
    from textual.content import Content

    before = textual._wrap.re_chunk
    text = "每一课左边阅读、右边动手：你运行 docker 命令，实验面板显示内核实际做了什么（真的），每一步都检查。"

    async def scenario():
        app = app_for(tmp_path, "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            lines = [line.plain for line in Content(text).wrap(30)]
            assert all(len(line.rstrip()) >= 12 for line in lines[:-1]), lines       # no half-empty lines
            assert not any(line.startswith(("，", "。", "）", "、")) for line in lines)  # nor a line opening on ，
            assert "".join(line.rstrip() for line in lines).replace(" ", "") == text.replace(" ", "")
            body = screen_text(app)
            assert "每一课左边阅读、右边动手：你运行 docker 命令，" in body.replace("\n", "")
    run(scenario())
    assert textual._wrap.re_chunk is before                     # put back once the app ends


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_step_needing_a_limit_this_machine_lacks_explains_with_the_real_lab(tmp_path, lang):
    """The lessons' own ``requires`` and container-lab doctor's verdict, through the real Lab:
    a machine without memory limits gets the memory step explained, not run."""
    from lessons.requirements import explain, lacking

    from app_support import pinned_course

    machine = Machine.pinned(limits=("pids", "cpu"), reason="no memory controller")
    course = pinned_course(tmp_path, "10-cgroups")
    ProgressStore(tmp_path / "progress").set_current("container-lab", "cgroups", "memory")

    async def scenario():
        app = make_app(lang, machine=machine, course=course, progress_dir=tmp_path / "progress", engine=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5)
            screen = app.screen
            assert screen.step.id == "memory"
            why = explain(lang, lacking(["cgroup.memory"], machine.diagnosis))
            await pilot.pause()
            shown = screen.view("memory").query_one(".step-unavailable")
            assert str(shown.content) == why and shown.region.y < 40     # said, and in view
            assert "memory" not in screen.cursors                # nothing was set up
            await pilot.press("c")
            await pilot.pause()
            record = app.learner.step_record(screen.lesson, "memory")
            assert record["done"] and record["skipped"]
    run(scenario())


def test_the_shipped_course_opens_in_the_app(tmp_path):
    """Each lesson of content/ at its first step, each quiz step (a RadioSet or a
    SelectionList with the options' words) and its last step, the language switched once
    in every lesson: nothing breaks, each step shows its title and its quiz."""
    from lessons.content import content_dir

    async def scenario():
        app = make_app("en", machine=ROOT_V2, course=content_dir(), progress_dir=tmp_path / "p", lab=StubLab,
                       engine=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            for lesson in app.course.lessons:
                app.open_lesson(lesson.id, lesson.steps[0].id)
                screen = await lesson_ready(pilot, app)
                assert screen.lesson is lesson
                wanted = sorted({0, len(lesson.steps) - 1} | {i for i, s in enumerate(lesson.steps) if s.quiz})
                for n in wanted:
                    screen.go(n)
                    if n == wanted[-1]:
                        await pilot.press("f2")
                    await pilot.pause()
                    step = screen.step
                    assert screen.index == n and screen.view(step.id).has_class("-current")
                    assert step.title(app.lang) in str(screen.view(step.id).query_one(".step-title").content)
                    if step.quiz is not None:
                        await wait_for(pilot, lambda: screen.view(step.id).quiz() is not None, 10, "the quiz")
                        choices = screen.view(step.id).quiz().choices()
                        if isinstance(choices, RadioSet):
                            shown = [str(b.label) for b in choices.query(RadioButton)]
                        else:
                            shown = [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]
                        assert shown == [option_text(step, app.lang, o) for o in step.quiz.options]
    run(scenario())


# -- check results ---------------------------------------------------------------------------------

class CodeLab(StubLab):
    """Check results worded as the real checks word them: commands as `code` spans
    (``results`` of them; the first fails)."""

    results = 3

    def check(self, step, cursor, *, wait=0.0, cancel=None):
        lang = self.lang
        where = msg(lang, "where.named", name="web")
        failed = Result("exec-ran", False, msg(lang, "saw.exec", name="web", cmd="ps -ef", code=1),
                        msg(lang, "exp.exec_ran", where=where) + "; " + msg(lang, "exp.argv", cmd="ps -ef"))
        passed = Result("pid1", True, "", msg(lang, "exp.pid1", where=where, cmd="sleep 1000"))
        return [failed] + [passed] * (self.results - 1)


def lab_with(results: int):
    return type("Lab", (CodeLab,), {"results": results})


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_check_results_show_code_spans_styled_without_backticks_and_unbroken(tmp_path, lang):
    from tui.screens.parts import NO_BREAK, results_content

    async def scenario():
        app = make_app(lang, machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=CodeLab,
                       engine=False, lesson="isolation")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("c")
            view = screen.view("look")
            await wait_for(pilot, lambda: view.results, 5, "the results")
            await pilot.pause()
            shown = view.query_one(".results").render()
            assert "`" not in shown.plain and "`" not in screen_text(app)
            assert f"ps{NO_BREAK}-ef" in shown.plain and f"sleep{NO_BREAK}1000" in shown.plain
            code = [shown.plain[s.start:s.end] for s in shown.spans if "bold" in str(s.style)]
            assert f"ps{NO_BREAK}-ef" in code and f"sleep{NO_BREAK}1000" in code     # bold: seen under NO_COLOR
            content = results_content(view.results, lang)
            for width in range(12, 80):                 # a code span is never cut across two lines
                lines = [line.plain for line in content.wrap(width)]
                assert sum(line.count(f"ps{NO_BREAK}-ef") for line in lines) == 2, (width, lines)
    run(scenario())


def test_after_a_check_a_step_that_fits_shows_from_its_heading(tmp_path):
    """Wherever the lesson pane was scrolled, the step is shown from its heading (the same place each time)."""
    async def scenario():
        app = make_app("en", machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=CodeLab,
                       engine=False, lesson="isolation")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            scroll, view = screen.query_one("#lesson-scroll"), screen.view("look")
            title = view.query_one(".step-title")
            places = []
            for start in ("end", "home", "end"):
                getattr(scroll, f"scroll_{start}")(animate=False, immediate=True)
                await pilot.pause()
                view.results = None
                await pilot.press("c")
                await wait_for(pilot, lambda: view.results, 5, "the results")
                await pilot.pause(0.1)
                assert scroll.region.contains_region(title.region), f"the heading is off screen (from {start})"
                assert scroll.region.contains_region(view.query_one(".results").region)
                places.append(scroll.scroll_offset.y)
            assert len(set(places)) == 1 and places[0] > 0
            assert title.region.y == scroll.region.y                     # the heading at the top
    run(scenario())


def test_after_a_check_a_step_too_tall_shows_its_results(tmp_path):
    async def scenario():
        app = make_app("en", machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=lab_with(12),
                       engine=False, lesson="isolation")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            scroll, view = screen.query_one("#lesson-scroll"), screen.view("look")
            scroll.scroll_home(animate=False, immediate=True)
            await pilot.press("c")
            await wait_for(pilot, lambda: view.results, 5, "the results")
            await pilot.pause(0.1)
            results, nav = view.query_one(".results"), view.query_one(".step-nav")
            assert results.region.bottom <= nav.region.y and scroll.region.contains_region(nav.region)
            assert nav.region.bottom >= scroll.region.bottom - 1          # the navigation at the bottom
    run(scenario())


def test_after_show_me_a_step_is_shown_from_its_heading_or_at_its_results(tmp_path):
    """Show me on each step of a lesson of the shipped course (pinned) that has one: the step from
    its heading when heading to results fit in the pane, else its results at the bottom."""
    from lessons.content import content_dir

    from app_support import pinned_course

    lesson_dir = next(p.name for p in sorted(content_dir().iterdir()) if p.name.startswith("08-"))
    course = pinned_course(tmp_path, lesson_dir)

    async def scenario():
        app = make_app("en", machine=ROOT_V2, course=course, progress_dir=tmp_path / "p", lab=CodeLab,
                       engine=False)
        fitted = 0
        async with app.run_test(size=(120, 40)) as pilot:
            lesson = app.course.lessons[0]
            for step in [s for s in lesson.steps if s.show_me and s.checks]:
                app.open_lesson(lesson.id, step.id)
                screen = await lesson_ready(pilot, app)
                scroll, view = screen.query_one("#lesson-scroll"), screen.view(step.id)
                scroll.scroll_end(animate=False, immediate=True)
                await pilot.press("s")
                await wait_for(pilot, lambda: view.results and screen.busy is None, 5, "show me and its check")
                await pilot.pause(0.1)
                title, results = view.query_one(".step-title"), view.query_one(".results")
                tall = scroll.y_of(results) + results.outer_size.height - scroll.y_of(title)
                if tall <= scroll.scrollable_content_region.height:
                    fitted += 1
                    assert title.region.y == scroll.region.y, step.id           # the heading at the top
                    assert scroll.region.contains_region(results.region), step.id
                else:
                    last = view.query(".step-nav, .results").last()
                    assert last.region.bottom == scroll.region.bottom, step.id    # results at the bottom
        assert fitted, "no step of the lesson fits at 120x40: pick another lesson"
    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_the_lab_panels_empty_message_is_on_screen_whole(tmp_path, lang, size):
    from tui.widgets.lab import LabPanel
    from tui.widgets.rows import RowList
    from tui.widgets.sources import FixtureSource
    from tui.widgets.strings import tr

    async def scenario():
        app = app_for(tmp_path, lang, lesson="isolation",
                      lab_panel=lambda lang: LabPanel(lang, FixtureSource({"containers": [], "snapshots": {}}),
                                                      live=False))
        async with app.run_test(size=size) as pilot:
            screen = await lesson_ready(pilot, app)
            if screen.has_class("-narrow"):
                await pilot.press("f3")
            await wait_for(pilot, lambda: screen.lab_panel() is not None, 5, "the lab panel")
            await pilot.pause()
            rows = screen.query_one("#lab-containers", RowList)
            shown = [rows.render_line(y).text.rstrip() for y in range(rows.header_lines, rows.size.height)]
            assert "".join(shown).replace(" ", "") == tr("lab.empty", lang).replace(" ", "")
            text = screen_text(app)
            assert all(line.strip() in text for line in shown)
    run(scenario())


def test_n_on_a_lesson_just_opened_brings_step_1_up_before_moving_on(tmp_path):
    """80x24: step 1 is the current step below the introduction; the first n shows it (at the top
    of the lesson pane), it does not skip it. The next n is step 2."""
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await lesson_ready(pilot, app)
            scroll = screen.query_one("#lesson-scroll")
            assert screen.index == 0 and scroll.scroll_y == 0
            title = screen.view("hello").query_one(".step-title")
            await pilot.press("n")
            await pilot.pause()
            assert screen.index == 0 and scroll.scroll_y > 0
            assert title.region.y == scroll.region.y            # step 1's heading at the top of the pane
            await pilot.press("n")
            await pilot.pause()
            assert screen.step.id == "shell"
    run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_each_hint_asked_for_is_scrolled_into_view(tmp_path, size):
    """h: the newest hint is on screen whole, however far below the step's text it is."""
    from app_support import pinned_course

    async def scenario():
        course = pinned_course(tmp_path, "09-namespaces")
        app = make_app("en", machine=ROOT_V2, course=course, progress_dir=tmp_path / "progress", lab=StubLab,
                       engine=False, lesson="09-namespaces")
        async with app.run_test(size=size) as pilot:
            screen = await lesson_ready(pilot, app)
            while screen.index < 1:
                await pilot.press("n")
                await pilot.pause()
            step = screen.step
            assert len(step.hints) >= 2
            scroll = screen.query_one("#lesson-scroll")
            for n in range(1, len(step.hints) + 1):
                await pilot.press("h")
                view = screen.view(step.id)

                def shown() -> bool:
                    hints = view.query(".hint-text")
                    if len(hints) != n or getattr(screen, "hinting", None) is not None:
                        return False
                    box = hints.last().region
                    return box.height > 0 and scroll.region.y <= box.y and box.bottom <= scroll.region.bottom
                await wait_for(pilot, shown, 5, f"hint {n} on screen")
    run(scenario())


@pytest.mark.parametrize("lesson, size", [("01-what-is-a-container", (120, 40)),
                                          ("07-shell-in-a-container", (80, 24))])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_quiz_answers_wrap_whole_show_the_choice_by_a_mark_and_explanations_hang_under_them(tmp_path, lesson,
                                                                                           size, lang):
    """Every option of every quiz of the lesson is on screen whole (wrapped under its button,
    never cut with "…"), the chosen one marked by a sign, not a colour alone; after an answer,
    each explanation is indented under its option."""
    from app_support import pinned_course

    def box_lines(text: str) -> list[str]:
        """The quiz's rows: between its top and bottom border, without the borders."""
        lines = text.splitlines()
        top = next(i for i, line in enumerate(lines) if "▔▔▔" in line)
        bottom = next(i for i, line in enumerate(lines) if "▁▁▁" in line and i > top)
        return [line.split("▊", 1)[1].rsplit("▎", 1)[0] for line in lines[top + 1:bottom]]

    async def scenario():
        course = pinned_course(tmp_path, lesson)
        app = make_app(lang, machine=ROOT_V2, course=course, progress_dir=tmp_path / "progress", lab=StubLab,
                       engine=False, lesson=lesson)
        async with app.run_test(size=size) as pilot:
            screen = await lesson_ready(pilot, app)
            quizzes = [n for n, s in enumerate(screen.lesson.steps) if s.quiz is not None]
            assert quizzes
            for index in quizzes:
                screen.go(index)
                step = screen.step
                await wait_for(pilot, lambda: screen.view(step.id).quiz() is not None
                               and screen.focused is screen.view(step.id).quiz().choices(), 5, "the quiz")
                await pilot.press("space" if step.quiz.multiple else "enter")     # the first option chosen

                def whole_box() -> bool:
                    lines = screen_text(app).splitlines()
                    tops = [i for i, line in enumerate(lines) if "▔▔▔" in line]
                    if bool(tops) and any("▁▁▁" in line for line in lines[tops[0] + 1:]):
                        return True
                    screen.view(step.id).quiz().choices().scroll_visible(animate=False, top=True)
                    return False
                await wait_for(pilot, whole_box, 5, "the quiz on screen")      # (scrolled to after a refresh)
                rows = box_lines(screen_text(app))
                starts = [n for n, row in enumerate(rows) if row.lstrip().startswith("▐")]
                assert len(starts) == len(step.quiz.options)
                for n, (at, oid) in enumerate(zip(starts, step.quiz.options)):
                    end = starts[n + 1] if n + 1 < len(starts) else len(rows)
                    head, *rest = rows[at:end]
                    mark = head.lstrip()[1]
                    assert mark == ((" ", "✓") if step.quiz.multiple else (" ", "●"))[n == 0], head
                    assert all(r.startswith(" " * 5) for r in rest), rows   # hanging under its text
                    shown = "".join("".join(x.split()) for x in [head.lstrip()[3:], *rest])
                    assert "…" not in shown
                    assert shown == "".join(option_text(step, lang, oid).split())
                await pilot.press("c")
                await pilot.pause()
                quiz = screen.view(step.id).quiz()
                feedback = quiz.query_one(".quiz-feedback")
                lines = [line.rstrip() for line in "\n".join(
                    "".join(seg.text for seg in strip) for strip in feedback.render_lines(feedback.region.reset_offset)
                ).splitlines() if line.strip()]
                first = option_text(step, lang, step.quiz.options[0])
                at = next(n for n, line in enumerate(lines) if line.lstrip().startswith(("✓", "✗")))
                assert lines[at].lstrip()[2:].startswith(first[:10])
                assert all(line.startswith("  ") and line.strip() for line in lines[at + 1:]), lines
    run(scenario())


def test_a_quiz_step_offers_only_the_keys_it_has_and_the_map_is_left_with_esc_or_m(tmp_path):
    async def scenario():
        app = app_for(tmp_path, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            footer = screen_text(app).splitlines()[-1]
            assert all(f"{k} {t('en', f'key.{a}')}" in footer for k, a in (("r", "run"), ("h", "hint"), ("s", "show")))
            screen.go(2)                                    # "Why so fast?": a quiz, nothing to run or show
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert f"c {t('en', 'key.check')}" in footer
            for key, action in (("r", "run"), ("h", "hint"), ("s", "show")):
                assert f"{key} {t('en', f'key.{action}')}" not in footer, footer
            for leave in ("escape", "m"):
                await pilot.press("escape", "m")            # (Esc first: the quiz's choices have the focus)
                await wait_for(pilot, lambda: isinstance(app.screen, CourseMapScreen), 5, "the map")
                assert f"esc {t('en', 'key.map_back')}" in screen_text(app).splitlines()[-1]
                await pilot.press(leave)
                await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5, "back to the lesson")
                screen = app.screen
                assert screen.step.id == "why"
    run(scenario())


def test_the_map_opened_from_the_welcome_screen_goes_back_there(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), 5, "the welcome screen")
            app.open_map()
            await wait_for(pilot, lambda: isinstance(app.screen, CourseMapScreen), 5, "the map")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), 5, "the welcome screen again")
            await pilot.press("enter")                      # start: lesson 1, over the map, over the welcome
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5, "the first lesson")
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, CourseMapScreen), 5, "the map")
            await pilot.press("escape")                     # back to that lesson, not the welcome screen
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5, "the lesson again")
    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_failure_in_a_worker_is_one_line_on_screen_and_its_traceback_in_the_log(tmp_path, lang):
    """A bug met while running a command (a KeyError): the learner reads one line naming it and
    the log; the log in the learner's state dir has the traceback. An error meant for readers
    (the engine's, a refused command) is its own words alone."""
    from tui import failures

    class Broken(StubLab):
        def run(self, command, step=None, **kwargs):
            return {}["exit_code"]

    async def scenario():
        app = make_app(lang, machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "progress", lab=Broken,
                       engine=False, lesson="hello")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await lesson_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.busy is None, 5, "the command to fail")
            await pilot.pause()
            log = tmp_path / "progress" / failures.LOG
            said = t(lang, "lab.failed.run", error=t(lang, "failure.logged", error="KeyError: 'exit_code'",
                                                      log=str(log)))
            assert said in screen.output.plain
            text = log.read_text()
            assert "Traceback (most recent call last)" in text and "KeyError: 'exit_code'" in text
            assert "hello: lab.failed.run" in text and "return {}[\"exit_code\"]" in text
    run(scenario())
    from engine.errors import NameConflict
    assert failures.one_line(NameConflict("the name web is in use"), tmp_path / "x.log", lang) == \
        "the name web is in use"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_at_80_columns_the_footer_keeps_help_quit_and_every_lesson_key(lang):
    async def scenario():
        import tempfile
        from pathlib import Path

        app = app_for(Path(tempfile.mkdtemp()), lang, lesson="hello")
        async with app.run_test(size=(80, 24)) as pilot:
            await lesson_ready(pilot, app)
            footer = screen_text(app).splitlines()[-1]
            shown = [f"F1 {t(lang, 'key.help')}", f"^q {t(lang, 'key.quit')}", f"F3 {t(lang, 'key.side')}",
                     f"r {t(lang, 'key.run')}", f"n p {t(lang, 'key.steps')}", f"m {t(lang, 'key.map')}"]
            for words in shown:
                assert words in footer, footer
            assert footer.index(shown[1]) < footer.index(shown[2])     # quit before the lesson's keys
    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_welcome_screen_names_the_course_it_opened(tmp_path, lang):
    """--course DIR: the welcome screen's first line is that course's title (and its size), in
    the learner's language, and F2 rewords it."""
    async def scenario():
        app = app_for(tmp_path, lang)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), 5, "the welcome screen")
            first = screen_text(app).splitlines()[1].strip()
            assert first == t(lang, "welcome.course", title=app.course.title[lang], count=2)
            await pilot.press("f2")
            await pilot.pause()
            other_lang = "zh" if lang == "en" else "en"
            assert screen_text(app).splitlines()[1].strip() == \
                t(other_lang, "welcome.course", title=app.course.title[other_lang], count=2)
    run(scenario())
