"""The welcome screen, the machine check, the keys everywhere, and ``container-lab`` itself (main).

Pilot tests drive the app headless (``app.run_test``) with the machine pinned
(``Machine.pinned``), the fixture course, a private progress directory and a lab that needs no
engine, so every host draws the same screens. The screenshots are in test_app_snapshots.py; the
catalogs in test_app_i18n.py; a learner working a real lesson in test_app_lesson.py.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Static

from tui import start as tui_start
from tui.i18n import detect_language, t
from tui.machine import Machine, check_machine
from tui.screens.help import HelpScreen
from tui.screens.lesson import LessonScreen
from tui.screens.welcome import WelcomeScreen, welcome_text
from tui.start import main, make_app

from app_support import FIXTURE, ROOT_V2, USER_NONE, StubLab, screen_text, wait_for

SIZE = (80, 24)
# A few words that only the Chinese screen shows, and their English counterparts.
ZH_WORDS = ("本机情况", "命名空间", "从第一课开始")
EN_WORDS = ("This machine", "namespaces", "Begin with the first lesson")


@pytest.fixture(autouse=True)
def _colors_on(monkeypatch):
    """Screens are drawn in colour, whatever the shell running the tests asks for."""
    monkeypatch.delenv("NO_COLOR", raising=False)


def app_for(tmp_path, lang="en", machine=ROOT_V2, **kwargs):
    return make_app(lang, machine=machine, course=FIXTURE, progress_dir=tmp_path / "progress", lab=StubLab,
                    engine=False, **kwargs)


def statics(app) -> str:
    """All the text of the active screen's Static widgets, in order."""
    return "\n".join(str(w.content) for w in app.screen.query(Static))


def run(coro):
    return asyncio.run(coro)


# -- the machine check (no Textual needed) ------------------------------------------------------

def test_the_machine_is_read_from_container_lab_doctor():
    diagnosis = Machine.pinned(cgroup="v1", limits=("memory", "pids")).diagnosis
    m = check_machine(lambda: diagnosis)
    assert (m.root, m.cgroup, m.limits, m.overlayfs, m.cgroup_ok) == (True, "v1", ("memory", "pids"), True, True)
    assert m.ok("cgroup.memory") and not m.ok("cgroup.cpu")
    assert "cpu limits cannot be applied" in m.detail("cgroup.cpu")
    assert m.doctor() is diagnosis


def test_a_machine_without_root_or_cgroups():
    m = USER_NONE
    assert (m.root, m.cgroup, m.limits, m.overlayfs, m.cgroup_ok) == (False, "none", (), False, False)
    assert "not writable by uid 1000" in m.cgroup_reason


def test_a_failing_doctor_does_not_stop_the_app():
    def boom():
        raise PermissionError("mountinfo unreadable")
    m = check_machine(boom)
    assert not m.root and not m.ok("root") and "mountinfo unreadable" in m.detail("root")


def test_the_machine_check_on_this_host():
    m = check_machine()
    assert m.cgroup in ("v1", "v2", "none")
    assert {c["id"] for c in m.diagnosis["checks"]} >= {"root", "overlayfs", "cgroup.memory"}


def test_words_for_a_machine_that_cannot_do_much():
    for lang in ("en", "zh"):
        text = welcome_text(lang, USER_NONE)
        assert USER_NONE.cgroup_reason in text["cgroup-detail"]
        assert text["root-detail"] == t(lang, "check.root.blocked", detail=USER_NONE.blocker)
        assert USER_NONE.blocker and USER_NONE.blocker in text["root-detail"]
        assert text["machine-note"] == t(lang, "machine.note.blocked")
        assert {text[f"{c}-mark"] for c in ("root", "cgroup", "overlay")} == {"✗"}


def test_words_for_a_rootless_machine():
    machine = Machine.pinned(root=False, rootless=True, cgroup="none", reason="no delegated cgroup")
    assert machine.can_run and not machine.root
    for lang in ("en", "zh"):
        text = welcome_text(lang, machine)
        assert text["root-mark"] == "✓" and text["root-detail"] == t(lang, "check.root.no")
        assert text["machine-note"] == t(lang, "machine.note.root")


def test_words_for_a_machine_without_some_limits():
    machine = Machine.pinned(limits=("pids", "cpu"))
    assert welcome_text("en", machine)["machine-note"] == t("en", "machine.note.limits", limits="memory")
    assert welcome_text("en", ROOT_V2)["machine-note"] == t("en", "machine.note.ok")


def test_both_languages_fill_every_widget():
    from lessons.loader import load_course

    from app_support import FIXTURE

    course = load_course(FIXTURE)
    for machine in (ROOT_V2, USER_NONE):
        en, zh = welcome_text("en", machine, course), welcome_text("zh", machine, course)
        assert en.keys() == zh.keys()
        assert all(zh[k] and en[k] for k in en)


# -- main() ------------------------------------------------------------------------------------

def test_a_bad_language_is_a_usage_error(capsys):
    assert main(["--lang", "fr"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_of_the_course_options(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--lang" in out and "--lesson" in out and "--course" in out


def test_without_a_terminal_main_says_so_instead_of_drawing(capsys, monkeypatch):
    monkeypatch.setattr(tui_start, "has_terminal", lambda: False)
    assert main(["--lang", "en"]) == 1
    assert capsys.readouterr().err.strip() == t("en", "note.no_terminal")


@pytest.fixture
def a_terminal(monkeypatch):
    monkeypatch.setattr(tui_start, "has_terminal", lambda: True)


def test_an_unknown_lesson_gets_a_one_line_note(capsys, a_terminal):
    assert main(["--lang", "zh", "--course", str(FIXTURE), "--lesson", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.strip() == t("zh", "note.no_lesson", lesson="nope", lessons="hello, isolation")


def test_a_course_with_mistakes_gets_a_one_line_note(capsys, a_terminal, tmp_path):
    (tmp_path / "course.toml").write_text('id = "x"\ntitle.en = "X"\n')
    assert main(["--lang", "en", "--course", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "course check" in err and str(tmp_path) in err


def test_lessons_are_found_by_id_folder_or_number():
    from lessons.loader import load_course
    from tui.start import _find_lesson

    course = load_course(FIXTURE)
    assert [_find_lesson(course, ref) for ref in ("hello", "02-isolation", "2", "01", "9", "x")] == \
        ["hello", "isolation", "isolation", "hello", None, None]


def test_make_app_rejects_an_unknown_language(tmp_path):
    with pytest.raises(ValueError, match="unknown language"):
        app_for(tmp_path, "fr")


# -- the welcome screen, driven headless ------------------------------------------------------------

def test_a_new_learner_gets_the_welcome_screen(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, WelcomeScreen)
            text = statics(app)
            assert app.title == "container-lab"
            assert t("en", "about.title") in text and t("en", "machine.title") in text
            assert t("en", "check.root.yes") in text
            assert t("en", "check.cgroup.v2", limits="memory, processes, CPU, swap") in text
    run(scenario())


def test_f2_switches_to_chinese_and_back_in_place(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            before = app.screen.query_one("#about-title")
            await pilot.press("f2")
            await pilot.pause()
            text = statics(app)
            assert app.lang == "zh"
            assert all(word in text for word in ZH_WORDS), text
            assert app.screen.query_one("#about-title") is before      # same widgets, new words
            assert app.screen.sub_title == t("zh", "subtitle.welcome")
            footer = {b.binding.description for b in app.screen.active_bindings.values() if b.binding.show}
            assert footer == {"English", "帮助", "退出", "开始"}
            await pilot.press("l")                                     # l still works where no one types
            await pilot.pause()
            text = statics(app)
            assert app.lang == "en"
            assert all(word in text for word in EN_WORDS)
            assert not any(word in text for word in ZH_WORDS)
        assert app.learner.store.load()["language"] == "en"             # remembered
    run(scenario())


def test_the_language_buttons_switch_too(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.click("#lang-zh")
            await pilot.pause()
            assert app.lang == "zh" and app.screen.query_one("#lang-zh").has_class("-current")
    run(scenario())


def test_enter_starts_the_first_lesson_over_the_map(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LessonScreen), 5)
            assert app.screen.lesson.id == "hello" and app.screen.step.id == "hello"
            assert [type(s).__name__ for s in app.screen_stack] == ["WelcomeScreen", "CourseMapScreen", "LessonScreen"]
    run(scenario())


def test_q_quits(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running
        assert app.return_code == 0
    run(scenario())


@pytest.mark.parametrize("key", ["f1", "question_mark"])
def test_help_opens_and_closes(key, tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            text = screen_text(app)
            assert t("en", "help.switch_language") in text and t("en", "help.run") in text
            await pilot.press("f2")                 # the language switches under the help too
            await pilot.pause()
            assert t("zh", "help.switch_language") in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, WelcomeScreen)
            assert all(word in statics(app) for word in ZH_WORDS)
            await pilot.press("f1", "f1")           # F1 again closes it
            await pilot.pause()
            assert isinstance(app.screen, WelcomeScreen)
    run(scenario())


def test_a_zh_locale_opens_in_chinese(monkeypatch, tmp_path):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert detect_language() == "zh"

    async def scenario():
        app = make_app(machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=StubLab, engine=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.lang == "zh"
            assert all(word in statics(app) for word in ZH_WORDS)
    run(scenario())


def test_the_remembered_language_wins_over_the_locale_and_lang_over_both(monkeypatch, tmp_path):
    monkeypatch.setenv("LANGUAGE", "en")
    from lessons.progress import ProgressStore
    ProgressStore(tmp_path / "p").set_language("zh")
    common = dict(machine=ROOT_V2, course=FIXTURE, progress_dir=tmp_path / "p", lab=StubLab, engine=False)
    assert make_app(**common).lang == "zh"
    assert make_app("en", **common).lang == "en"


def test_no_color_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("NO_COLOR", "1")

    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.no_color
            styles = {seg.style.color.triplet for strip in app.screen._compositor.render_strips()
                      for seg in strip if seg.style and seg.style.color and seg.style.color.triplet}
            assert all(r == g == b for r, g, b in styles), f"colours with NO_COLOR: {styles}"
    run(scenario())


def test_eighty_by_twenty_four_shows_the_start_of_the_welcome(tmp_path):
    async def scenario():
        app = app_for(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = screen_text(app).splitlines()
            assert len(text) == 24
            assert app.course.title["en"] in text[1]                  # under the header, not scrolled away
            assert t("en", "about.title") in text[3]
            assert "F2" in text[-1] and t("en", "key.lang") in text[-1]
    run(scenario())


def test_the_private_wrap_patterns_cjk_replaces_are_still_there():
    """tui.text.cjk replaces a private regular expression in Textual and in Rich: when
    a new version moves or changes one, this fails saying which (and pyproject.toml's
    upper bounds are the versions it was tested with)."""
    from tui.text import cjk

    assert cjk.moved() is None, cjk.moved()


def test_a_moved_private_pattern_is_said_in_one_line_and_nothing_is_patched(monkeypatch):
    import re

    import textual._wrap

    from tui.text import cjk

    monkeypatch.setattr(textual._wrap, "re_chunk", re.compile(r"\S+"))
    said = cjk.moved()
    assert said is not None and "\n" not in said and "textual._wrap.re_chunk" in said and "in textual " in said
    assert cjk.install() is False and textual._wrap.re_chunk.pattern == r"\S+"
    monkeypatch.delattr(textual._wrap, "re_chunk")
    assert "textual._wrap.re_chunk is gone" in cjk.moved()


def test_the_real_lab_and_the_stub_are_both_lesson_labs_and_both_panels_lab_views(tmp_path):
    """The lesson screen calls what tui.contracts lists, without asking first: the
    test stub and the real classes must all offer it."""
    from lessons.lab import Lab
    from lessons.loader import load_course
    from tui.contracts import LabView, LessonLab
    from tui.screens.parts import LabPlaceholder
    from tui.widgets.lab import LabPanel
    from tui.widgets.sources import FixtureSource

    course = load_course(FIXTURE)
    lesson = course.lessons[0]
    assert isinstance(Lab(course, lesson, view=object()), LessonLab)
    assert isinstance(StubLab(lesson), LessonLab)
    panel = LabPanel("en", FixtureSource({"containers": [], "snapshots": {}}))
    assert isinstance(panel, LabView) and isinstance(LabPlaceholder("en"), LabView)
    panel.show_lesson(lesson.id)
    assert panel.source.lesson == lesson.id


def test_the_step_through_control_hands_the_learners_keys_to_the_gate():
    """Enter, f and Esc (or leaving) reach the start's gate; once stopped the keys go
    and its stages are no longer shown; its end is the end of that step's start alone."""
    import threading

    from lessons.stepwise import Gate
    from tui.screens.stepthrough import STAGE_TABS, StagesBegan, StepThroughControl

    control = StepThroughControl()
    assert not control.active and control.stop() is False and control.end("s1") is None
    gate = Gate()
    control.begin(StagesBegan("s1", gate, "web", None))
    assert control.active and control.showing("s1").container == "web" and control.showing("s2") is None
    control.next()
    assert gate.wait(threading.Event())                 # one stage let through
    control.finish()
    assert gate.finishing
    assert control.stop() is True and gate.stopped and not control.active and control.stop() is False
    assert control.showing("s1") is None                # stopping: no more stages drawn
    assert control.end("s2") is None and control.current is not None
    assert control.end("s1").stopped and control.current is None

    class Panel:
        said: list = []

        def select(self, ref):
            self.said.append(("select", ref))

        def show_tab(self, name):
            self.said.append(("tab", name))

    panel = Panel()
    StepThroughControl.show_stage(panel, "web", "pivot_root")
    StepThroughControl.show_stage(panel, "web", "tty")
    StepThroughControl.show_stage(None, "web", "fork")    # no panel yet: nothing to do
    assert panel.said == [("select", "web"), ("tab", STAGE_TABS["pivot_root"]), ("select", "web")]
