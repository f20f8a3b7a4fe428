"""The container-lab app: which screen is open, the language, and leaving tidily.

``container-lab`` with no verb lands here. A new learner gets the welcome
screen (:mod:`tui.screens.welcome`); a returning one is back in the lesson
and step they left (:mod:`tui.screens.lesson`), with the course map
(:mod:`tui.screens.course_map`) one key away. F2 switches English / 中文
at any moment, everywhere, and the choice is remembered with the progress.

The app holds what every screen shares -- the course, the learner's
progress, this machine's check, the language -- and hands it down; screens
say what the learner wants with messages. It talks to the engine itself for
one thing only: removing the course's containers when a lesson is left, when
the app quits (asking first about those the learner started in the
background) and at start after a session that crashed (:mod:`tui.session`).
Each app is a *session* with an id of its own (:attr:`ContainerLabApp.session`)
that labels every container it starts: two apps of one user on one engine
each show, remove and ask about their own alone (see :mod:`lessons.lab`).

:func:`tui.start.make_app` builds it (and :func:`tui.start.main` is
``container-lab`` with no verb); tests pin the machine, the course, the
progress directory, the lab and the lab panel there, so every host draws the
same screens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget

from lessons.model import Course, Lesson
from tui.contracts import Translatable
from tui.i18n import other, t, tn
from tui.machine import Machine
from tui.screens.keys import APP_KEYS, Localized, bindings
from tui.session import (
    LazyLab,
    Learner,
    SessionMark,
    course_containers,
    learners_own,
    left_by,
    new_session_id,
    orphans,
    remove,
)
from tui.text import cjk

# The screens are imported where they are first needed: the first frame is
# drawn sooner when the welcome screen does not wait for the lesson screen's
# Markdown, lab panel and terminal (see bench/app_startup.py).
if TYPE_CHECKING:
    from tui.screens.course_map import CourseMapScreen
    from tui.screens.lesson import LessonScreen
    from tui.screens.welcome import WelcomeScreen


class ContainerLabApp(Localized, App[None]):
    """The course: welcome, course map, lessons."""

    CSS_PATH = ["app.tcss", "screens/lesson.tcss"]
    TITLE = "container-lab"
    ENABLE_COMMAND_PALETTE = False      # its commands are English-only
    BINDINGS = bindings(*APP_KEYS)

    class Containers(Message):
        """The course's containers, listed by a worker: for quitting, or left by a crash."""

        def __init__(self, purpose: str, containers: list[dict]) -> None:
            super().__init__()
            self.purpose, self.containers = purpose, containers

    def __init__(self, *, lang: str, course: Course, machine: Machine, learner: Learner,
                 lesson: str | None = None, lab: Callable | None = None,
                 lab_panel: Callable[[str], Widget] | None = None, mark: SessionMark | None = None,
                 engine: bool = True) -> None:
        super().__init__()
        self.lang, self.course, self.machine, self.learner = lang, course, machine, learner
        self.start_lesson = lesson
        self.session = new_session_id()  # labels what this app starts: another app of the user has its own
        self.make_lab = lab or self._real_lab
        self.lab_panel = lab_panel or (lambda lang: default_lab_panel(lang, session=self.session))
        self.mark = mark
        self.engine = engine            # False: never talk to the engine (screenshots)
        self.quitting = False
        cjk.install()                   # Chinese lines break between characters (see tui.text.cjk)

    def on_unmount(self) -> None:
        cjk.uninstall()

    def _real_lab(self, lesson: Lesson):
        def make():
            from lessons.lab import Lab
            try:
                return Lab(self.course, lesson, lang=self.lang, doctor=self.machine.doctor, session=self.session)
            except TypeError:           # a lessons package without requirements
                return Lab(self.course, lesson, lang=self.lang)
        return LazyLab(make, self.machine.doctor)

    # -- opening screens ---------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        """The first screen, at the bottom of the stack: the lesson where the learner
        left off (or the one asked for), else the welcome screen. Being the app's
        own first screen, it is the first frame drawn (no blank screen before it)."""
        from tui.screens.welcome import WelcomeScreen

        position = self.learner.position()
        if self.start_lesson is not None:
            return self._lesson_screen(self.start_lesson)
        if position is not None:
            return self._lesson_screen(*position)
        return WelcomeScreen(self.lang, self.machine, self.course)

    def on_mount(self) -> None:
        for notice in self.learner.store.notice_texts(self.lang):
            self.notify(notice, severity="warning", timeout=20)
        if self.mark is not None and self.engine:
            stale = self.mark.begin(self.course.id, self.session)
            self._list_containers("crash", stale)     # (also what crashed apps left whose mark is gone)

    def open_map(self) -> None:
        """The course map (made when first wanted): the screens above it go. The
        first screen (welcome, or the lesson the app opened on) stays under it."""
        from tui.screens.course_map import CourseMapScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, CourseMapScreen):
            self.pop_screen()
        if not isinstance(self.screen, CourseMapScreen):
            self.push_screen(CourseMapScreen(self.lang, self.course, self.learner))

    def _lesson_screen(self, lesson_id: str, step_id: str | None = None) -> Screen:
        from tui.screens.lesson import LessonScreen

        lesson = self.course.lesson(lesson_id)
        return LessonScreen(self.lang, self.course, lesson, self.learner, self.make_lab(lesson), self.machine,
                            step_id=step_id, lab_panel=self.lab_panel)

    def open_lesson(self, lesson_id: str, step_id: str | None = None) -> None:
        """Lesson ``lesson_id`` (at ``step_id``, else where the learner left it), over the map."""
        self.leave_lesson()
        self.open_map()
        self.push_screen(self._lesson_screen(lesson_id, step_id))

    def leave_lesson(self) -> None:
        """Back to the map; the lesson's containers go, but those the learner runs are kept.
        (The lesson the app opened on cannot be taken off the bottom of the stack: it is
        put to rest under the map -- no terminal, no work running.)"""
        from tui.screens.lesson import LessonScreen

        screen = self.screen
        if isinstance(screen, LessonScreen):
            screen.put_to_rest()
            if self.engine and self.machine.can_run:
                self._remove_lesson_containers(screen.lesson.id)
            self.open_map()

    def on_welcome_screen_start(self, _message: WelcomeScreen.Start) -> None:
        if self.course.lessons:
            self.open_lesson(self.course.lessons[0].id)

    def on_welcome_screen_open_map(self, _message: WelcomeScreen.OpenMap) -> None:
        self.open_map()

    def on_welcome_screen_language_chosen(self, message: WelcomeScreen.LanguageChosen) -> None:
        self.set_language(message.lang)

    def on_course_map_screen_lesson_chosen(self, message: CourseMapScreen.LessonChosen) -> None:
        self.open_lesson(message.lesson_id)

    def on_course_map_screen_back(self, _message: CourseMapScreen.Back) -> None:
        """Esc / m on the map: back to the lesson and step the learner was at, else (a new
        learner who has opened no lesson yet) to the welcome screen under the map."""
        from tui.screens.welcome import WelcomeScreen

        below = self.screen_stack[-2] if len(self.screen_stack) > 1 else None
        if (position := self.learner.position()) is not None:
            self.open_lesson(*position)
        elif isinstance(below, WelcomeScreen):
            self.pop_screen()

    def on_lesson_screen_open_map(self, _message: LessonScreen.OpenMap) -> None:
        self.leave_lesson()

    def on_lesson_screen_lesson_complete(self, message: LessonScreen.LessonComplete) -> None:
        from tui.screens.dialogs import CompletionScreen

        lessons = list(self.course.lessons)
        lesson = self.course.lesson(message.lesson_id)
        at = lessons.index(lesson)
        following = lessons[at + 1] if at + 1 < len(lessons) else None
        checks = sum(len(s.checks) for s in lesson.steps)

        def chosen(choice: str | None) -> None:
            if choice == "next" and following is not None:
                self.open_lesson(following.id)
            elif choice == "map":
                self.leave_lesson()
        self.push_screen(CompletionScreen(self.lang, lesson.title, len(lesson.steps), checks,
                                          following.title if following else None), chosen)

    # -- the language -------------------------------------------------------------------------
    def set_language(self, lang: str) -> None:
        """Every screen re-rendered in ``lang``, in place; remembered with the progress."""
        if lang == self.lang:
            return
        self.lang = lang
        try:
            self.learner.set_language(lang)
        except OSError as e:
            self.notify(t(lang, "progress.unsaved", error=str(e)), severity="warning")
        for screen in self.screen_stack:
            if isinstance(screen, Translatable):      # (not Textual's own screens)
                screen.set_language(lang)
        self.refresh_bindings()

    def action_switch_language(self) -> None:
        """F2: English <-> 中文."""
        self.set_language(other(self.lang))

    def action_help(self) -> None:
        """F1 / ?: the keys (again: closes them)."""
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen(self.lang))

    # -- leaving --------------------------------------------------------------------------------
    def action_quit(self, how: str = "") -> None:
        """Ctrl+Q / q: remove the course's containers (asking about the learner's own), then quit.
        A lone q (``how="key"``: a letter typed meant for the terminal, maybe) does not end an
        open terminal session: it says how to quit and how to get back to it."""
        if self.quitting:
            return
        if how == "key" and any(getattr(screen, "terminal", None) is not None for screen in self.screen_stack):
            self.notify(t(self.lang, "quit.terminal_open"), severity="warning")
            return
        self.quitting = True
        from tui.screens.lesson import LessonScreen

        for screen in self.screen_stack:
            if isinstance(screen, LessonScreen):
                screen.close_terminal()
                screen.stop_stepping()          # a half-built container (run --explain) ends
        if not (self.engine and self.machine.can_run):
            self._done()
            return
        self.notify(t(self.lang, "quit.cleaning"), timeout=5)
        self._list_containers("quit", None)

    @work(thread=True, exclusive=True, group="containers", exit_on_error=False)
    def _list_containers(self, purpose: str, stale: dict | None) -> None:
        from tui.session import running_containers

        containers = running_containers(autostart=False)
        if purpose == "crash":
            found = (left_by(stale, containers) if stale is not None else []) + orphans(containers, self.course.id)
            mine = list({c["id"]: c for c in found}.values())
        else:
            mine = course_containers(containers, self.course.id, session=self.session)
        self.post_message(self.Containers(purpose, mine))

    def on_container_lab_app_containers(self, message: Containers) -> None:
        from tui.screens.dialogs import QuitScreen

        if message.purpose == "crash":
            if message.containers:
                self._remove(message.containers, "crash")
            return
        own = learners_own(message.containers)
        if not own:
            self._remove(message.containers, "quit")
            return

        def chosen(choice: str | None) -> None:
            if choice == "remove":
                self._remove(message.containers, "quit")
            elif choice == "keep":
                ids = {c["id"] for c in own}
                self._remove([c for c in message.containers if c["id"] not in ids], "quit")
            else:
                self.quitting = False
        self.push_screen(QuitScreen(self.lang, [c["name"] for c in own]), chosen)

    @work(thread=True, group="containers", exit_on_error=False)
    def _remove(self, containers: list[dict], purpose: str) -> None:
        from tui.session import engine_client, remove_networks

        removed: list[str] = []
        try:
            if containers:
                removed = remove(engine_client(autostart=False), containers)
            if purpose == "quit":
                remove_networks(engine_client(autostart=False), self.course)
        except Exception as e:  # noqa: BLE001 - leaving must not fail; gc sweeps the rest
            self.call_from_thread(self.notify, self.failure(e, f"removing containers ({purpose})"), severity="error")
        if purpose == "quit":
            self.call_from_thread(self._done)
        elif removed:
            self.call_from_thread(self.notify, tn(self.lang, "crash.cleaned", len(removed),
                                                  names=t(self.lang, "list.sep").join(removed)), timeout=10)

    @work(thread=True, group="containers", exit_on_error=False)
    def _remove_lesson_containers(self, lesson_id: str) -> None:
        from tui.session import engine_client, running_containers

        containers = course_containers(running_containers(autostart=False), self.course.id, lesson_id,
                                       session=self.session)
        from tui.session import remove_networks

        keep = {c["id"] for c in learners_own(containers)}
        try:
            remove(engine_client(autostart=False), [c for c in containers if c["id"] not in keep])
            remove_networks(engine_client(autostart=False), self.course, lesson_id)
        except Exception:  # noqa: BLE001 - quitting (or gc) removes what is left
            pass

    def failure(self, error: BaseException, doing: str) -> str:
        """(Any thread.) ``error`` logged with its traceback in the learner's state dir; one line for the learner."""
        from tui import failures

        log = failures.record(getattr(self.learner.store, "dir", None), error, doing)
        return failures.one_line(error, log, self.lang)

    def on_worker_state_changed(self, event) -> None:
        """An app worker that failed without saying so (a bug): logged, one line on screen."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(self.failure(event.worker.error, event.worker.name or "worker"), severity="error", timeout=15)
            if self.quitting and event.worker.group == "containers":
                self._done()                # quitting must not hang on a failed listing

    def _done(self) -> None:
        if self.mark is not None:
            self.mark.end()
        self.exit()


def default_lab_panel(lang: str, session: str | None = None) -> Widget:
    """The live lab panel (:mod:`tui.widgets.lab`) on the containers app session ``session``
    started (all the engine's without one), or a placeholder where it is not installed."""
    try:
        from tui.widgets.lab import LabPanel
        from tui.widgets.sources import EngineSource
    except ImportError:
        from tui.screens.parts import LabPlaceholder
        return LabPlaceholder(lang)
    return LabPanel(lang=lang, source=EngineSource(session=session))
