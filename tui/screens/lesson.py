"""The lesson screen: the lesson on the left, the live lab on the right.

Left: the lesson's text, every step in order with the current one
highlighted and opened (its commands with Run, Check, Hint, Show me, Reset,
its quiz, its check results), then the output of the commands run and the
command line. Right: the lab panel and, while an interactive session is
open, the embedded terminal below it. Narrower than 100 columns only one
side shows at a time; F3 switches.

Everything that talks to the engine -- setting a step up, running a
command, checking, opening a terminal -- runs in a thread worker, which
hands its results back as a message (``StepReady``, ``Output``,
``CommandDone``, ``Checked``, ``TerminalReady``, ``LabFailed``) and never
touches a widget. Cancelling crosses into :mod:`lessons` as the worker's
``cancelled_event``, a plain :class:`threading.Event`.

A ``docker run --explain`` starts one stage at a time (a *step-through
start*, :mod:`lessons.stepwise`): after each stage the worker waits on a
:class:`lessons.stepwise.Gate` while the stage panel above the output shows
what the stage did (in the learner's language, F2 included) and the lab panel
shows the half-built container; Enter or Space opens the gate for the next
stage, f for all the rest, Esc (or leaving the step or the lesson) ends the
start and removes the container.

"Show me" on a step whose command is interactive (``-it``) opens the
embedded terminal and types the step's lines into it where the learner can
see them, at a readable pace (:attr:`LessonScreen.typing_delay` a key): the
terminal and the session behind it are a :class:`tui.widgets.terminal_pane.TerminalPane`,
the step-through start's state and keys a
:class:`tui.screens.stepthrough.StepThroughControl`; what a lab and a lab panel
must offer is in :mod:`tui.contracts`.

The terminal never traps the keys: Ctrl+] leaves it with the session still
open, t (and F3 on a narrow screen, from inside it too) goes back; while a
session is open, a lone q does not quit and x does not reset (each says
why). The lab panel follows what the learner just started (``Follow``:
a run's container, named or not, an exec's). A failure in a worker is
logged with its traceback in the learner's state dir and said in one line
(:mod:`tui.failures`).

Why one file of about 1,100 lines: it is the lesson flow -- one state (the
current step, the command running, each step's check cursor, the open
terminal, the start under way) that every key, button and worker report
reads and changes, and the order in which those happen is the behaviour the
app tests pin down. Split into mixins, that state would be shared across
files without an owner. What has a life of its own is elsewhere: the widgets
(:mod:`tui.screens.parts`), where the lesson pane scrolls to
(:mod:`tui.screens.lesson_scroll`), the terminal and its session
(:mod:`tui.widgets.terminal_pane`), the step-through start
(:mod:`tui.screens.stepthrough`), the lab's and lab panel's contracts
(:mod:`tui.contracts`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from lessons.model import Course, Lesson, Step
from tui.contracts import LabView, LessonLab
from tui.i18n import t
from tui.machine import Machine
from tui.screens.keys import FRONT_KEYS, LESSON_KEYS, Localized, bindings
from tui.screens.lesson_scroll import LessonScroll
from tui.screens.parts import CommandLine, LabPlaceholder, LessonMarkdown, OutputLog, QuizView, StagePanel, StepView
from tui.screens.stepthrough import StageDone, StagesBegan, StepThroughControl, start_stepwise
from tui.session import Learner


def terminal_view():
    """The embedded terminal's widget class (imported when first needed: pyte is not
    cheap), or None where it is not installed -- interactive commands say so instead."""
    try:
        from tui.widgets.terminal_pane import TerminalPane
    except ImportError:
        return None
    return TerminalPane


def has_terminal_view() -> bool:
    from importlib.util import find_spec
    try:
        return find_spec("tui.widgets.terminal") is not None
    except ImportError:
        return False

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


class LessonScreen(Localized, Screen):
    """One lesson, worked step by step against the real engine."""

    BINDINGS = bindings(*FRONT_KEYS, *LESSON_KEYS)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    typing_delay = 0.03          # "show me" in the terminal: seconds between two keys (TerminalPane)
    typing_quiet = 0.4           # ... and how long the screen stays still before a line is typed
    stage_pace = 1.5             # "show me" of a docker run --explain: seconds each stage stays shown

    # -- what the workers report ------------------------------------------------------------
    class StepReady(Message):
        """The step's lab is set up; its checks count events after ``cursor``."""

        def __init__(self, step_id: str, cursor: int, setup: list, reset: bool) -> None:
            super().__init__()
            self.step_id, self.cursor, self.setup, self.reset = step_id, cursor, setup, reset

    class Output(Message):
        """Some output of the command running."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class CommandDone(Message):
        """A command (or the step's "show me") finished; ``ref`` is the container it named."""

        def __init__(self, step_id: str, results: list, ref: str | None = None, check: bool = True) -> None:
            super().__init__()
            self.step_id, self.results, self.ref, self.check = step_id, results, ref, check

    class Checked(Message):
        """The step's checks, evaluated in ``lang``."""

        def __init__(self, step_id: str, results: list, lang: str) -> None:
            super().__init__()
            self.step_id, self.results, self.lang = step_id, results, lang

    class TerminalWanted(Message):
        """A command needs a terminal: open it on a pseudo-terminal in the terminal pane."""

        def __init__(self, step_id: str, command) -> None:
            super().__init__()
            self.step_id, self.command = step_id, command

    class TerminalReady(Message):
        """A pseudo-terminal is open: ``fd`` is its master, ``session`` or ``attached`` its owner;
        ``typing``: lines "show me" types into it, ``then``: the show-me command that follows it."""

        def __init__(self, step_id: str, fd: int, *, session=None, attached=None, title: str = "",
                     typing: tuple[str, ...] = (), then: int | None = None) -> None:
            super().__init__()
            self.step_id, self.fd, self.session, self.attached, self.title = step_id, fd, session, attached, title
            self.typing, self.then = typing, then

    class Follow(Message):
        """A command started (or went into) container ``ref``: the lab panel shows it."""

        def __init__(self, ref: str) -> None:
            super().__init__()
            self.ref = ref

    class LabFailed(Message):
        """The engine could not do something; ``error`` says why."""

        def __init__(self, key: str, error: str) -> None:
            super().__init__()
            self.key, self.error = key, error

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

    def _mount_lab_panel(self) -> None:
        """The lab panel takes its place once the lesson has been drawn: the
        learner reads at once, and the panel fills in a moment later."""
        side = self.query_one("#side")
        if not (side.is_mounted and side.is_attached):
            return                                    # the app quit, or the screen left, before the panel came
        panel = self._lab_panel(self.lang)
        panel.id = "lab"
        panel.show_lesson(self.lesson.id)             # not the containers kept from other lessons
        self.query_one("#lab-waiting").remove()
        side.mount(panel, before=0)

    def lab_panel(self) -> LabView | None:
        """The lab panel, once it is there."""
        found = self.query("#lab")
        return found.first() if found else None

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
        if not self.machine.root:
            return t(self.lang, "need.root", detail=self.machine.detail("root"))
        return self.lab.unavailable(step)         # steps may declare `requires`

    def can(self, action: str) -> bool | None:
        if action == "side":
            return self.has_class("-narrow")
        if action == "shell":
            return self.machine.root and has_terminal_view()
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

    # -- moving between steps ---------------------------------------------------------------------
    def _enter_step(self, *, save: bool) -> None:
        self._drop_closed_terminal()
        self.revealing = None
        for n, step in enumerate(self.lesson.steps):
            self.view(step.id).set_current(n == self.index)
        if not self.lesson.steps:
            return
        step = self.step
        if save:
            self.learner.set_position(self.lesson, step.id)
        view = self.view(step.id)
        self.refresh_bindings()                   # the keys this step has
        self.call_after_refresh(self._scroll_to, view)
        self.call_after_refresh(self._refocus, True)
        if not (step.commands or step.checks or step.quiz) and step.id not in self.learner.done(self.lesson):
            view.set_status("status.reading_last" if step is self.lesson.steps[-1] else "status.reading")
        if step.id not in self.cursors and self.why(step) is None and (step.commands or step.checks or step.setup):
            view.set_status("status.preparing")
            # after the next frame: the engine's work (maybe starting its supervisor) must not
            # take the CPU from drawing the step the learner is about to read
            self.call_after_refresh(self._begin, step)

    def _refocus(self, entering: bool = False) -> None:
        """Focus where the learner works: a quiz's choices, else the lesson (kept when still there)."""
        focused = self.focused
        if not entering and focused is not None and focused.is_attached and focused.display:
            return
        if entering and focused is self.query_one("#command"):
            return
        quiz = self.view(self.step.id).quiz() if self.lesson.steps else None
        if quiz is not None and quiz.is_mounted:
            quiz.choices().focus()
        else:
            self.query_one("#lesson-scroll").focus()

    @property
    def lesson_scroll(self) -> LessonScroll:
        return self.query_one("#lesson-scroll", LessonScroll)

    def _scroll_to(self, view: StepView) -> None:
        self.lesson_scroll.show_step(view, view.number)

    def go(self, index: int) -> None:
        """Make step ``index`` the current one."""
        if not 0 <= index < len(self.lesson.steps) or index == self.index:
            return
        leaving = self.step
        self.intro_first = False
        self.stop_stepping()                                # a half-built container does not follow
        if leaving.quiz is None and not leaving.checks and leaving.id not in self.learner.done(self.lesson):
            self._complete(leaving, show=False)            # a step to read is done once read
        self.index = index
        self._enter_step(save=True)

    def action_next(self) -> None:
        """n: the next step (on a lesson just opened at step 1 under its introduction:
        step 1 first, brought to the top, as it is the current step already)."""
        if self.intro_first and self.lesson.steps:
            self.intro_first = False
            if self.lesson_scroll.bring_up(self.view(self.step.id)):
                return
        self.go(self.index + 1)

    def action_previous(self) -> None:
        """p: the step before."""
        self.go(self.index - 1)

    def action_map(self) -> None:
        """m: the course map."""
        self.post_message(self.OpenMap())

    def action_command(self) -> None:
        """: -- type a command."""
        self.query_one("#command", CommandLine).focus()

    def action_side(self) -> None:
        """F3 (narrow screens): the lesson or the lab -- with an open terminal, the keys go with it."""
        self.toggle_class("-show-side")
        if self.has_class("-show-side") and self.terminal is not None:
            self.terminal.focus()
        elif not self.has_class("-show-side") and self.focused is not None \
                and self.query_one("#side") in self.focused.ancestors_with_self:
            self.query_one("#lesson-scroll").focus()

    def action_terminal(self) -> None:
        """t: back into the open terminal session (Ctrl+] leaves it again)."""
        if self.terminal is None:
            return
        if self.has_class("-narrow"):
            self.add_class("-show-side")
        self.terminal.focus()
        self.refresh_bindings()

    # -- the lab: setting up, running, checking ---------------------------------------------------
    @work(thread=True, exclusive=True, group="begin", exit_on_error=False)
    def _begin(self, step: Step, reset: bool = False) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            if reset:
                cursor, setup = self.lab.reset(step, cancel=cancel)
            else:
                cursor, setup = self.lab.begin_step(step, cancel=cancel)
        except Exception as e:  # noqa: BLE001 - the engine's trouble is the learner's message, not a crash
            self.post_message(self.LabFailed("lab.failed.setup", self._failure(e, "lab.failed.setup")))
            return
        self.post_message(self.StepReady(step.id, cursor, setup, reset))

    def on_lesson_screen_step_ready(self, message: StepReady) -> None:
        self.cursors[message.step_id] = message.cursor
        log = self.output
        for result in message.setup:
            if not result.ok:
                last = result.output.strip().splitlines()[-1] if result.output.strip() else ""
                log.say(t(self.lang, "output.setup_failed", command=result.command, output=last))
        view = self.view(message.step_id)
        if message.reset:
            view.show_results(None)
            log.say(t(self.lang, "output.reset"))
        step = self.lesson.step(message.step_id)
        view.set_status("status.ready" if step.commands and step is self.step else "")

    def on_lesson_screen_lab_failed(self, message: LabFailed) -> None:
        self.busy = None
        self.output.say(t(self.lang, message.key, error=message.error))
        self.view(self.step.id).set_status(message.key, error=message.error)

    def _ready(self) -> bool:
        """Whether the current step can run a command now (else the learner is told why not)."""
        step = self.step
        if (why := self.why(step)) is not None:
            self.notify(why, severity="warning")
            return False
        if self.terminal is not None:
            self.notify(t(self.lang, "busy.terminal"), severity="warning")
            return False
        if self.busy is not None:
            self.notify(t(self.lang, "busy.running", command=self.busy), severity="warning")
            return False
        if step.id not in self.cursors:
            self.notify(t(self.lang, "busy.preparing"), severity="warning")
            return False
        return True

    def action_run(self, index: int | None = None) -> None:
        """r: run the step's next command (a Run button: that command)."""
        step = self.step
        if not step.commands:
            self.notify(t(self.lang, "run.nothing"))
            return
        if not self._ready():
            return
        if index is None:
            index = self.next_command.get(step.id, 0) % len(step.commands)
        self.next_command[step.id] = index + 1
        self.run_command(step.commands[index].text)

    def run_command(self, text: str) -> None:
        """Run one docker-style command the learner gave, for the current step."""
        step = self.step
        self.intro_first = False                  # working on step 1: n goes on
        self.busy = text
        self.output.say(f"$ {text}")
        self.view(step.id).set_status("status.running", command=text)
        self._run(step, text)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _run(self, step: Step, text: str) -> None:
        from lessons.docker import CommandError
        from lessons.runner import plain

        cancel = get_current_worker().cancelled_event
        since = _now()
        try:
            try:
                cmd = self.lab.translate(text, step, "learner")
            except CommandError as e:
                self.post_message(self.Output(f"{e}\n"))
                self.post_message(self.CommandDone(step.id, [], check=False))
                return
            if cmd.terminal and (why := self.lab.taken(cmd)) is not None:
                self.post_message(self.Output(f"{why}\n"))     # another app's container has that --name
                self.post_message(self.CommandDone(step.id, [], check=False))
                return
            if cmd.terminal:
                self.post_message(self.TerminalWanted(step.id, cmd))
                return
            if cmd.explain:
                self._step_through(step, text, cmd, cancel)
                return
            result = self.lab.run(text, step, origin="learner", cancel=cancel,
                                  on_output=lambda s: self.post_message(self.Output(plain(s))))
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        self.post_message(self.CommandDone(step.id, [result], ref=_container_ref(cmd, result)
                                           or self._started_ref(cmd, since)))

    def _started_ref(self, cmd, since: str) -> str | None:
        """(In a worker.) The container ``cmd`` started (the lesson's newest since ``since``:
        a run without --name or -d prints no id) or went into (exec), for the lab panel."""
        if cmd is None:
            return None
        if getattr(cmd, "verb", "") == "exec":
            return _exec_target(cmd)
        if getattr(cmd, "verb", "") != "run":
            return None
        return self._newest_since(since)

    def _newest_since(self, since: str) -> str | None:
        try:
            found = [c for c in self.lab.containers() if (c.get("created") or "") >= since]
        except Exception:  # noqa: BLE001 - only which container the panel shows
            return None
        return max(found, key=lambda c: c.get("created") or "")["id"] if found else None

    def _follow_started(self, cmd, since: str, timeout: float = 5.0) -> None:
        """(In a worker.) The lab panel to the container an interactive command starts, once it
        exists (the command runs on its own pseudo-terminal: its id is nowhere else)."""
        import time

        if cmd.verb == "run" and cmd.name:
            self.post_message(self.Follow(cmd.name))
            return
        deadline = time.monotonic() + timeout
        while (ref := self._started_ref(cmd, since)) is None and cmd.verb == "run" \
                and time.monotonic() < deadline and not get_current_worker().is_cancelled:
            time.sleep(0.1)
        if ref is not None:
            self.post_message(self.Follow(ref))

    def on_lesson_screen_follow(self, message: Follow) -> None:
        if (panel := self.lab_panel()) is not None:
            panel.select(message.ref)

    def _step_through(self, step: Step, text: str, cmd, cancel, *, origin: str = "learner",
                      pace: float | None = None, report: bool = True):
        """(In a worker.) ``docker run --explain``, one stage at a time
        (:func:`tui.screens.stepthrough.start_stepwise`). With ``report`` the
        screen is told the command is done; else its result is returned."""
        from lessons.runner import plain

        result, names = start_stepwise(self.lab, step, text, cmd, cancel, post=self.post_message, origin=origin,
                                       pace=pace, on_output=lambda s: self.post_message(self.Output(plain(s))))
        if not report:
            return result               # show me's CommandDone, at the end, closes the stage panel
        if result.cancelled and names:            # stopped: said by the screen, nothing to check
            self.post_message(self.CommandDone(step.id, [], ref=None, check=False))
        else:
            self.post_message(self.CommandDone(step.id, [result], ref=names[0] if names else None))

    # -- a step-through start (docker run --explain) ------------------------------------------
    async def on_stages_began(self, message: StagesBegan) -> None:
        if message.step_id != self.step.id or not self.is_attached:
            message.gate.stop()                   # the learner has moved on already
            return
        for panel in self.query("#stages"):       # the previous start's panel (show me: one more --explain)
            self._discard(panel)
        await self._gone("stages")
        self.stepper.begin(message)
        panel = StagePanel(self.lang, message.name, id="stages")
        panel.fixed_lang = message.lang
        panel.paced = message.pace
        self.query_one("#lesson-col").mount(panel, before=self.output)
        self.view(message.step_id).set_status("status.stepping")
        focused = self.focused
        if focused is None or focused is self.query_one("#command") or focused.has_class("run"):
            self.query_one("#lesson-scroll").focus()    # Enter and Space are the stage keys now
        self.stepper.show_stage(self.lab_panel(), message.name, None)
        self.refresh_bindings()

    def on_stage_done(self, message: StageDone) -> None:
        stepping = self.stepper.showing(message.step_id)
        if stepping is None:
            return
        panel = self.query_one("#stages", StagePanel)
        panel.show(message.number, message.stage, last=message.stage.get("id") == "exec")
        self.output.say(panel.lines()[0])
        self.stepper.show_stage(self.lab_panel(), stepping.container, message.stage.get("id"))

    def action_stage_next(self) -> None:
        """Enter / Space: the next stage of the start under way."""
        self.stepper.next()

    def action_stage_finish(self) -> None:
        """f: every remaining stage of the start under way."""
        self.stepper.finish()

    def action_stage_stop(self) -> None:
        """Esc: end the start under way; the half-built container is removed."""
        self.stop_stepping()

    def stop_stepping(self) -> None:
        """End a step-through start (the learner stopped it, left the step, the lesson or the app):
        its worker removes the half-built container and reports back."""
        if self.stepper.stop():
            self.refresh_bindings()

    def _end_stepping(self, step_id: str) -> None:
        stepping = self.stepper.end(step_id)
        if stepping is None:
            return
        if stepping.stopped:
            self.output.say(t(self.lang, "output.stopped", name=stepping.container))
        for panel in self.query("#stages"):
            self._discard(panel)
        self.refresh_bindings()

    def action_show(self) -> None:
        """s: show me -- the step done for the learner."""
        step = self.step
        if not step.show_me or not self._ready():
            return
        self.busy = " && ".join(c.text for c in step.show_me)
        self.intro_first = False
        log = self.output
        log.say(t(self.lang, "output.show"))
        for command in step.show_me:
            log.say(f"$ {command.text}" + "".join(f"\n  > {line}" for line in command.type))
        self.view(step.id).set_status("status.showing")
        self._show(step)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _show(self, step: Step, start: int = 0) -> None:
        """Show me from command ``start`` on: an interactive one opens the terminal
        (its lines typed there, visibly: :meth:`tui.widgets.terminal_pane.TerminalPane.type_lines`),
        the others run here."""
        from lessons.runner import TerminalSession, plain

        cancel = get_current_worker().cancelled_event
        on_output = lambda s: self.post_message(self.Output(plain(s)))  # noqa: E731
        since = _now()
        try:
            if start == 0 and not self._show_in_terminal(step) and not self._show_stepwise(step):
                results = self.lab.show_me(step, cancel=cancel, on_output=on_output)
            else:
                results = []
                for index in range(start, len(step.show_me)):
                    if cancel.is_set():
                        break
                    command = step.show_me[index]
                    cmd = _translated(self.lab, command.text, step)
                    if cmd is not None and cmd.explain:
                        results.append(self._step_through(step, command.text, cmd, cancel, origin="show",
                                                          pace=self.stage_pace, report=False))
                        continue
                    if cmd is None or not cmd.terminal:
                        results.append(self.lab.run(command, step, origin="show", cancel=cancel,
                                                    on_output=on_output))
                        continue
                    for notice in cmd.notices:
                        on_output(notice + "\n")
                    session = TerminalSession(cmd.argv)
                    self.post_message(self.TerminalReady(step.id, session.master, session=session,
                                                         title=cmd.source, typing=command.type, then=index + 1))
                    self._follow_started(cmd, since)
                    return
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        self.post_message(self.CommandDone(step.id, results, ref=self._newest_since(since)))

    def _show_stepwise(self, step: Step) -> bool:
        """(In a worker.) Whether show me starts a ``docker run --explain`` of the
        step stage by stage (each shown for ``stage_pace`` seconds)."""
        if self.lab.unavailable(step) is not None:
            return False
        return any(getattr(_translated(self.lab, c.text, step), "explain", False) for c in step.show_me)

    def _show_in_terminal(self, step: Step) -> bool:
        """(In a worker.) Whether show me types into the embedded terminal: a command
        of the step is interactive, the step can run here and the terminal is installed."""
        if not has_terminal_view() or self.lab.unavailable(step) is not None:
            return False
        return any(getattr(_translated(self.lab, c.text, step), "terminal", False) for c in step.show_me)

    def on_lesson_screen_output(self, message: Output) -> None:
        self.output.feed(message.text)

    def on_lesson_screen_command_done(self, message: CommandDone) -> None:
        from lessons.runner import failure_text

        self.busy = None
        log = self.output
        log.flush()
        self._end_stepping(message.step_id)
        for result in message.results:
            if not result.ok and not getattr(result, "skipped", False):
                log.say(f"→ {failure_text(result, self.lang)}")
        if message.ref and (panel := self.lab_panel()) is not None:
            panel.select(message.ref)
        view = self.view(message.step_id)
        view.set_status("")
        step = self.lesson.step(message.step_id)
        if message.check and step.checks and message.step_id == self.step.id:
            self._check(step, wait=3.0)

    def action_check(self) -> None:
        """c: check the step (or answer its quiz)."""
        step = self.step
        self.intro_first = False
        view = self.view(step.id)
        if step.quiz is not None:
            quiz = view.quiz()
            selected = quiz.selected() if quiz is not None else frozenset()
            view.show_answer(selected)
            self.call_after_refresh(self._refocus, True)
            self.learner.record_step(self.lesson, step.id, quiz=sorted(selected))
            if step.quiz.grade(selected):
                self._complete(step)
            return
        if not step.checks:
            self._complete(step)
            return
        if (why := self.why(step)) is not None:
            self._complete(step, skipped=True)
            view.set_status("status.skipped", why=why)
            return
        if step.id not in self.cursors:
            self.notify(t(self.lang, "busy.preparing"), severity="warning")
            return
        self._check(step)

    def _check(self, step: Step, wait: float = 0.0) -> None:
        self.view(step.id).set_status("status.checking")
        self._run_checks(step, self.cursors[step.id], self.lang, wait)

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def _run_checks(self, step: Step, cursor: int, lang: str, wait: float) -> None:
        worker = get_current_worker()
        try:
            results = self.lab.check(step, cursor, wait=wait, cancel=worker.cancelled_event)
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.check", self._failure(e, "lab.failed.check")))
            return
        if not worker.is_cancelled:               # a newer check replaced this one
            self.post_message(self.Checked(step.id, results, lang))

    def on_lesson_screen_checked(self, message: Checked) -> None:
        step = self.lesson.step(message.step_id)
        view = self.view(step.id)
        view.show_results(message.results)
        if step.id == self.step.id:
            self.revealing = view                 # once the results are laid out: _laid_out
            self.call_after_refresh(self._laid_out, self)
        if message.lang != self.lang and step.id == self.step.id:
            self._check(step)                      # worded in the language before a switch: again
            return
        if message.results and all(r.passed for r in message.results):
            self._complete(step, checks=[r.kind for r in message.results],
                           skipped=any(getattr(r, "skipped", False) for r in message.results))
        else:
            view.set_status("status.not_yet")

    def _complete(self, step: Step, *, checks=None, skipped: bool = False, show: bool = True) -> None:
        """Record ``step`` as done, and celebrate the lesson once every step is."""
        view = self.view(step.id)
        fields = {"done": True}
        if checks is not None:
            fields["checks"] = checks
        if skipped:
            fields["skipped"] = True
        if step.id not in self.learner.done(self.lesson) or checks is not None:
            self.learner.record_step(self.lesson, step.id, **fields)
        view.set_done(True)
        if show:
            view.set_status("status.done" if step is not self.lesson.steps[-1] else "status.done_last")
        if self.learner.complete(self.lesson) and not self.completed_shown:
            self.completed_shown = True
            self.post_message(self.LessonComplete(self.lesson.id))

    def action_hint(self) -> None:
        """h: one more hint."""
        step = self.step
        view = self.view(step.id)
        if not step.hints:
            self.notify(t(self.lang, "hint.none"))
            return
        if view.hints_shown >= len(step.hints):
            self.notify(t(self.lang, "hint.last"))
            return
        view.show_hints(view.hints_shown + 1)
        self.learner.record_step(self.lesson, step.id, hints=view.hints_shown)
        self.hinting = (view, view.hints_shown)   # scrolled into view once laid out: _laid_out
        self.call_after_refresh(self._laid_out, self)

    def _laid_out(self, _screen=None) -> None:
        """After a layout: new check results waiting to be shown are, once their
        box has its new height (a refresh alone does not mean the layout is done); so is a
        new hint (its step's work area is composed anew: the hint is there once laid out)."""
        if self.hinting is not None:
            self._reveal_hint()
        view = self.revealing
        if view is None:
            return
        work = view.work() if view.is_attached else None
        if work is None or not work.query(".results"):
            self.revealing = None
            return
        box = work.query_one(".results", Static)
        if not box.display or not LessonScroll.laid_out(box, self.app.size):
            return                                # not laid out yet: the next layout
        self.revealing = None
        self._show_results(view)

    def _show_results(self, view: StepView) -> None:
        """Bring the check results into view: the step from its heading when heading to
        results fit in the lesson pane, else the results (and the step's navigation just
        below them) at the bottom of the pane. The position is set outright, so it does
        not depend on where the pane was scrolled before."""
        work = view.work()
        if work is None or not work.query(".results") or not view.is_mounted:
            return
        self.lesson_scroll.show_results(view.query_one(".step-title"), work.query_one(".results"),
                                 work.query(".step-nav, .results").last())

    def _reveal_hint(self) -> None:
        view, count = self.hinting
        hints = view.query(".hint-text") if view.is_attached else []
        if len(hints) != count:
            if not view.is_attached or view.hints_shown != count:
                self.hinting = None               # gone, or another hint asked for since
            return                                # not composed yet: the next layout
        last = hints.last()
        if not LessonScroll.laid_out(last, self.app.size):
            return
        self.hinting = None
        self._refocus()
        self.lesson_scroll.show_whole(last)

    def action_reset(self) -> None:
        """x: reset the step -- the lesson's containers removed, its starting state made again
        (never while a terminal session is open: the learner is told how to get back to it)."""
        step = self.step
        if self.why(step) is not None or self.busy is not None or self.terminal is not None:
            self._ready()
            return
        self.cursors.pop(step.id, None)
        self.next_command.pop(step.id, None)
        self.view(step.id).set_status("status.resetting")
        self._begin(step, reset=True)

    def on_quiz_view_shown(self, message: QuizView.Shown) -> None:
        message.stop()
        focused = self.focused
        if focused is None or not focused.is_attached or focused is self.query_one("#lesson-scroll"):
            self.call_after_refresh(self._refocus, True)

    def on_step_view_pressed(self, message: StepView.Pressed) -> None:
        """A step's button: the same as its key."""
        message.stop()
        if message.step_id != self.step.id:
            return
        if message.action == "run":
            self.action_run(message.index)
        else:
            getattr(self, f"action_{message.action}")()

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

    # -- the terminal -----------------------------------------------------------------------------
    def on_lesson_screen_terminal_wanted(self, message: TerminalWanted) -> None:
        if not has_terminal_view():
            self.busy = None
            self.output.say(t(self.lang, "terminal.missing"))
            self.view(message.step_id).set_status("terminal.missing")
            return
        self._open_session(message.step_id, message.command)

    @work(thread=True, group="terminal", exit_on_error=False)
    def _open_session(self, step_id: str, command) -> None:
        from lessons.runner import TerminalSession

        since = _now()
        try:
            session = TerminalSession(command.argv)
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        for notice in command.notices:
            self.post_message(self.Output(notice + "\n"))
        self.post_message(self.TerminalReady(step_id, session.master, session=session, title=command.source))
        self._follow_started(command, since)

    def action_shell(self) -> None:
        """o: a shell in the container picked in the lab panel (or the lesson's newest running one)."""
        if not has_terminal_view() or self.terminal is not None or not self.machine.root:
            if self.terminal is not None:
                self.notify(t(self.lang, "busy.terminal"), severity="warning")
            return
        self._open_shell(self.step.id, self.selected)

    @work(thread=True, group="terminal", exit_on_error=False)
    def _open_shell(self, step_id: str, ref: str | None) -> None:
        try:
            if ref is None:
                running = [c for c in self.lab.containers() if c.get("status") == "running"]
                if not running:
                    self.post_message(self.LabFailed("shell.none", ""))
                    return
                ref = running[0]["name"]
            from engine.client import Client
            attached = Client().exec(ref, ["sh"], tty=True, interactive=True)
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.shell", self._failure(e, "lab.failed.shell")))
            return
        self.post_message(self.TerminalReady(step_id, attached.pty, attached=attached, title=f"{ref}: sh"))

    async def on_lesson_screen_terminal_ready(self, message: TerminalReady) -> None:
        self._drop_closed_terminal()
        await self._gone("terminal")              # the last session's screen, gone before its id is reused
        view = terminal_view()(message.fd, step_id=message.step_id, session=message.session,
                               attached=message.attached, lang=self.lang, id="terminal")
        view.typing_delay, view.typing_quiet = self.typing_delay, self.typing_quiet
        self.terminal = view
        self.query_one("#side").mount(view)
        self.add_class("-terminal")
        if self.has_class("-narrow"):
            self.add_class("-show-side")
        view.focus()
        if message.then is not None:
            self.show_rest = (message.step_id, message.then)
        view.type_lines(message.typing)

    def on_terminal_view_release_focus(self, event) -> None:
        """Ctrl+]: back to the lesson; the session stays open."""
        event.stop()
        self.remove_class("-show-side")
        self.query_one("#lesson-scroll").focus()
        self.refresh_bindings()                   # t (back to the terminal) in the footer

    def on_terminal_view_closed(self, event) -> None:
        """The session ended: its last screen stays in view until the next one (or the next step)."""
        event.stop()
        if self.terminal is None:
            return
        view, step_id = self.terminal, self.terminal.step_id
        self.terminal = None
        self.busy = None
        self.refresh_bindings()                   # t (back to the terminal) goes from the footer
        code = view.ended(event.exit_code)
        if self.focused is view:
            self.query_one("#lesson-scroll").focus()
        if code is not None:
            self.output.say(t(self.lang, "terminal.closed", code=code))
        step = self.lesson.step(step_id)
        rest, self.show_rest = self.show_rest, None
        if rest is not None and rest[0] == step_id and rest[1] < len(step.show_me) and step_id == self.step.id:
            self.busy = " && ".join(c.text for c in step.show_me[rest[1]:])
            self._show(step, rest[1])             # show me goes on after its terminal
            return
        if step_id == self.step.id:
            self.view(step_id).set_status("")
            if step.checks and step_id in self.cursors:
                self._check(step, wait=3.0)

    def _drop_closed_terminal(self) -> None:
        if self.terminal is None:
            for view in self.query("#terminal"):
                self._discard(view)
            self.remove_class("-terminal")
            self.remove_class("-show-side")

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

    def close_terminal(self) -> None:
        """End an open terminal session (leaving the lesson, quitting): the widget,
        which owns the pty, goes -- hanging the session up -- and its program is waited for."""
        self.show_rest = None
        if self.terminal is None:
            return
        view = self.terminal
        self.terminal = None
        self._discard(view)
        view.hang_up()

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

    # -- the lab panel ------------------------------------------------------------------------
    def on_lab_panel_container_selected(self, event) -> None:
        self.selected = getattr(event, "name", None) or getattr(event, "container_id", None) or self.selected

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


def _translated(lab, text: str, step: Step):
    """``text`` as the engine command show me runs (None if it does not translate)."""
    from lessons.docker import CommandError

    try:
        return lab.translate(text, step, "show")
    except CommandError:
        return None


def _now() -> str:
    """Now, as the engine writes a container's ``created``."""
    from tui.session import _now as now
    return now()


EXEC_VALUED = {"-u", "--user", "-e", "--env", "-w", "--workdir"}


def _exec_target(cmd) -> str | None:
    """The container a translated ``exec`` goes into: its first word that is not an option."""
    words = list(getattr(cmd, "argv", ())[1:])
    while words:
        word = words.pop(0)
        if word in EXEC_VALUED:
            words = words[1:]
        elif not word.startswith("-"):
            return word
    return None


def _container_ref(cmd, result) -> str | None:
    """The container a command made, to select in the lab panel: its --name,
    or the id ``run -d`` printed."""
    if getattr(cmd, "verb", "") != "run":
        return None
    if cmd.name:
        return cmd.name
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return lines[-1] if lines and CONTAINER_ID.match(lines[-1]) else None
