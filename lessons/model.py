"""The course model: Course -> Lesson -> Step, as plain, immutable data.

What a lesson *does* (step ids, commands, checks, setup, hint ids, quiz
answers) comes from its language-neutral ``lesson.toml``; what it *says*
comes from ``en.md`` / ``zh.md`` and is kept per language in
:class:`StepText`. Commands never live in the prose, so no translation can
break one. Every object here is frozen and holds only str, int, tuples and
dicts of those, so the app may share them between threads freely.

``line`` fields are 1-based line numbers in the file the item came from,
for error messages (``file:line``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LANGS = ("en", "zh")


@dataclass(frozen=True)
class Command:
    """A command the learner types (``docker run ubuntu echo hi``), exactly as
    the source material writes it; ``type`` is what a learner then types into
    its terminal, one line each (for ``-it`` commands)."""

    text: str
    type: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class CheckSpec:
    """One declarative check: a registered ``kind`` and its arguments
    (see :mod:`lessons.checks`)."""

    kind: str
    args: dict = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Quiz:
    """A single- or multiple-choice question: option ids in order, the right ones."""

    options: tuple[str, ...]
    answer: frozenset[str]
    multiple: bool = False
    line: int = 0

    def grade(self, selected) -> bool:
        """True when ``selected`` (option ids) is exactly the right answer."""
        return frozenset(selected) == self.answer


@dataclass(frozen=True)
class OptionText:
    """One quiz option in one language: the choice, and why it is right or wrong."""

    text: str
    explanation: str


@dataclass(frozen=True)
class StepText:
    """A step's words in one language (Markdown source)."""

    title: str
    body: str
    hints: dict[str, str] = field(default_factory=dict)      # hint id -> Markdown
    question: str = ""
    options: dict[str, OptionText] = field(default_factory=dict)
    glossary: tuple[str, ...] = ()                            # glossary ids linked
    line: int = 0


@dataclass(frozen=True)
class Step:
    """One step: read, do (commands), get checked, or answer a quiz."""

    id: str
    commands: tuple[Command, ...] = ()
    show: tuple[Command, ...] = ()         # what "show me" performs (default: the commands)
    hints: tuple[str, ...] = ()            # hint ids, from gentle to explicit
    checks: tuple[CheckSpec, ...] = ()
    quiz: Quiz | None = None
    setup: tuple[Command, ...] = ()        # extra lab state this step starts from
    text: dict[str, StepText] = field(default_factory=dict)
    line: int = 0
    requires: tuple[str, ...] = ()         # doctor check ids this machine must pass (else: explain, not run)

    @property
    def show_me(self) -> tuple[Command, ...]:
        """The commands "show me" runs."""
        return self.show or self.commands

    def title(self, lang: str) -> str:
        return self.text[lang].title if lang in self.text else self.id

    def hint(self, lang: str, n: int) -> str | None:
        """The ``n``-th hint (0-based) in ``lang``, or None past the last."""
        if n < 0 or n >= len(self.hints):
            return None
        return self.text[lang].hints.get(self.hints[n]) if lang in self.text else None


@dataclass(frozen=True)
class Lesson:
    """One lesson: its image, the lab state it starts from, its steps."""

    id: str
    folder: str                             # e.g. "06-first-container"
    path: Path
    image: str = "lab"
    images: tuple[str, ...] = ()            # every image the lesson's commands may name
    fallback: str = "lab"
    setup: tuple[Command, ...] = ()
    steps: tuple[Step, ...] = ()
    title: dict[str, str] = field(default_factory=dict)
    intro: dict[str, str] = field(default_factory=dict)
    files: tuple[tuple[str, str], ...] = ()     # (relative path, text): the lab writes them in the lesson's folder

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def step_index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)


@dataclass(frozen=True)
class Term:
    """A glossary entry: the term and a one-line definition in each language."""

    id: str
    term: dict[str, str]
    definition: dict[str, str]


@dataclass(frozen=True)
class Course:
    """A whole course: ``course.toml``, its lessons in folder order, its glossary."""

    id: str
    path: Path
    title: dict[str, str] = field(default_factory=dict)
    languages: tuple[str, ...] = LANGS
    lessons: tuple[Lesson, ...] = ()
    glossary: dict[str, Term] = field(default_factory=dict)

    def lesson(self, lesson_id: str) -> Lesson:
        for lesson in self.lessons:
            if lesson.id == lesson_id or lesson.folder == lesson_id:
                return lesson
        raise KeyError(lesson_id)


@dataclass(frozen=True)
class Problem:
    """One mistake in a course, for ``course check``: where, and what is wrong."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"
