"""The lesson screen's own pieces: a step, its quiz, the command line, the lab placeholder.

Attributes down, messages up: the lesson screen sets what a piece shows
(``set_language``, ``show_results`` ...) and a piece says what the learner
did with a message (:class:`StepView.Pressed`); none of them talks to the
engine.
"""

from __future__ import annotations

import re
from functools import cache

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, RichLog, Static

from lessons.model import Step
from tui.i18n import t


def inline_text(markdown: str) -> str:
    """One line of Markdown as plain text: `code` and **bold** marks and link targets dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return " ".join(text.replace("`", "").replace("**", "").split())


GLOSSARY_LINK = re.compile(r"\[([^\]]+)\]\(glossary:[^)]*\)")


class LessonMarkdown(Static):
    """Lesson prose (Markdown), drawn as one widget.

    Rich's Markdown renderer in a Static, rather than Textual's Markdown
    widget: that one makes a widget of every paragraph, list item and code
    block, and styling them all made opening a long step take most of a
    second on a busy machine; one Static does the same in a few milliseconds.
    Code blocks are shown as written (no language guessing), glossary links
    as the term in bold (the step lists their definitions below it)."""

    def __init__(self, markdown: str, **kwargs) -> None:
        super().__init__(self._renderable(markdown), **kwargs)
        self.source = markdown

    @staticmethod
    def _renderable(markdown: str):
        from rich.markdown import Markdown as RichMarkdown

        text = GLOSSARY_LINK.sub(r"**\1**", markdown)
        return RichMarkdown(text, code_theme="ansi_dark", inline_code_lexer=None, hyperlinks=False)

    def update(self, markdown="") -> None:
        self.source = markdown
        super().update(self._renderable(markdown))


def glossary_text(step: Step, lang: str, glossary: dict) -> str:
    """The terms the step's text links to, each with its definition (one line each)."""
    text = step.text.get(lang)
    lines = []
    for gid in dict.fromkeys(text.glossary if text else ()):
        term = glossary.get(gid)
        if term is not None and term.definition.get(lang):
            lines.append(f"{term.term.get(lang, gid)} — {term.definition[lang]}")
    return "\n".join(lines)


def quiz_feedback(step: Step, lang: str, selected: frozenset[str]):
    """After an answer: each chosen option with why it is right or wrong
    (every option once the answer is right): the mark, then the option and,
    under it, its explanation, all wrapped in the column after the mark."""
    from rich.console import Group
    from rich.table import Table

    quiz, text = step.quiz, step.text[lang]
    right = quiz.grade(selected)
    shown = quiz.options if right else [o for o in quiz.options if o in selected]
    answers = Table.grid(padding=(0, 1))
    answers.add_column(no_wrap=True)
    answers.add_column(ratio=1, overflow="fold")
    for oid in shown:
        mark = "✓" if oid in quiz.answer else "✗"
        explanation = inline_text(text.options[oid].explanation) if oid in text.options else ""
        answers.add_row(mark, Text.assemble((option_text(step, lang, oid), "bold"), "\n", explanation))
    return Group(Text(t(lang, "quiz.right" if right else ("quiz.none" if not selected else "quiz.wrong"))),
                 answers)


def option_text(step: Step, lang: str, oid: str) -> str:
    text = step.text.get(lang)
    return inline_text(text.options[oid].text) if text and oid in text.options else oid


CODE_SPAN = re.compile(r"`([^`\n]+)`")
CODE_STYLE = "bold $text-accent"       # bold: it still stands out under NO_COLOR
NO_BREAK = "\u00a0"                    # a line does not break here (tui.text.cjk)


def code_content(text: str) -> Content:
    """A text with `code` spans (a check's, :class:`lessons.checks.Result`) as the app
    shows it: each span in :data:`CODE_STYLE` without its backticks, its spaces
    no-break spaces so that ``ps -ef`` is not cut across two lines."""
    parts: list = []
    at = 0
    for match in CODE_SPAN.finditer(text):
        parts.append(text[at:match.start()])
        parts.append((match.group(1).replace(" ", NO_BREAK), CODE_STYLE))
        at = match.end()
    parts.append(text[at:])
    return Content.assemble(*parts)


def results_content(results: list, lang: str) -> Content:
    """Check results (:class:`lessons.checks.Result`): ✓ what was expected, or ✗ and what the engine saw."""
    lines = []
    for r in results:
        if getattr(r, "skipped", False):
            lines.append(Content.assemble(("–", "$text-warning"), " ", code_content(r.saw)))
        elif r.passed:
            lines.append(Content.assemble(("✓", "$text-success"), " ", code_content(r.expected)))
        else:
            lines.append(Content.assemble(("✗", "$text-error"), " ", code_content(r.expected), "\n  ",
                                          t(lang, "check.saw"), " ", code_content(r.saw)))
    return Content("\n").join(lines)


GUTTER = 4          # a choice's button and the space after it: "▐●▌ "


def hanging(first: Content, text: Content, width: int) -> list[Content]:
    """``text`` wrapped to ``width`` after ``first`` (a choice's button), its further
    lines indented as far: an answer is never cut, and reads as one block."""
    lines = text.wrap(max(1, width - GUTTER)) or [Content("")]
    return [first + Content(" ") + lines[0], *(Content(" " * GUTTER) + line for line in lines[1:])]


@cache
def _radio_button():
    """The Choice class (made once, when a quiz is first shown: only quizzes need these widgets)."""
    from textual.widgets import RadioButton

    class Choice(RadioButton):
        """One answer of a one-answer quiz: wrapped (hanging under its button), never cut;
        the button shows a dot only when chosen (not a colour alone)."""

        DEFAULT_CSS = """
        Choice { width: 1fr; height: auto; }
        """

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.BUTTON_INNER = "●" if self.value else " "

        def watch_value(self) -> None:
            self.BUTTON_INNER = "●" if self.value else " "
            super().watch_value()
            self.refresh()

        def _lines(self, width: int) -> list[Content]:
            label = self._label.stylize_before(self.get_visual_style("toggle--label"))
            return hanging(self._button, label, width)

        def render(self) -> Content:
            return Content("\n").join(self._lines(self.content_region.width or self.size.width))

        def get_content_height(self, container, viewport, width: int) -> int:
            return len(self._lines(width))

        def get_content_width(self, container, viewport) -> int:
            return container.width

    return Choice


@cache
def _selection_list():
    """The Choices class (made once, when a several-answers quiz is first shown)."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.strip import Strip
    from textual.widgets import OptionList, SelectionList
    from textual.widgets._toggle_button import ToggleButton

    class Choices(SelectionList):
        """The answers of a several-answers quiz: each wrapped (hanging under its box),
        never cut; the box shows a tick only when chosen (not a colour alone)."""

        DEFAULT_CSS = """
        Choices { text-wrap: wrap; text-overflow: fold; }
        """

        def get_content_height(self, container, viewport, width: int) -> int:
            return super().get_content_height(container, viewport, width - self._get_left_gutter_width())

        def render_line(self, y: int) -> Strip:
            line = OptionList.render_line(self, y)
            try:
                index, offset = self._lines[self.scroll_offset.y + y]
                selection = self.get_option_at_index(index)
            except (IndexError, AttributeError):
                return line
            underlying = next(iter(line)).style or self.rich_style
            if offset:                            # a wrapped answer's further line: under its text
                return Strip([Segment(" " * GUTTER, underlying), *line])
            component = "selection-list--button"
            if selection.value in self._selected:
                component += "-selected"
            if self.highlighted == index:
                component += "-highlighted"
            button = self.get_component_rich_style(component) + Style(meta={"option": index})
            side = Style.from_color(button.bgcolor, underlying.bgcolor) + Style(meta={"option": index})
            inner = "✓" if selection.value in self._selected else " "
            return Strip([Segment(ToggleButton.BUTTON_LEFT, side), Segment(inner, button),
                          Segment(ToggleButton.BUTTON_RIGHT, side), Segment(" ", underlying), *line])

    return Choices


class QuizView(Vertical):
    """A step's question: one choice (RadioSet) or several (SelectionList), and,
    once answered, why each chosen option is right or wrong. What was chosen
    and answered lives on the :class:`StepView`, so the quiz can be composed
    again (another language, the step opened again) as it was."""

    class Shown(Message):
        """The quiz is on screen (its step became current, or was composed again)."""

    def __init__(self, step: Step, lang: str, chosen: frozenset[str], answered: frozenset[str] | None) -> None:
        super().__init__(classes="quiz")
        self.step, self.lang, self.chosen, self.answered = step, lang, chosen, answered

    def compose(self) -> ComposeResult:
        from textual.widgets import RadioSet  # here: only quizzes need them
        from textual.widgets.selection_list import Selection

        RadioButton, SelectionList = _radio_button(), _selection_list()

        quiz, lang = self.step.quiz, self.lang
        yield LessonMarkdown(self.step.text[lang].question, classes="quiz-question")
        if quiz.multiple:
            yield Static(t(lang, "quiz.several"), classes="quiz-how note", markup=False)
            yield SelectionList(*[Selection(option_text(self.step, lang, o), o, o in self.chosen, id=o)
                                       for o in quiz.options], classes="quiz-choices")
        else:
            with RadioSet(classes="quiz-choices"):
                for o in quiz.options:
                    yield RadioButton(option_text(self.step, lang, o), o in self.chosen, name=o)
        feedback = Static(quiz_feedback(self.step, lang, self.answered) if self.answered is not None else "",
                          classes="quiz-feedback", markup=False)
        if self.answered is not None:
            feedback.add_class("-right" if quiz.grade(self.answered) else "-wrong")
        yield feedback

    def on_mount(self) -> None:
        self.post_message(self.Shown())

    def choices(self):
        return self.query_one(".quiz-choices")

    def selected(self) -> frozenset[str]:
        """The option ids chosen so far."""
        from textual.widgets import SelectionList

        choices = self.choices()
        if isinstance(choices, SelectionList):
            return frozenset(choices.selected)
        pressed = choices.pressed_button
        return frozenset([pressed.name]) if pressed is not None and pressed.name else frozenset()


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
