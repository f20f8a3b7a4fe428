"""The lesson screen: the lesson on the left, the live lab on the right.

Left: the lesson's text, every step in order with the current one
highlighted and opened (its commands with Run, Check, Hint, Show me, Reset,
its quiz, its check results), then the output of the commands run and the
command line. Right: the lab panel and, while an interactive session is
open, the embedded terminal below it. Narrower than 100 columns only one
side shows at a time; F3 switches.

Everything that talks to the engine -- setting a step up, running a
command, checking, opening a terminal -- runs in a thread worker, which
hands its results back as a message (:mod:`tui.screens.lesson_messages`)
and never touches a widget. Cancelling crosses into :mod:`lessons` as the
worker's ``cancelled_event``, a plain :class:`threading.Event`.

A ``docker run --explain`` starts one stage at a time (a *step-through
start*, :mod:`lessons.stepwise`): after each stage the worker waits on a
:class:`lessons.stepwise.Gate` while the stage panel above the output shows
what the stage did (in the learner's language, F2 included) and the lab panel
shows the half-built container; Enter or Space opens the gate for the next
stage, f for all the rest, Esc (or leaving the step or the lesson) ends the
start and removes the container.

"Show me" on a step whose command is interactive (``-it``) opens the
embedded terminal and types the step's lines into it where the learner can
see them, at a readable pace (:attr:`LessonScreen.typing_delay` a key).

The terminal never traps the keys: Ctrl+] leaves it with the session still
open, t (and F3 on a narrow screen, from inside it too) goes back; while a
session is open, a lone q does not quit and x does not reset (each says
why). The lab panel follows what the learner just started (``Follow``:
a run's container, named or not, an exec's). A failure in a worker is
logged with its traceback in the learner's state dir and said in one line
(:mod:`tui.failures`).

Where each part lives (one module per concern, each opening with what it holds):

- ``lesson.py``            this screen: its state, its layout, what each key may
                           do now (:meth:`LessonScreen.can`), the command line,
                           failures, the language, leaving
- ``lesson_messages.py``   what the workers report
- ``lesson_steps.py``      moving between steps; a new hint and new check results
                           brought into view; the focus
- ``lesson_run.py``        a step's lab set up or reset, Run, the command line's
                           commands, show me
- ``lesson_checks.py``     checks, quiz answers, a step and the lesson done
- ``lesson_terminal.py``   the embedded terminal: opening a session (an ``-it``
                           command, o), going in and out, its end
- ``lesson_lab_panel.py``  the lab panel: mounted after the first frame, following
                           the container a command started
- ``stepthrough.py``       a step-through start: its gate and keys, and the
                           screen's handling of its stages
- ``lesson_scroll.py``     where the lesson pane scrolls to
- ``parts.py``             the lesson's widgets (a step, the output, the stage
                           panel, the command line); ``quiz.py`` a step's quiz;
                           ``lesson_text.py`` prose and check results as drawn
- :mod:`tui.widgets.terminal_pane`  the terminal and its session;
  :mod:`tui.contracts`  what a lab and a lab panel must offer

Why one class made of mixins, not collaborating objects: the lesson flow is
one state (the current step, the command running, each step's check cursor,
the open terminal, the start under way) that every key, button and worker
report reads and changes, and the order in which those happen is the
behaviour the app tests pin down. As mixins, each concern reads as one file
while the state keeps one owner: it is all set up in
:meth:`LessonScreen.__init__`, and each mixin's docstring names the parts of
it that it changes.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Static

from lessons.model import Course, Lesson, Step
from tui.contracts import LabView, LessonLab
from tui.i18n import t
from tui.machine import Machine
from tui.screens.keys import FRONT_KEYS, LESSON_KEYS, Localized, bindings
from tui.screens.lesson_checks import ChecksMixin
from tui.screens.lesson_lab_panel import LabPanelMixin
from tui.screens.lesson_run import RunMixin
from tui.screens.lesson_scroll import LessonScroll
from tui.screens.lesson_steps import StepsMixin
from tui.screens.lesson_terminal import TerminalMixin, has_terminal_view
from tui.screens.lesson_text import LessonMarkdown
from tui.screens.parts import CommandLine, LabPlaceholder, OutputLog, StepView
from tui.screens.stepthrough import StepThroughControl, StepThroughMixin
from tui.session import Learner


class LessonScreen(StepsMixin, RunMixin, StepThroughMixin, ChecksMixin, TerminalMixin, LabPanelMixin,
                   Localized, Screen):
    """One lesson, worked step by step against the real engine (each mixin a concern: see the module)."""

    BINDINGS = bindings(*FRONT_KEYS, *LESSON_KEYS)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    typing_delay = 0.03          # "show me" in the terminal: seconds between two keys (TerminalPane)
    typing_quiet = 0.4           # ... and how long the screen stays still before a line is typed
    stage_pace = 1.5             # "show me" of a docker run --explain: seconds each stage stays shown

    # -- what the screen tells the app ------------------------------------------------------
    class OpenMap(Message):
        """The learner wants the course map."""

    class LessonComplete(Message):
        """Every step of the lesson is done."""

        def __init__(self, lesson_id: str) -> None:
            super().__init__()
            self.lesson_id = lesson_id

    def __init__(self, lang: str, course: Course, lesson: Lesson, learner: Learner, lab: LessonLab,
                 machine: Machine, *, step_id: str | None = None,
                 lab_panel: Callable[[str], LabView] | None = None) -> None:
        super().__init__()
        self.lang, self.course, self.lesson, self.learner = lang, course, lesson, learner
        self.lab, self.machine = lab, machine
        self.lab.lang = lang
        ids = [s.id for s in lesson.steps]
        self.index = ids.index(step_id) if step_id in ids else ids.index(learner.first_open_step(lesson)) \
            if lesson.steps else 0
        self._lab_panel = lab_panel or (lambda lang: LabPlaceholder(lang))
        self.cursors: dict[str, int] = {}        # step id -> cursor its checks count from
        self.next_command: dict[str, int] = {}   # step id -> the command Run runs next
        self.busy: str | None = None             # the command running, if any
        self.terminal = None                     # the open TerminalPane, if any
        self.selected: str | None = None         # the container picked in the lab panel
        self.stepper = StepThroughControl()       # a docker run --explain going stage by stage
        self.show_rest: tuple[str, int] | None = None  # (step id, show-me command next) after a terminal
        self.completed_shown = learner.complete(lesson)
        self.revealing: StepView | None = None    # a step whose new results are shown once laid out
        self.hinting: tuple[StepView, int] | None = None  # (step, hints shown): the newest shown once laid out
        # opened at step 1, below the introduction: the first n brings step 1 up rather than skip it
        self.intro_first = self.index == 0
        self._removing: list[tuple[Widget, object]] = []  # (widget, its AwaitRemove): ids not reused before

    # -- composing --------------------------------------------------------------------------
    @property
    def stepping(self):
        """The step-through start under way (:class:`~tui.screens.stepthrough.StepThrough`), or None."""
        return self.stepper.current

    @property
    def step(self) -> Step:
        return self.lesson.steps[self.index]

    def view(self, step_id: str) -> StepView:
        return self.query_one(f"#step-{step_id}", StepView)

    def compose(self) -> ComposeResult:
        done = self.learner.done(self.lesson)
        total = len(self.lesson.steps)
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="lesson-col"):
                with LessonScroll(id="lesson-scroll"):
                    yield Static(id="lesson-title", classes="section", markup=False)
                    yield LessonMarkdown(self.lesson.intro.get(self.lang, ""), id="lesson-intro")
                    for n, step in enumerate(self.lesson.steps, 1):
                        yield StepView(step, n, total, self.lang, done=step.id in done,
                                       unavailable=self.why(step), glossary=self.course.glossary)
                yield OutputLog(id="output")
                yield CommandLine(id="command", compact=True)
            with Vertical(id="side"):
                yield LabPlaceholder(self.lang, id="lab-waiting")
        yield Footer()

    def on_mount(self) -> None:
        self.screen_layout_refresh_signal.subscribe(self, self._laid_out, immediate=True)
        self._render_texts()
        self.query_one("#lesson-scroll").focus()
        self._enter_step(save=True)
        self.call_after_refresh(self._mount_lab_panel)

    def on_resize(self, event) -> None:
        """Narrower than 100 columns, the footer's keys close up: help, language, quit and
        the lesson's keys all fit in 80 (in Chinese too)."""
        self.query_one(Footer).compact = event.size.width < 100

    def _render_texts(self) -> None:
        title = self.lesson.title.get(self.lang, self.lesson.id)
        number = list(self.course.lessons).index(self.lesson) + 1 if self.lesson in self.course.lessons else 1
        self.sub_title = t(self.lang, "lesson.subtitle", number=number, total=len(self.course.lessons), title=title)
        self.query_one("#lesson-title", Static).update(title)
        self.output.border_title = t(self.lang, "output.title")
        self.query_one("#command", Input).placeholder = t(self.lang, "command.placeholder")

    # -- what a step can do here --------------------------------------------------------------
    @property
    def output(self) -> OutputLog:
        return self.query_one("#output", OutputLog)

    def why(self, step: Step) -> str | None:
        """Why ``step`` cannot run on this machine (in the learner's language), or None."""
        if not (step.commands or step.checks or step.setup):
            return None
        if not self.machine.can_run:
            return t(self.lang, "need.root", detail=self.machine.blocker)
        return self.lab.unavailable(step)         # steps may declare `requires`

    def can(self, action: str) -> bool | None:
        if action == "side":
            return self.has_class("-narrow")
        if action == "shell":
            return self.machine.can_run and has_terminal_view()
        if action == "terminal":
            return self.terminal is not None and self.focused is not self.terminal
        if action in ("stage_next", "stage_finish", "stage_stop"):
            return self.stepper.active
        if self.stepping is not None and action in ("run", "check", "show", "reset"):
            return False                          # the start under way first: the footer says how
        if action in ("run", "hint", "show", "reset") and self.lesson.steps:
            step = self.step                      # a key the step has nothing for is not offered (a quiz)
            return bool({"run": step.commands, "hint": step.hints, "show": step.show_me,
                         "reset": step.commands or step.setup}[action])
        return True

    # -- the command line -------------------------------------------------------------------------
    @on(Input.Submitted, "#command")
    def _command_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        line = self.query_one("#command", CommandLine)
        if not text:
            self.action_stage_next()              # (a start under way: its next stage)
            return
        line.remember(text)
        if not self._ready():
            return
        line.value = ""
        self.run_command(text)

    def on_key(self, event) -> None:
        if event.key == "escape" and self.focused is self.query_one("#command"):
            event.stop()
            self.query_one("#lesson-scroll").focus()

    # -- widgets that come and go: an id is not reused before its last widget is gone -----------
    def _discard(self, widget: Widget) -> None:
        """Remove ``widget`` (once); a widget that takes its id later waits until it is gone (:meth:`_gone`)."""
        if any(w is widget for w, _ in self._removing):
            return
        self._removing.append((widget, widget.remove()))

    async def _gone(self, widget_id: str) -> None:
        """Wait until the widgets with ``widget_id`` being removed are gone: a widget id is
        never reused while the old widget is still in the DOM (DuplicateIds)."""
        for widget, removal in [r for r in self._removing if r[0].id == widget_id]:
            await removal
            self._removing = [r for r in self._removing if r[0] is not widget]

    # -- leaving ----------------------------------------------------------------------------------
    def put_to_rest(self) -> None:
        """The learner left the lesson: its terminal is closed and its work stopped."""
        self.close_terminal()
        self.stop_stepping()
        self.app.workers.cancel_node(self)
        self.busy = None

    def on_unmount(self) -> None:
        self.close_terminal()
        self.stop_stepping()

    # -- failures ---------------------------------------------------------------------------------
    def _failure(self, error: BaseException, doing: str) -> str:
        """(Any thread.) ``error`` logged with its traceback in the learner's state dir; one line for the learner."""
        return self.app.failure(error, f"{self.lesson.id}: {doing}")

    def on_worker_state_changed(self, event) -> None:
        """A worker that failed without saying so (a bug): logged, and one line on screen."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.busy = None
            self.notify(self._failure(event.worker.error, event.worker.name or "worker"), severity="error",
                        timeout=15)

    # -- the language -------------------------------------------------------------------------------
    def set_language(self, lang: str) -> None:
        """Every word in ``lang``, in place: the step, the scroll position and what was done stay."""
        self.lang = lang
        self.lab.lang = lang
        self._render_texts()
        self.query_one("#lesson-intro", LessonMarkdown).update(self.lesson.intro.get(lang, ""))
        for step in self.lesson.steps:
            view = self.view(step.id)
            view.set_language(lang)
            view.set_unavailable(self.why(step))
            if view.results and step.checks and step.id in self.cursors and self.why(step) is None:
                self._check(step)                 # check messages, worded anew
        for widget in (self.lab_panel(), *self.query("#lab-waiting"), *self.query("#stages"), self.terminal):
            if widget is not None:
                widget.set_language(lang)
        if self.lesson.steps:
            self.call_after_refresh(self._refocus)
