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
"""

from __future__ import annotations

import re
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from lessons.model import Course, Lesson, Step
from tui.i18n import t
from tui.machine import Machine
from tui.screens.keys import FRONT_KEYS, LESSON_KEYS, Localized, bindings
from tui.screens.parts import CommandLine, LabPlaceholder, LessonMarkdown, OutputLog, QuizView, StepView
from tui.session import Learner

def terminal_view():
    """The embedded terminal's widget class (imported when first needed: pyte is not
    cheap), or None where it is not installed -- interactive commands say so instead."""
    try:
        from tui.widgets.terminal import TerminalView
    except ImportError:
        return None
    return TerminalView


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
        """A pseudo-terminal is open: ``fd`` is its master, ``session`` or ``attached`` its owner."""

        def __init__(self, step_id: str, fd: int, *, session=None, attached=None, title: str = "") -> None:
            super().__init__()
            self.step_id, self.fd, self.session, self.attached, self.title = step_id, fd, session, attached, title

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

    def __init__(self, lang: str, course: Course, lesson: Lesson, learner: Learner, lab, machine: Machine, *,
                 step_id: str | None = None, lab_panel: Callable[[str], Widget] | None = None) -> None:
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
        self.terminal = None                     # (TerminalView, session, attached, step id)
        self.selected: str | None = None         # the container picked in the lab panel
        self.completed_shown = learner.complete(lesson)

    # -- composing --------------------------------------------------------------------------
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
                with VerticalScroll(id="lesson-scroll"):
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
        self._render_texts()
        self.query_one("#lesson-scroll").focus()
        self._enter_step(save=True)
        self.call_after_refresh(self._mount_lab_panel)

    def _mount_lab_panel(self) -> None:
        """The lab panel takes its place once the lesson has been drawn: the
        learner reads at once, and the panel fills in a moment later."""
        panel = self._lab_panel(self.lang)
        panel.id = "lab"
        self.query_one("#lab-waiting").remove()
        self.query_one("#side").mount(panel, before=0)

    def lab_panel(self) -> Widget | None:
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
        unavailable = getattr(self.lab, "unavailable", None)       # steps may declare `requires`
        return unavailable(step) if unavailable is not None else None

    def can(self, action: str) -> bool | None:
        if action == "side":
            return self.has_class("-narrow")
        if action == "shell":
            return self.machine.root and has_terminal_view()
        return True

    # -- moving between steps ---------------------------------------------------------------------
    def _enter_step(self, *, save: bool) -> None:
        self._drop_closed_terminal()
        for n, step in enumerate(self.lesson.steps):
            self.view(step.id).set_current(n == self.index)
        if not self.lesson.steps:
            return
        step = self.step
        if save:
            self.learner.set_position(self.lesson, step.id)
        view = self.view(step.id)
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

    def _scroll_to(self, view: StepView) -> None:
        scroll = self.query_one("#lesson-scroll", VerticalScroll)
        if view.number == 1:
            scroll.scroll_home(animate=False)          # the lesson's title and introduction too
        else:
            scroll.scroll_to_widget(view, top=True, animate=False)

    def go(self, index: int) -> None:
        """Make step ``index`` the current one."""
        if not 0 <= index < len(self.lesson.steps) or index == self.index:
            return
        leaving = self.step
        if leaving.quiz is None and not leaving.checks and leaving.id not in self.learner.done(self.lesson):
            self._complete(leaving, show=False)            # a step to read is done once read
        self.index = index
        self._enter_step(save=True)

    def action_next(self) -> None:
        """n: the next step."""
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
        """F3 (narrow screens): the lesson or the lab."""
        self.toggle_class("-show-side")

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
            self.post_message(self.LabFailed("lab.failed.setup", _error(e)))
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
        self.busy = text
        self.output.say(f"$ {text}")
        self.view(step.id).set_status("status.running", command=text)
        self._run(step, text)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _run(self, step: Step, text: str) -> None:
        from lessons.docker import CommandError
        from lessons.runner import plain

        cancel = get_current_worker().cancelled_event
        try:
            try:
                cmd = self.lab.translate(text, step, "learner")
            except CommandError as e:
                self.post_message(self.Output(f"{e}\n"))
                self.post_message(self.CommandDone(step.id, [], check=False))
                return
            if cmd.terminal:
                self.post_message(self.TerminalWanted(step.id, cmd))
                return
            result = self.lab.run(text, step, origin="learner", cancel=cancel,
                                  on_output=lambda s: self.post_message(self.Output(plain(s))))
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", _error(e)))
            return
        self.post_message(self.CommandDone(step.id, [result], ref=_container_ref(cmd, result)))

    def action_show(self) -> None:
        """s: show me -- the step done for the learner."""
        step = self.step
        if not step.show_me or not self._ready():
            return
        self.busy = " && ".join(c.text for c in step.show_me)
        log = self.output
        log.say(t(self.lang, "output.show"))
        for command in step.show_me:
            log.say(f"$ {command.text}" + "".join(f"\n  > {line}" for line in command.type))
        self.view(step.id).set_status("status.showing")
        self._show(step)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _show(self, step: Step) -> None:
        from lessons.runner import plain

        cancel = get_current_worker().cancelled_event
        try:
            results = self.lab.show_me(step, cancel=cancel,
                                       on_output=lambda s: self.post_message(self.Output(plain(s))))
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", _error(e)))
            return
        self.post_message(self.CommandDone(step.id, results))

    def on_lesson_screen_output(self, message: Output) -> None:
        self.output.feed(message.text)

    def on_lesson_screen_command_done(self, message: CommandDone) -> None:
        from lessons.runner import failure_text

        self.busy = None
        log = self.output
        log.flush()
        for result in message.results:
            if not result.ok and not getattr(result, "skipped", False):
                log.say(f"→ {failure_text(result, self.lang)}")
        if message.ref and hasattr(panel := self.lab_panel(), "select"):
            panel.select(message.ref)
        view = self.view(message.step_id)
        view.set_status("")
        step = self.lesson.step(message.step_id)
        if message.check and step.checks and message.step_id == self.step.id:
            self._check(step, wait=3.0)

    def action_check(self) -> None:
        """c: check the step (or answer its quiz)."""
        step = self.step
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
            self.post_message(self.LabFailed("lab.failed.check", _error(e)))
            return
        if not worker.is_cancelled:               # a newer check replaced this one
            self.post_message(self.Checked(step.id, results, lang))

    def on_lesson_screen_checked(self, message: Checked) -> None:
        step = self.lesson.step(message.step_id)
        view = self.view(step.id)
        view.show_results(message.results)
        if step.id == self.step.id:
            self.call_after_refresh(self._show_results, view)
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
        self.call_after_refresh(self._show_hints, view)

    def _show_results(self, view: StepView) -> None:
        """Bring the check results into view (the step's navigation just below them too)."""
        if (work := view.work()) is not None and work.query(".step-nav, .results"):
            work.query(".step-nav, .results").last().scroll_visible(animate=False)

    def _show_hints(self, view: StepView) -> None:
        self._refocus()
        if hints := view.query(".hint-text"):
            hints.last().scroll_visible(animate=False)

    def action_reset(self) -> None:
        """x: reset the step -- the lesson's containers removed, its starting state made again."""
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

        try:
            session = TerminalSession(command.argv)
        except Exception as e:  # noqa: BLE001
            self.post_message(self.LabFailed("lab.failed.run", _error(e)))
            return
        for notice in command.notices:
            self.post_message(self.Output(notice + "\n"))
        self.post_message(self.TerminalReady(step_id, session.master, session=session, title=command.source))

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
            self.post_message(self.LabFailed("lab.failed.shell", _error(e)))
            return
        self.post_message(self.TerminalReady(step_id, attached.pty, attached=attached, title=f"{ref}: sh"))

    def on_lesson_screen_terminal_ready(self, message: TerminalReady) -> None:
        self._drop_closed_terminal()
        view = terminal_view()(message.fd, attached=message.attached, lang=self.lang, id="terminal")
        self.terminal = (view, message.session, message.attached, message.step_id)
        self.query_one("#side").mount(view)
        self.add_class("-terminal")
        if self.has_class("-narrow"):
            self.add_class("-show-side")
        view.focus()

    def on_terminal_view_release_focus(self, event) -> None:
        """Ctrl+]: back to the lesson; the session stays open."""
        event.stop()
        self.remove_class("-show-side")
        self.query_one("#lesson-scroll").focus()

    def on_terminal_view_closed(self, event) -> None:
        """The session ended: its last screen stays in view until the next one (or the next step)."""
        event.stop()
        if self.terminal is None:
            return
        view, session, _attached, step_id = self.terminal
        self.terminal = None
        self.busy = None
        code = event.exit_code
        if session is not None:
            code = _end_session(session)
        if self.focused is view:
            self.query_one("#lesson-scroll").focus()
        if code is not None:
            self.output.say(t(self.lang, "terminal.closed", code=code))
        step = self.lesson.step(step_id)
        if step_id == self.step.id:
            self.view(step_id).set_status("")
            if step.checks and step_id in self.cursors:
                self._check(step, wait=3.0)

    def _drop_closed_terminal(self) -> None:
        if self.terminal is None:
            for view in self.query("#terminal"):
                view.remove()
            self.remove_class("-terminal")
            self.remove_class("-show-side")

    def close_terminal(self) -> None:
        """End an open terminal session (leaving the lesson, quitting): the widget,
        which owns the pty, goes -- hanging the session up -- and its program is waited for."""
        if self.terminal is None:
            return
        view, session, attached, _ = self.terminal
        self.terminal = None
        view.remove()
        if session is not None:
            _end_session(session)
        if attached is not None:
            try:
                attached.close()
            except OSError:
                pass

    def put_to_rest(self) -> None:
        """The learner left the lesson: its terminal is closed and its work stopped."""
        self.close_terminal()
        self.app.workers.cancel_node(self)
        self.busy = None

    def on_unmount(self) -> None:
        self.close_terminal()

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
        for widget in (self.lab_panel(), *self.query("#lab-waiting"), self.terminal[0] if self.terminal else None):
            if widget is not None and hasattr(widget, "set_language"):
                widget.set_language(lang)
        if self.lesson.steps:
            self.call_after_refresh(self._refocus)


def _error(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _container_ref(cmd, result) -> str | None:
    """The container a command made, to select in the lab panel: its --name,
    or the id ``run -d`` printed."""
    if getattr(cmd, "verb", "") != "run":
        return None
    if cmd.name:
        return cmd.name
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return lines[-1] if lines and CONTAINER_ID.match(lines[-1]) else None


def _end_session(session) -> int | None:
    """The exit code of a terminal session's program (``container-lab run -it``),
    once it ends; killed if it will not. Its pty is the TerminalView's to close."""
    try:
        return session.proc.wait(timeout=5)
    except Exception:  # noqa: BLE001 - hung up but still there
        session.proc.kill()
        return session.proc.wait()
