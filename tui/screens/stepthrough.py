"""A step-through start on the lesson screen: ``docker run --explain``, one stage at a time.

The start runs in the lesson screen's thread worker (:func:`start_stepwise`):
after each stage it waits on a :class:`lessons.stepwise.Gate` and tells the
screen, by message, what happened -- :class:`StagesBegan` once the container
exists (half-built), :class:`StageDone` after each stage. The screen keeps
one :class:`StepThroughControl` and hands it down what the learner does
(Enter or Space: the next stage; f: all the rest; Esc, or leaving the step,
the lesson or the app: the start ends and the container is removed); the
control opens or stops the gate, and keeps what the screen shows about the
start under way (:class:`StepThrough`); the lab panel is told which
container and tab to show (:meth:`StepThroughControl.show_stage`).

:class:`StepThroughMixin`, a part of :class:`tui.screens.lesson.LessonScreen`,
is the screen's side: the worker's start (:meth:`StepThroughMixin._step_through`,
for a command typed or run and for show me), the stage panel above the output
drawn and removed, the stage keys, and a start ended when the learner moves
on. Of the screen's state it changes ``stepper``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from tui.i18n import t
from tui.screens.lesson_messages import CommandDone, Output
from tui.screens.parts import StagePanel

if TYPE_CHECKING:
    from lessons.model import Step
    from tui.contracts import LabView, LessonLab

# Where a stage of a container's start shows in the lab panel (a stage not here, tty,
# leaves the tab as it is). seccomp and capabilities restrict the process about to
# become the container's command; no tab lists filters or capabilities, so the panel
# shows that process.
STAGE_TABS = {
    "limits": "resources", "cgroup": "resources", "fork": "processes", "exec": "processes",
    "seccomp": "processes", "capabilities": "processes",
    "namespaces": "namespaces", "cgroupns": "namespaces", "hostname": "namespaces", "user": "namespaces",
    "propagation": "mounts", "rootfs": "mounts", "proc": "mounts", "dev": "mounts", "sys": "mounts",
    "pivot_root": "mounts",
}


class StagesBegan(Message):
    """A step-through start has made its container (``name``), half-built."""

    def __init__(self, step_id: str, gate, name: str, lang: str | None, pace: float | None = None) -> None:
        super().__init__()
        self.step_id, self.gate, self.name, self.lang, self.pace = step_id, gate, name, lang, pace


class StageDone(Message):
    """Stage ``number`` of a step-through start is done; the worker waits for the learner."""

    def __init__(self, step_id: str, number: int, stage: dict, paused: bool) -> None:
        super().__init__()
        self.step_id, self.number, self.stage, self.paused = step_id, number, stage, paused


@dataclass
class StepThrough:
    """A step-through start under way: the gate the worker waits on, and what it is starting."""

    step_id: str
    gate: object                 # lessons.stepwise.Gate
    container: str = ""          # its name, once it exists
    lang: str | None = None      # run --explain --lang: the explanations always in that language
    stopped: bool = False


def start_stepwise(lab: LessonLab, step, text: str, cmd, cancel, *, post: Callable[[Message], object],
                   origin: str = "learner", pace: float | None = None,
                   on_output: Callable[[str], None] | None = None):
    """(In a worker.) Start ``text`` (translated: ``cmd``) one stage at a time, each
    reported with ``post``; then the wait for the learner's key -- or, for show me,
    ``pace`` seconds, keys still working. Returns (its result, the names of the
    containers it began)."""
    from lessons.stepwise import Gate

    gate, names = Gate(pace), []

    def began(_cid: str, name: str) -> None:
        names.append(name)
        post(StagesBegan(step.id, gate, name, cmd.explain_lang, pace))

    result = lab.run_explained(
        text, step, gate=gate, origin=origin, cancel=cancel, on_begin=began,
        on_stage=lambda number, stage, paused: post(StageDone(step.id, number, stage, paused)),
        on_output=on_output)
    return result, names


class StepThroughControl:
    """The step-through start under way on a lesson screen (at most one), and the learner's keys for it."""

    def __init__(self) -> None:
        self.current: StepThrough | None = None

    @property
    def active(self) -> bool:
        """A start is under way and not being stopped: its keys are offered."""
        return self.current is not None and not self.current.stopped

    def begin(self, message: StagesBegan) -> StepThrough:
        self.current = StepThrough(message.step_id, message.gate, message.name, message.lang)
        return self.current

    def showing(self, step_id: str) -> StepThrough | None:
        """The start under way for ``step_id``, if it is not being stopped."""
        current = self.current
        if current is None or current.step_id != step_id or current.stopped:
            return None
        return current

    def next(self) -> None:
        """The next stage."""
        if self.current is not None:
            self.current.gate.next()

    def finish(self) -> None:
        """Every remaining stage."""
        if self.current is not None:
            self.current.gate.finish()

    def stop(self) -> bool:
        """End the start (its worker removes the half-built container); False if none was under way."""
        if self.current is None or self.current.stopped:
            return False
        self.current.stopped = True
        self.current.gate.stop()
        return True

    def end(self, step_id: str) -> StepThrough | None:
        """The start of ``step_id`` has reported back: it is over (returned), or None."""
        current = self.current
        if current is None or current.step_id != step_id:
            return None
        self.current = None
        return current

    @staticmethod
    def show_stage(panel: LabView | None, name: str, stage_id: str | None) -> None:
        """The lab panel on the container being built, at the tab where the stage shows."""
        if panel is None:
            return
        panel.select(name)                        # (and refreshed now, not at the next tick)
        tab = STAGE_TABS.get(stage_id or "")
        if tab is not None:
            panel.show_tab(tab)


class StepThroughMixin:
    """The lesson screen's side of a step-through start: the worker's part, the stage panel, the keys."""

    def _step_through(self, step: Step, text: str, cmd, cancel, *, origin: str = "learner",
                      pace: float | None = None, report: bool = True):
        """(In a worker.) ``docker run --explain``, one stage at a time
        (:func:`start_stepwise`). With ``report`` the
        screen is told the command is done; else its result is returned."""
        from lessons.runner import plain

        result, names = start_stepwise(self.lab, step, text, cmd, cancel, post=self.post_message, origin=origin,
                                       pace=pace, on_output=lambda s: self.post_message(Output(plain(s))))
        if not report:
            return result               # show me's CommandDone, at the end, closes the stage panel
        if result.cancelled and names:            # stopped: said by the screen, nothing to check
            self.post_message(CommandDone(step.id, [], ref=None, check=False))
        else:
            self.post_message(CommandDone(step.id, [result], ref=names[0] if names else None))

    # -- what the worker reports -----------------------------------------------------------------
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
