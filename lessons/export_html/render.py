"""Lesson Markdown as safe HTML, and what each check looks for in words.

A course is an instructor's files, so everything in it is untrusted: raw HTML
in the Markdown is shown as text (markdown-it's ``html`` option off), a link
goes only to a glossary term or to http(s)/mailto, an image becomes a link to
it (the site loads nothing from elsewhere), and every other value is escaped
where it is put into a page (:func:`esc`).
"""

from __future__ import annotations

import html
import re

from ..course_files import ID_RE

_SAFE_SCHEMES = re.compile(r"^(https?:|mailto:)", re.IGNORECASE)


def esc(text: object) -> str:
    """``text`` escaped for an element's content or a quoted attribute."""
    return html.escape(str(text), quote=True)


def plain(markdown: str) -> str:
    """A one-line Markdown title as plain text (for <title>): marks and link targets dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return " ".join(text.replace("`", "").replace("**", "").split())


class Markdown:
    """CommonMark without raw HTML; glossary links to the language's glossary page."""

    def __init__(self):
        from markdown_it import MarkdownIt

        self.md = MarkdownIt("commonmark", {"html": False})
        self.md.disable("image")                 # an image would be fetched: its alt text is shown
        self.md.validateLink = _valid_link
        rules = self.md.renderer.rules
        default_open = self.md.renderer.renderToken

        def link_open(tokens, idx, options, env):
            token = tokens[idx]
            href = str(token.attrGet("href") or "")
            if href.startswith("glossary:"):
                gid = href[len("glossary:"):]
                token.attrSet("href", f"glossary.html#term-{gid}" if ID_RE.match(gid) else "glossary.html")
                token.attrSet("class", "term")
            else:
                token.attrSet("rel", "noopener noreferrer")
            return default_open(tokens, idx, options, env)

        rules["link_open"] = link_open

    def block(self, text: str) -> str:
        return self.md.render(text or "")

    def inline(self, text: str) -> str:
        """One paragraph's worth of Markdown, without the <p> around it."""
        return self.md.renderInline(" ".join((text or "").split()))


def _valid_link(url: str) -> bool:
    """glossary:ID, http(s) and mailto only; ``javascript:``, ``data:``, ``file:``
    and paths into the reader's machine are left as plain text."""
    return url.startswith("glossary:") or bool(_SAFE_SCHEMES.match(url.strip()))


class _NothingYet:
    """A lab in which nothing has happened and nothing exists. Evaluated there,
    a check says what it looks for (``Result.expected``) in the very words the
    app shows after "Check", with no engine asked."""

    def events(self, after: int) -> list[dict]:
        return []

    def container(self, ref: str) -> None:
        return None

    def containers(self) -> list[dict]:
        return []

    def networks(self) -> list[str]:
        return []

    def host_hostname(self) -> str:
        return "…"                                # the reader's host, whatever its name

    def host_namespaces(self) -> dict[str, int]:
        return {}

    def visible_processes(self, pid) -> list:
        return []

    def __getattr__(self, name: str):
        raise AttributeError(f"a check asked the lab for {name!r} before anything ran")


def describe(spec, lang: str) -> str:
    """What the check ``spec`` (a :class:`~lessons.model.CheckSpec`) looks for, in ``lang``."""
    from ..checks import evaluate

    return evaluate(spec, _NothingYet(), 0, lang).expected
