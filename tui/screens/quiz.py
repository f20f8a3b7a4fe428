"""A step's quiz: one answer (radio buttons) or several (a selection list),
each answer wrapped under its button and never cut, and once answered why
each chosen option is right or wrong.

The answer widgets are made when a quiz is first shown (only quizzes need
them); what was chosen and answered is kept by the step
(:class:`tui.screens.parts.StepView`), so a quiz can be composed again --
another language, the step opened again -- as it was.
"""

from __future__ import annotations

from functools import cache

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from lessons.model import Step
from tui.i18n import t
from tui.screens.lesson_text import LessonMarkdown, inline_text


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
