"""The course map: every lesson with the learner's progress; Enter opens one."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from lessons.model import Course, Lesson
from tui.i18n import t
from tui.screens.keys import FRONT_KEYS, MAP_KEYS, Localized, bindings
from tui.screens.lesson_text import inline_text
from tui.session import Learner


def first_paragraph(markdown: str) -> str:
    """The first paragraph of some lesson Markdown, as plain text (links reduced to their words)."""
    return inline_text(markdown.strip().split("\n\n", 1)[0])


def lesson_row(number: int, lesson: Lesson, lang: str, learner: Learner, current: bool,
               steps_width: int | None = None) -> Table:
    """One line of the map: number, mark, title, steps done (in a column ``steps_width``
    wide, the same on every line: "0/10" lines up with "0/8", and nothing moves the border)."""
    done, total = len(learner.done(lesson)), len(lesson.steps)
    mark = "✓" if learner.complete(lesson) else ("▸" if current else ("•" if done else " "))
    row = Table.grid(expand=True, padding=(0, 1))
    row.add_column(width=2, justify="right")
    row.add_column(width=1)
    row.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    row.add_column(justify="right", no_wrap=True, width=steps_width)
    row.add_row(str(number), mark, lesson.title.get(lang, lesson.id), t(lang, "map.steps", done=done, total=total))
    return row


class CourseMapScreen(Localized, Screen):
    """The lessons, in order, with what the learner has done in each."""

    BINDINGS = bindings(*FRONT_KEYS, *MAP_KEYS)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    class Back(Message):
        """The learner leaves the map (Esc, m): back where they were."""

    def action_map_back(self) -> None:
        self.post_message(self.Back())

    class LessonChosen(Message):
        """The learner picked a lesson."""

        def __init__(self, lesson_id: str) -> None:
            super().__init__()
            self.lesson_id = lesson_id

    def __init__(self, lang: str, course: Course, learner: Learner) -> None:
        super().__init__()
        self.lang, self.course, self.learner = lang, course, learner

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="map"):
            with VerticalScroll(id="map-left"):
                yield Static(id="map-title", classes="section", markup=False)
                yield Static(id="map-intro", markup=False)
                yield OptionList(*self._options(), id="lessons")
            with VerticalScroll(id="preview"):
                yield Static(id="preview-title", classes="section", markup=False)
                yield Static(id="preview-intro", markup=False)
                yield Static(id="preview-status", classes="note", markup=False)
        yield Footer()

    def _current_lesson(self) -> str | None:
        pos = self.learner.position()
        return pos[0] if pos else None

    def _options(self) -> list[Option]:
        from rich.cells import cell_len

        current = self._current_lesson()
        width = max((cell_len(t(self.lang, "map.steps", done=len(lesson.steps), total=len(lesson.steps)))
                     for lesson in self.course.lessons), default=None)
        return [Option(lesson_row(n, lesson, self.lang, self.learner, lesson.id == current, width), id=lesson.id)
                for n, lesson in enumerate(self.course.lessons, 1)]

    def on_mount(self) -> None:
        self._render_texts()
        lessons = self.query_one("#lessons", OptionList)
        current = self._current_lesson()
        ids = [lesson.id for lesson in self.course.lessons]
        lessons.highlighted = ids.index(current) if current in ids else 0
        lessons.focus()

    def on_screen_resume(self) -> None:
        """Back from a lesson: its progress may have changed."""
        self.refresh_lessons()

    def refresh_lessons(self) -> None:
        lessons = self.query_one("#lessons", OptionList)
        highlighted = lessons.highlighted
        lessons.clear_options()
        lessons.add_options(self._options())
        lessons.highlighted = highlighted
        self._render_preview()

    def _render_texts(self) -> None:
        self.sub_title = t(self.lang, "subtitle.map")
        self.query_one("#map-title", Static).update(self.course.title.get(self.lang, self.course.id))
        self.query_one("#map-intro", Static).update(t(self.lang, "map.intro"))
        self._render_preview()

    def _render_preview(self) -> None:
        lessons = self.query_one("#lessons", OptionList)
        index = lessons.highlighted if lessons.highlighted is not None else 0
        if not self.course.lessons:
            return
        lesson = self.course.lessons[index]
        done, total = len(self.learner.done(lesson)), len(lesson.steps)
        self.query_one("#preview-title", Static).update(
            t(self.lang, "map.lesson", number=index + 1, title=lesson.title.get(self.lang, lesson.id)))
        self.query_one("#preview-intro", Static).update(first_paragraph(lesson.intro.get(self.lang, "")))
        status = ("map.status.complete" if self.learner.complete(lesson) else
                  "map.status.started" if done else "map.status.new")
        self.query_one("#preview-status", Static).update(t(self.lang, status, done=done, total=total))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._render_preview()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.LessonChosen(event.option.id))

    def set_language(self, lang: str) -> None:
        """Re-render in ``lang``; the highlighted lesson stays."""
        self.lang = lang
        self._render_texts()
        self.refresh_lessons()

