"""A lesson's prose in one language, ``en.md`` or ``zh.md``: ``# Title``, an
introduction, then one ``## Step title {#step-id}`` section per step with
its text, ``::: hint ID`` blocks, and for a quiz a ``::: quiz`` block and one
``::: option ID`` block per option; ``[word](glossary:ID)`` links a term.

Read with markdown-it (imported when a course is first read), every mistake a
:class:`~lessons.model.Problem` at its line. What the sections must match --
the steps, hints and quiz options of ``lesson.toml`` -- is checked by
:mod:`lessons.loader`.
"""

from __future__ import annotations

import re
from pathlib import Path

from .course_files import ID_RE, rel_path
from .model import OptionText, Problem

HEADING_ID_RE = re.compile(r"\s*\{#([^}\s]*)\}\s*$")
BLOCKS = ("hint", "quiz", "option")


def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.container import container_plugin

    md = MarkdownIt("commonmark")
    for name in BLOCKS:
        container_plugin(md, name)
    return md


class Section:
    """The Markdown of one ``##`` section (or the lesson's introduction) while it is read."""

    def __init__(self, title: str, step_id: str | None, line: int):
        self.title, self.step_id, self.line = title, step_id, line
        self.body_lines: list[int] = []       # 0-based lines of blocks outside ::: blocks
        self.excluded: set[int] = set()       # 0-based lines of ::: blocks
        self.body = ""
        self.hints: dict[str, str] = {}
        self.question = ""
        self.options: dict[str, OptionText] = {}
        self.glossary: list[tuple[str, int]] = []


def _glossary_links(inline, out: list[tuple[str, int]]) -> None:
    for child in inline.children or []:
        if child.type == "link_open":
            href = str(child.attrGet("href") or "")
            if href.startswith("glossary:"):
                out.append((href[len("glossary:"):], inline.map[0] + 1 if inline.map else 0))


def parse_prose(path: Path, root: Path, problems: list[Problem]):
    """``en.md``: (title, introduction, its section, step sections in order, the
    source lines); None if unreadable."""
    rel = rel_path(path, root)
    try:
        src = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(rel, 0, "file is missing (every lesson needs every language of the course)"))
        return None
    except (OSError, UnicodeDecodeError) as e:
        problems.append(Problem(rel, 0, f"cannot read: {e}"))
        return None
    lines = src.splitlines()
    tokens = _markdown().parse(src)
    title, title_line = "", 0
    intro = Section("", None, 1)
    sections: list[Section] = []
    current = intro
    seen_ids: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.tag in ("h1", "h2"):
            text = tokens[i + 1].content
            line = tok.map[0] + 1
            if tok.tag == "h1":
                if title:
                    problems.append(Problem(rel, line, "only one # title per lesson; steps are ## sections"))
                else:
                    if sections or intro.body_lines:
                        problems.append(Problem(rel, line, "the # title must come first"))
                    title, title_line = text.strip(), line
                current.excluded.add(line - 1)
            else:
                m = HEADING_ID_RE.search(text)
                if not m:
                    problems.append(Problem(rel, line, f"step heading '{text.strip()}' needs an id: "
                                                       f"## {text.strip()} {{#step-id}}"))
                    sid = None
                else:
                    sid = m.group(1)
                    if not ID_RE.match(sid):
                        problems.append(Problem(rel, line, f"step id '{sid}': use lowercase letters, digits and -"))
                    elif sid in seen_ids:
                        problems.append(Problem(rel, line, f"step id '{sid}' is used twice"))
                    seen_ids.add(sid)
                current = Section(text[:m.start()].strip() if m else text.strip(), sid, line)
                if not current.title:
                    problems.append(Problem(rel, line, "a step heading needs a title before its {#id}"))
                sections.append(current)
            _glossary_links(tokens[i + 1], current.glossary)
            i += 3
            continue
        if tok.type.startswith("container_") and tok.nesting == 1:
            i = _read_block(tokens, i, lines, rel, current, problems)
            continue
        if tok.map and tok.level == 0 and tok.nesting in (0, 1):
            current.body_lines.extend(range(tok.map[0], tok.map[1]))
            if tok.type == "paragraph_open" and tokens[i + 1].content.lstrip().startswith(":::"):
                head = tokens[i + 1].content.splitlines()[0].strip()
                problems.append(Problem(rel, tok.map[0] + 1,
                                        f"unknown block '{head}' (blocks are ::: hint ID, ::: quiz, "
                                        f"::: option ID, each closed by a line :::)"))
        if tok.type == "inline":
            _glossary_links(tok, current.glossary)
        i += 1
    if not title:
        problems.append(Problem(rel, 1, "the lesson needs a # title on its first line"))
    if intro.hints or intro.question or intro.options:
        problems.append(Problem(rel, min(intro.excluded - {title_line - 1}) + 1,
                                "hints and quizzes belong in a ## step section"))
    # Each section runs to the next heading; its body is every line there but its blocks.
    starts = [title_line] + [sec.line for sec in sections] + [len(lines) + 1]
    for sec, begin, stop in zip([intro, *sections], starts, starts[1:]):
        body = [lines[n] for n in range(begin, stop - 1) if n not in sec.excluded]
        sec.body = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()
    return title, intro.body, intro, sections, lines


def _read_block(tokens, i: int, lines: list[str], rel: str, sec: Section, problems) -> int:
    """One ``::: NAME ARG`` block starting at token ``i``; returns the index after it."""
    tok = tokens[i]
    name = tok.type[len("container_"):-len("_open")]
    arg = tok.info.strip()[len(name):].strip()
    start, end = tok.map
    line = start + 1
    closed = end < len(lines) and lines[end].strip().startswith(":::") and not lines[end].strip(":").strip()
    if not closed:
        problems.append(Problem(rel, line, f"'::: {name}' is not closed: end it with a line holding only :::"))
    # The block's own top-level children, and the index after its close.
    j, children = i + 1, []
    while j < len(tokens):
        t = tokens[j]
        if t.type == tok.type.replace("_open", "_close") and t.level == tok.level:
            break
        if t.level == tok.level + 1 and t.map and t.nesting in (0, 1):
            children.append((t.map[0], t.map[1]))
        if t.type == "inline":
            _glossary_links(t, sec.glossary)
        if t.type.startswith("container_") and t.nesting == 1:
            problems.append(Problem(rel, t.map[0] + 1, f"blocks cannot be nested: close '::: {name}' first"))
        j += 1
    inner = "\n".join(lines[start + 1:end]).strip()
    if name == "hint":
        if not ID_RE.match(arg):
            problems.append(Problem(rel, line, "'::: hint' needs an id: ::: hint what-to-type"))
        elif arg in sec.hints:
            problems.append(Problem(rel, line, f"hint '{arg}' is written twice in this step"))
        elif not inner:
            problems.append(Problem(rel, line, f"hint '{arg}' is empty"))
        sec.hints[arg] = inner
    elif name == "quiz":
        if arg:
            problems.append(Problem(rel, line, "'::: quiz' takes no id: write the question inside"))
        if sec.question:
            problems.append(Problem(rel, line, "one quiz per step"))
        if not inner:
            problems.append(Problem(rel, line, "the quiz question is empty"))
        sec.question = inner
    else:
        if not ID_RE.match(arg):
            problems.append(Problem(rel, line, "'::: option' needs the option's id: ::: option right-one"))
        elif arg in sec.options:
            problems.append(Problem(rel, line, f"option '{arg}' is written twice"))
        first = children[0] if children else None
        text = "\n".join(lines[first[0]:first[1]]).strip() if first else ""
        explanation = "\n".join(lines[first[1]:end]).strip() if first else ""
        if not text:
            problems.append(Problem(rel, line, f"option '{arg}' is empty"))
        elif not explanation:
            problems.append(Problem(rel, line, f"option '{arg}' needs an explanation: a paragraph after "
                                               f"the choice saying why it is right or wrong"))
        sec.options[arg] = OptionText(text, explanation)
    sec.excluded.update(range(start, end + 1 if closed else end))
    return j + 1
