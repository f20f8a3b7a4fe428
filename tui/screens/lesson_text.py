"""Lesson text as the app draws it: prose (Markdown), one line of it as plain
text, the glossary terms a step links to, and check results with their
`code` spans kept on one line.

No widget here talks to the engine or keeps state; :mod:`tui.screens.parts`
and :mod:`tui.screens.quiz` compose them.
"""

from __future__ import annotations

import re

from textual.content import Content
from textual.widgets import Static

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
