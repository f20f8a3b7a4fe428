"""The lesson screen's own pieces: a step, the output, the stage panel, the command line, the lab placeholder.

Attributes down, messages up: the lesson screen sets what a piece shows
(``set_language``, ``show_results`` ...) and a piece says what the learner
did with a message (:class:`StepView.Pressed`); none of them talks to the
engine. A step's quiz is :mod:`tui.screens.quiz`'s, how its text and check
results are drawn :mod:`tui.screens.lesson_text`'s (both importable from
here too, as they were).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, RichLog, Static

from lessons.model import Step
from tui.i18n import t
from tui.screens.lesson_text import NO_BREAK, LessonMarkdown, glossary_text, inline_text, results_content
from tui.screens.quiz import QuizView, option_text

# the quiz's and the text's names too: imported from here before they had modules of their own
__all__ = ["NO_BREAK", "CommandLine", "LabPlaceholder", "LessonMarkdown", "OutputLog", "QuizView", "StagePanel",
           "StepView", "StepWork", "glossary_text", "inline_text", "option_text", "results_content"]


class StepWork(Vertical):
    """The current step's text and working area: commands with Run, the buttons,
    its quiz, hints, status and check results -- composed from its :class:`StepView`'s state."""

    def __init__(self, view: StepView) -> None:
        super().__init__(classes="step-work")
        self.view = view

    def compose(self) -> ComposeResult:
        view, step, lang = self.view, self.view.step, self.view.lang
        unavailable = view.unavailable is not None
        if unavailable:                     # first: the learner reads the step knowing it will not run
            yield Static(view.unavailable, classes="step-unavailable", markup=False)
        if step.text[lang].body.strip():
            yield LessonMarkdown(step.text[lang].body, classes="step-body")
        if terms := glossary_text(step, lang, view.glossary):
            yield Static(terms, classes="step-glossary", markup=False)
        for i, command in enumerate(step.commands):
            with Horizontal(classes="command"):
                yield Button(t(lang, "button.run"), name=f"run:{i}", classes="run", compact=True,
                             disabled=unavailable)
                yield Static(f"$ {command.text}", classes="command-text", markup=False)
        if step.quiz is not None:
            yield QuizView(step, lang, view.chosen, view.answered)
        shown = {"check": bool(step.checks or step.quiz), "hint": bool(step.hints),
                 "show": bool(step.show_me), "reset": bool(step.commands or step.setup)}
        buttons = [a for a in view.BUTTONS if shown[a] and not unavailable]
        if buttons:
            with Horizontal(classes="step-buttons"):
                for action in buttons:
                    yield Button(t(lang, f"button.{action}"), name=action, classes=action, compact=True)
        if view.hints_shown:
            with Vertical(classes="hints"):
                for n in range(view.hints_shown):
                    text = step.hint(lang, n)
                    if text is not None:
                        yield Static(t(lang, "hint.label", number=n + 1, total=len(step.hints)),
                                     classes="hint-label", markup=False)
                        yield LessonMarkdown(text, classes="hint-text")
        key, values = view.status
        status = Static(t(lang, key, **values) if key else "", classes="step-status note", markup=False)
        status.display = bool(key)
        yield status
        results = Static(results_content(view.results, lang) if view.results else "", classes="results",
                         markup=False)
        results.display = bool(view.results)
        yield results
        if view.number > 1 or view.number < view.total:
            with Horizontal(classes="step-nav"):
                if view.number > 1:
                    yield Button(t(lang, "button.previous"), name="previous", classes="previous", compact=True)
                if view.number < view.total:
                    yield Button(t(lang, "button.next"), name="next", classes="next", compact=True)


class StepView(Vertical):
    """One step of the lesson. Its title always shows (with ✓ once done); the
    current step opens: its text and working area (:class:`StepWork`), composed
    when the step becomes current and dropped when it stops being so -- the
    lesson's other steps cost one line each, and a long lesson draws its first
    frame in time. What the learner did in the step (hints opened, check
    results, quiz answers, the status line) is kept here."""

    class Pressed(Message):
        """A button of the step: ``action`` is run, check, hint, show, reset, next or previous;
        ``index`` the command a Run button belongs to."""

        def __init__(self, step_id: str, action: str, index: int | None = None) -> None:
            super().__init__()
            self.step_id, self.action, self.index = step_id, action, index

    BUTTONS = ("check", "hint", "show", "reset")

    def __init__(self, step: Step, number: int, total: int, lang: str, *, done: bool = False,
                 unavailable: str | None = None, glossary: dict | None = None) -> None:
        super().__init__(classes="step -done" if done else "step", id=f"step-{step.id}")
        self.step, self.number, self.total, self.lang = step, number, total, lang
        self.glossary = glossary or {}          # the course's terms, for the ones this step links
        self.done, self.unavailable = done, unavailable
        self.hints_shown = 0
        self.results: list | None = None
        self.status: tuple[str, dict] = ("", {})     # a line under the buttons: running …, checking …
        self.chosen: frozenset[str] = frozenset()    # quiz options picked
        self.answered: frozenset[str] | None = None  # the last answer checked

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="step-title", markup=False)

    def _title(self) -> str:
        done = " ✓" if self.done else ""
        return t(self.lang, "step.title", number=self.number, total=self.total,
                 title=self.step.title(self.lang)) + done

    def work(self) -> StepWork | None:
        found = self.query(StepWork)
        return found.first() if found else None

    def _rework(self) -> None:
        """Compose the working area again from the state (if the step is current)."""
        if (work := self.work()) is not None:
            self._keep_choice()
            work.refresh(recompose=True)

    def _keep_choice(self) -> None:
        if (quiz := self.quiz()) is not None:
            self.chosen = quiz.selected()

    # -- what the screen sets -----------------------------------------------------------------
    def set_current(self, current: bool, *, opened: bool = True) -> None:
        """Mark the step current (or not); ``opened``: with its text and work area."""
        self.set_class(current, "-current")
        work = self.work()
        if current and opened and work is None:
            self.mount(StepWork(self))
        elif not (current and opened) and work is not None:
            self._keep_choice()
            work.remove()

    def set_done(self, done: bool) -> None:
        self.done = done
        self.set_class(done, "-done")
        self.query_one(".step-title", Static).update(self._title())

    def set_unavailable(self, why: str | None) -> None:
        if why != self.unavailable:
            self.unavailable = why
            self._rework()

    def set_status(self, key: str, **values) -> None:
        """The line under the buttons: message ``key`` of the catalog (empty: none)."""
        self.status = (key, values)
        if (work := self.work()) is None:
            return
        if work.query(".step-status"):      # else not composed yet: it will be, from the state
            status = work.query_one(".step-status", Static)
            status.update(t(self.lang, key, **values) if key else "")
            status.display = bool(key)

    def show_hints(self, count: int) -> None:
        """Show the first ``count`` hints (each a Markdown block)."""
        self.hints_shown = count
        self._rework()

    def show_results(self, results: list | None) -> None:
        """The check results (:class:`lessons.checks.Result`), worded in the learner's language."""
        self.results = results
        if (work := self.work()) is None:
            return
        if work.query(".results"):          # else not composed yet: it will be, from the state
            box = work.query_one(".results", Static)
            box.update(results_content(results, self.lang) if results else "")
            box.display = bool(results)

    def show_answer(self, selected: frozenset[str]) -> None:
        """The quiz answered with ``selected``: why each is right or wrong."""
        self.chosen = self.answered = selected
        self._rework()

    def quiz(self) -> QuizView | None:
        found = self.query(QuizView)
        return found.first() if found else None

    def set_language(self, lang: str) -> None:
        """Every word of the step in ``lang``; what the learner did stays (results are re-checked by the screen)."""
        self.lang = lang
        self.query_one(".step-title", Static).update(self._title())
        self._rework()

    # -- what the learner does ------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action, _, index = (event.button.name or "").partition(":")
        self.post_message(self.Pressed(self.step.id, action, int(index) if index else None))


class OutputLog(RichLog):
    """What the commands printed: streamed text, kept plain, wrapped to the pane."""

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=2000, min_width=20, **kwargs)
        self._partial = ""
        self.plain: list[str] = []          # every line written, as text (for tests and copying)

    def _line(self, text: str) -> None:
        self.plain.append(text)
        self.write(Text(text))

    def feed(self, text: str) -> None:
        """Some output; a line shows once it is complete (or :meth:`flush` is called)."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def say(self, text: str) -> None:
        """A line (or a few) of our own, after whatever came before."""
        self.flush()
        for line in text.split("\n"):
            self._line(line)


class StagePanel(Static):
    """A step-through start's current stage (``docker run --explain`` in the app):
    its title, what it does, its kernel calls beside the equivalent shell commands,
    and what the learner can do now. Kept as data, so another language words it anew."""

    def __init__(self, lang: str, name: str, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.lang, self.container = lang, name
        self.stage: tuple[int, dict, bool] | None = None      # (number, stage, last)
        self.fixed_lang: str | None = None                    # run --explain --lang: always that one
        self.paced: float | None = None                       # show me: seconds a stage stays shown

    def on_mount(self) -> None:
        self._draw()

    def show(self, number: int, stage: dict, *, last: bool) -> None:
        """Stage ``number`` is done; ``last``: the command runs next."""
        self.stage = (number, stage, last)
        self._draw()
        self.scroll_home(animate=False)

    def set_language(self, lang: str) -> None:
        self.lang = lang
        self._draw()

    def lines(self) -> tuple[str, list[str], list[str]]:
        """The current stage's title, explanation and kernel calls, in the language shown."""
        from lessons.stepwise import stage_lines

        if self.stage is None:
            return "", [], []
        number, stage, _last = self.stage
        return stage_lines(stage, self.fixed_lang or self.lang, number=number, width=10_000)

    def _draw(self) -> None:
        self.border_title = t(self.lang, "stage.title", name=self.container)
        if self.stage is None:
            self.update("")
            return
        title, explanation, ops = self.lines()
        text = Text()
        text.append(title, style="bold")
        if self.paced is not None and not self.stage[2]:      # first, where a short panel still shows it
            seconds = f"{self.paced:g}"
            text.append("\n" + t(self.lang, "stage.paced", seconds=seconds), style="italic")
        for line in explanation:
            text.append("\n" + line)
        if self.paced is None or self.stage[2]:
            key = "stage.last" if self.stage[2] else "stage.paused"
            text.append("\n" + t(self.lang, key, name=self.container), style="italic")
        for line in ops:
            text.append("\n" + line, style="dim")
        self.update(text)


class CommandLine(Input):
    """Where the learner types docker commands; ↑ and ↓ go through what was typed before."""

    BINDINGS = [
        Binding("up", "history(-1)", show=False),
        Binding("down", "history(1)", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self._at = 0

    def remember(self, command: str) -> None:
        if command and (not self.history or self.history[-1] != command):
            self.history.append(command)
        self._at = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._at = max(0, min(len(self.history), self._at + step))
        self.value = self.history[self._at] if self._at < len(self.history) else ""
        self.cursor_position = len(self.value)


class LabPlaceholder(Static):
    """Stands where the live lab panel goes, until that widget is installed (and in screenshots)."""

    def __init__(self, lang: str = "en", **kwargs) -> None:
        super().__init__(t(lang, "lab.placeholder"), markup=False, **kwargs)

    def set_language(self, lang: str) -> None:
        self.update(t(lang, "lab.placeholder"))

    # It shows no container: what to show is not its business (tui.contracts.LabView).
    def show_lesson(self, lesson_id: str) -> None:
        pass

    def select(self, ref: str) -> None:
        pass

    def show_tab(self, name: str) -> None:
        pass
