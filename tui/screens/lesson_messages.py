"""What the lesson screen's thread workers report back, one message each.

Engine work -- setting a step up, running a command, checking, opening a
terminal -- runs in a thread worker that never touches a widget: it posts
one of these to the screen, whose handler (``on_lesson_screen_<name>``, in
the module of the concern it belongs to) changes what is shown. The
``lesson_screen`` namespace keeps those handler names as they were when the
messages were nested in :class:`tui.screens.lesson.LessonScreen`.

The step-through start's own messages (``StagesBegan``, ``StageDone``) are in
:mod:`tui.screens.stepthrough`.
"""

from __future__ import annotations

from textual.message import Message


class StepReady(Message, namespace="lesson_screen"):
    """The step's lab is set up; its checks count events after ``cursor``."""

    def __init__(self, step_id: str, cursor: int, setup: list, reset: bool) -> None:
        super().__init__()
        self.step_id, self.cursor, self.setup, self.reset = step_id, cursor, setup, reset


class Output(Message, namespace="lesson_screen"):
    """Some output of the command running."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CommandDone(Message, namespace="lesson_screen"):
    """A command (or the step's "show me") finished; ``ref`` is the container it named."""

    def __init__(self, step_id: str, results: list, ref: str | None = None, check: bool = True) -> None:
        super().__init__()
        self.step_id, self.results, self.ref, self.check = step_id, results, ref, check


class Checked(Message, namespace="lesson_screen"):
    """The step's checks, evaluated in ``lang``."""

    def __init__(self, step_id: str, results: list, lang: str) -> None:
        super().__init__()
        self.step_id, self.results, self.lang = step_id, results, lang


class TerminalWanted(Message, namespace="lesson_screen"):
    """A command needs a terminal: open it on a pseudo-terminal in the terminal pane."""

    def __init__(self, step_id: str, command) -> None:
        super().__init__()
        self.step_id, self.command = step_id, command


class TerminalReady(Message, namespace="lesson_screen"):
    """A pseudo-terminal is open: ``fd`` is its master, ``session`` or ``attached`` its owner;
    ``typing``: lines "show me" types into it, ``then``: the show-me command that follows it."""

    def __init__(self, step_id: str, fd: int, *, session=None, attached=None, title: str = "",
                 typing: tuple[str, ...] = (), then: int | None = None) -> None:
        super().__init__()
        self.step_id, self.fd, self.session, self.attached, self.title = step_id, fd, session, attached, title
        self.typing, self.then = typing, then


class Follow(Message, namespace="lesson_screen"):
    """A command started (or went into) container ``ref``: the lab panel shows it."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref


class LabFailed(Message, namespace="lesson_screen"):
    """The engine could not do something; ``error`` says why."""

    def __init__(self, key: str, error: str) -> None:
        super().__init__()
        self.key, self.error = key, error
