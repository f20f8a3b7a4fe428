"""Working a step against the engine: its lab set up, its commands run, show me.

:class:`RunMixin`, a part of :class:`tui.screens.lesson.LessonScreen`: a
step's lab set up when the step is entered (and again on x, reset), r and a
Run button, a command typed on the command line, and s (show me): each in a
thread worker that reports by message (:mod:`tui.screens.lesson_messages`).
A ``docker run --explain`` goes stage by stage
(:class:`tui.screens.stepthrough.StepThroughMixin`), an interactive command
to the embedded terminal (:mod:`tui.screens.lesson_terminal`); once a command
is done, the step is checked (:mod:`tui.screens.lesson_checks`).

Of the screen's state it changes ``cursors`` (set when a step's lab is
ready), ``next_command``, ``busy`` and ``intro_first``.
"""

from __future__ import annotations

from textual import work
from textual.worker import get_current_worker

from lessons.model import Step
from tui.i18n import t
from tui.screens.lesson_lab_panel import container_ref, created_now
from tui.screens.lesson_messages import CommandDone, LabFailed, Output, StepReady, TerminalReady, TerminalWanted
from tui.screens.lesson_terminal import has_terminal_view


class RunMixin:
    """The lesson screen's engine work for a step: setup, Run, show me."""

    # -- a step's lab, set up (and reset) ---------------------------------------------------------
    @work(thread=True, exclusive=True, group="begin", exit_on_error=False)
    def _begin(self, step: Step, reset: bool = False) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            if reset:
                cursor, setup = self.lab.reset(step, cancel=cancel)
            else:
                cursor, setup = self.lab.begin_step(step, cancel=cancel)
        except Exception as e:  # noqa: BLE001 - the engine's trouble is the learner's message, not a crash
            self.post_message(LabFailed("lab.failed.setup", self._failure(e, "lab.failed.setup")))
            return
        self.post_message(StepReady(step.id, cursor, setup, reset))

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

    # -- running a command ---------------------------------------------------------------------------
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
        since = created_now()
        try:
            try:
                cmd = self.lab.translate(text, step, "learner")
            except CommandError as e:
                self.post_message(Output(f"{e}\n"))
                self.post_message(CommandDone(step.id, [], check=False))
                return
            if cmd.terminal and (why := self.lab.taken(cmd)) is not None:
                self.post_message(Output(f"{why}\n"))     # another app's container has that --name
                self.post_message(CommandDone(step.id, [], check=False))
                return
            if cmd.terminal:
                self.post_message(TerminalWanted(step.id, cmd))
                return
            if cmd.explain:
                self._step_through(step, text, cmd, cancel)
                return
            result = self.lab.run(text, step, origin="learner", cancel=cancel,
                                  on_output=lambda s: self.post_message(Output(plain(s))))
        except Exception as e:  # noqa: BLE001
            self.post_message(LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        self.post_message(CommandDone(step.id, [result], ref=container_ref(cmd, result)
                                      or self._started_ref(cmd, since)))

    # -- show me ---------------------------------------------------------------------------------------
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
        on_output = lambda s: self.post_message(Output(plain(s)))  # noqa: E731
        since = created_now()
        try:
            if start == 0 and not self._show_in_terminal(step) and not self._show_stepwise(step):
                results = self.lab.show_me(step, cancel=cancel, on_output=on_output)
            else:
                if start == 0:
                    self.lab.clear_leftovers(step)       # as Lab.show_me: a second try starts afresh
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
                    getattr(self.lab, "said", lambda _cmd: None)(cmd)     # once per lesson
                    session = TerminalSession(cmd.argv, cwd=cmd.cwd)
                    self.post_message(TerminalReady(step.id, session.master, session=session,
                                                    title=cmd.source, typing=command.type, then=index + 1))
                    self._follow_started(cmd, since)
                    return
        except Exception as e:  # noqa: BLE001
            self.post_message(LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        self.post_message(CommandDone(step.id, results, ref=self._newest_since(since)))

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

    # -- what a running command reports -----------------------------------------------------------
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


def _translated(lab, text: str, step: Step):
    """``text`` as the engine command show me runs (None if it does not translate)."""
    from lessons.docker import CommandError

    try:
        return lab.translate(text, step, "show")
    except CommandError:
        return None
