"""What the lesson screen needs of the objects it is handed, as protocols.

- :class:`LessonLab`: a lesson's lab -- :class:`lessons.lab.Lab` (through
  :class:`tui.session.LazyLab`), or the tests' ``StubLab`` that needs no
  engine. Every method but ``unavailable`` is called on a worker thread.
- :class:`LabView`: the widget on the right, above the terminal -- the live
  :class:`tui.widgets.lab.LabPanel`, or the :class:`~tui.screens.parts.LabPlaceholder`
  the screenshots use (which shows no container and so ignores the rest).
- :class:`Translatable`: a screen or widget that F2 words anew, in place.

The lab panel's data sources have theirs beside them
(:class:`tui.widgets.sources.LabSource`). The protocols are checked with
``isinstance`` in the tests (``runtime_checkable``), so that a stub and the
real class cannot drift apart. No Textual here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import threading

    from lessons.checks import Result
    from lessons.docker import EngineCommand
    from lessons.model import Command, Step
    from lessons.runner import RunResult


@runtime_checkable
class LessonLab(Protocol):
    """One lesson's lab: sets steps up, runs the learner's commands, checks."""

    lang: str                    # the learner's language: messages and check results are worded in it

    def unavailable(self, step: Step) -> str | None:
        """Why ``step`` cannot run on this machine, or None (asked on the app's loop: cheap)."""

    def begin_step(self, step: Step, *, cancel: threading.Event | None = None) -> tuple[int, list[RunResult]]:
        """The step's starting state made: (the event cursor its checks count from, the setup's results)."""

    def reset(self, step: Step | None = None, *,
              cancel: threading.Event | None = None) -> tuple[int, list[RunResult]]:
        """The lesson's containers removed and the step set up again (as :meth:`begin_step`)."""

    def translate(self, text: str, step: Step | None = None, origin: str = "learner") -> EngineCommand:
        """The engine command for ``text`` (raises :class:`lessons.docker.CommandError`)."""

    def taken(self, cmd: EngineCommand) -> str | None:
        """Why ``cmd`` may not use its ``--name`` (another app's container has it), or None."""

    def run(self, command: Command | str, step: Step | None = None, *, origin: str = "learner",
            cancel: threading.Event | None = None, on_output: Callable[[str], None] | None = None,
            timeout: float = 120) -> RunResult:
        """Run one docker command to its end."""

    def run_explained(self, command: Command | str, step: Step | None = None, *, gate, origin: str = "learner",
                      cancel: threading.Event | None = None, on_begin=None, on_stage=None,
                      on_output: Callable[[str], None] | None = None) -> RunResult:
        """``docker run --explain``, one stage at a time, each waiting on ``gate``
        (:class:`lessons.stepwise.Gate`); ``on_begin(id, name)`` once the container exists,
        ``on_stage(number, stage, paused)`` after each stage."""

    def clear_leftovers(self, step: Step) -> list[str]:
        """What an earlier try of ``step`` made (its own named containers and networks) removed."""

    def show_me(self, step: Step, *, cancel: threading.Event | None = None,
                on_output: Callable[[str], None] | None = None, origin: str = "show") -> list[RunResult]:
        """The step done for the learner: its show-me commands, in order."""

    def check(self, step: Step, cursor: int, *, wait: float = 0.0,
              cancel: threading.Event | None = None) -> list[Result]:
        """The step's checks, over what happened after ``cursor`` (waiting up to ``wait`` seconds)."""

    def containers(self) -> list[dict]:
        """The lesson's containers (``ps`` records), newest first."""


@runtime_checkable
class Translatable(Protocol):
    """Shown in the learner's language, and able to change it in place."""

    def set_language(self, lang: str) -> None:
        """Every word in ``lang``."""


@runtime_checkable
class LabView(Translatable, Protocol):
    """The widget that shows the lab: the lesson screen tells it what to show."""

    def show_lesson(self, lesson_id: str) -> None:
        """Show that lesson's containers alone (not those kept from other lessons)."""

    def select(self, ref: str) -> None:
        """Show container ``ref`` (a name or an id; one about to exist is shown once it does)."""

    def show_tab(self, name: str) -> None:
        """Bring tab ``name`` forward (one of :data:`tui.widgets.lab_model.TABS`)."""
