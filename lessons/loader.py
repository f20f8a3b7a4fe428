"""Reading a course from disk: ``course.toml``, ``glossary.toml``, and per
lesson ``lesson.toml`` beside ``en.md`` / ``zh.md``.

The formats (the README's "Writing your own course" shows them whole):

- ``course.toml``: ``id``, ``title.en``, ``title.zh``, optional ``languages``.
- ``glossary.toml``: one table per term, ``[namespace]`` with
  ``en = { term = "...", definition = "..." }`` and the same for ``zh``.
- ``NN-slug/lesson.toml``: the language-neutral part -- ``image``,
  ``setup``, and ``[[steps]]`` with ``id``, ``commands``, ``show``,
  ``hints``, ``checks``, ``quiz``, ``setup``, ``requires``.
- ``NN-slug/en.md`` and ``zh.md``: ``# Title``, an introduction, then one
  ``## Step title {#step-id}`` section per step, holding its prose,
  ``::: hint ID`` blocks, and for a quiz a ``::: quiz`` block (the
  question) and one ``::: option ID`` block per option (its first paragraph
  is the choice, the rest explains it). ``[word](glossary:ID)`` links a term.

Nothing here raises on a bad course: every mistake becomes a
:class:`~lessons.model.Problem` naming ``file:line``, and the loader goes on
to find the next one. :func:`load_course` raises :class:`CourseError` (with
all the problems) only when asked for a usable course.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from .model import LANGS, CheckSpec, Command, Course, Lesson, OptionText, Problem, Quiz, Step, StepText, Term

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FOLDER_RE = re.compile(r"^(\d+)-([a-z0-9][a-z0-9-]*)$")
HEADING_ID_RE = re.compile(r"\s*\{#([^}\s]*)\}\s*$")
BLOCKS = ("hint", "quiz", "option")

LESSON_KEYS = {"id", "image", "images", "fallback", "setup", "steps"}
STEP_KEYS = {"id", "commands", "show", "hints", "checks", "quiz", "setup", "requires"}
QUIZ_KEYS = {"options", "answer", "multiple"}
COMMAND_KEYS = {"command", "type"}


class CourseError(Exception):
    """A course that cannot be used as it is; ``problems`` says why, file:line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        first = str(problems[0]) if problems else "invalid course"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


# -- TOML, with line numbers for what tomllib does not locate -----------------------

class TomlLines:
    """Where things are in a TOML file: tomllib gives values, not positions, so
    this scans the text for the lines of ``[[steps]]`` blocks and their keys.
    A position it cannot pin down falls back to the enclosing block's line."""

    HEADER = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.steps: list[tuple[int, int]] = []     # (first, last) 0-based, per [[steps]]
        top_end = len(self.lines)
        current = None
        for i, line in enumerate(self.lines):
            m = self.HEADER.match(line)
            if not m:
                continue
            top_end = min(top_end, i)
            name = m.group(2).replace(" ", "")
            if name == "steps" and m.group(1):
                if current is not None:
                    self.steps.append((current, i - 1))
                current = i
            elif not name.startswith("steps.") and current is not None:
                self.steps.append((current, i - 1))
                current = None
        if current is not None:
            self.steps.append((current, len(self.lines) - 1))
        self.top = (0, top_end - 1)

    def _find(self, span: tuple[int, int], pattern: str, nth: int = 0) -> int | None:
        rx = re.compile(pattern)
        seen = 0
        for i in range(span[0], min(span[1], len(self.lines) - 1) + 1):
            if rx.search(self.lines[i]):
                if seen == nth:
                    return i + 1
                seen += 1
        return None

    def key(self, name: str, step: int | None = None) -> int:
        """Line of ``name = ...`` at the top level or in step ``step``."""
        span = self.top if step is None else self._step_span(step)
        found = self._find(span, rf"^\s*{re.escape(name)}\s*=")
        return found or (span[0] + 1 if step is not None else 1)

    def step(self, step: int) -> int:
        return self._step_span(step)[0] + 1

    def _step_span(self, step: int) -> tuple[int, int]:
        return self.steps[step] if step < len(self.steps) else (0, len(self.lines) - 1)

    def check(self, step: int, nth: int) -> int:
        """Line of the ``nth`` check of step ``step`` (its header or its ``kind =``)."""
        span = self._step_span(step)
        return (self._find(span, r"^\s*\[\[\s*steps\s*\.\s*checks\s*\]\]", nth)
                or self._find((self.key("checks", step) - 1, span[1]), r"\bkind\s*=", nth)
                or self.key("checks", step))

    def item(self, key: str, step: int | None, value: str) -> int:
        """Line of a string ``value`` inside ``key = [...]`` (a command, a setup line)."""
        span = self.top if step is None else self._step_span(step)
        start = self.key(key, step) - 1
        for i in range(start, min(span[1], len(self.lines) - 1) + 1):
            if value and (f'"{value}"' in self.lines[i] or f"'{value}'" in self.lines[i]):
                return i + 1
        return start + 1


def _toml_error_line(err: tomllib.TOMLDecodeError) -> int:
    m = re.search(r"at line (\d+)", str(err))
    return int(m.group(1)) if m else 1


def read_toml(path: Path, root: Path, problems: list[Problem]) -> tuple[dict | None, TomlLines | None]:
    """Parse ``path``; a syntax error becomes a problem at its line."""
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(rel, 0, "file is missing"))
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        problems.append(Problem(rel, 0, f"cannot read: {e}"))
        return None, None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        problems.append(Problem(rel, _toml_error_line(e), f"invalid TOML: {message}"))
        return None, None
    return data, TomlLines(text)


# -- course.toml and glossary.toml ---------------------------------------------------

def _lang_table(value, rel: str, line: int, what: str, langs, problems) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.append(Problem(rel, line, f"{what} must be a table with one string per language: "
                                           f"{what}.en = \"...\", {what}.zh = \"...\""))
        return {}
    out = {}
    for lang in langs:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(rel, line, f"{what}.{lang} is missing or empty"))
        else:
            out[lang] = text.strip()
    for extra in sorted(set(value) - set(langs)):
        problems.append(Problem(rel, line, f"{what}.{extra}: unknown language (this course has "
                                           f"{', '.join(langs)})"))
    return out


def load_glossary(path: Path, root: Path, langs, problems: list[Problem]) -> dict[str, Term]:
    """``glossary.toml``: ``[ID]`` tables with ``en = { term, definition }`` per language."""
    if not path.exists():
        return {}
    data, lines = read_toml(path, root, problems)
    if data is None:
        return {}
    rel = _rel(path, root)
    terms = {}
    for tid, entry in data.items():
        line = lines._find((0, len(lines.lines) - 1), rf"^\s*\[\s*\"?{re.escape(tid)}\"?\s*[\].]") or 1
        if not ID_RE.match(tid):
            problems.append(Problem(rel, line, f"glossary id '{tid}': use lowercase letters, digits and -"))
        if not isinstance(entry, dict):
            problems.append(Problem(rel, line, f"glossary entry '{tid}' must be a table"))
            continue
        term, definition = {}, {}
        for lang in langs:
            item = entry.get(lang)
            if not isinstance(item, dict) or not isinstance(item.get("term"), str) \
                    or not isinstance(item.get("definition"), str) \
                    or not item["term"].strip() or not item["definition"].strip():
                problems.append(Problem(rel, line, f"glossary '{tid}': {lang} needs "
                                                   f"{{ term = \"...\", definition = \"...\" }}"))
                continue
            if "\n" in item["definition"].strip():
                problems.append(Problem(rel, line, f"glossary '{tid}': the {lang} definition must be one line"))
            term[lang], definition[lang] = item["term"].strip(), item["definition"].strip()
        for extra in sorted(set(entry) - set(langs)):
            problems.append(Problem(rel, line, f"glossary '{tid}': unknown key '{extra}'"))
        terms[tid] = Term(tid, term, definition)
    return terms


# -- lesson.toml ---------------------------------------------------------------------

def _commands(value, rel, line_of, what: str, problems, *, allow_type: bool = True) -> tuple[Command, ...]:
    """A list of commands: strings, or ``{ command = "...", type = ["...", ...] }``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(rel, line_of(None), f"{what} must be a list of commands"))
        return ()
    out = []
    for item in value:
        if isinstance(item, str):
            text, typed = item, ()
        elif isinstance(item, dict):
            text = item.get("command")
            typed = item.get("type", [])
            for extra in sorted(set(item) - COMMAND_KEYS):
                problems.append(Problem(rel, line_of(text), f"{what}: unknown key '{extra}' "
                                                            f"(a command has: command, type)"))
            if not isinstance(typed, list) or not all(isinstance(t, str) for t in typed):
                problems.append(Problem(rel, line_of(text), f"{what}: type must be a list of lines to type"))
                typed = []
            if typed and not allow_type:
                problems.append(Problem(rel, line_of(text), f"{what}: setup commands cannot take typed input"))
        else:
            text, typed = None, ()
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(rel, line_of(None), f"{what}: each command must be a non-empty string "
                                                        f"or {{ command = \"...\", type = [...] }}"))
            continue
        out.append(Command(text.strip(), tuple(typed), line_of(text)))
    return tuple(out)


def _str_list(value, rel, line, what, problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(rel, line, f"{what} must be a list of strings"))
        return ()
    return tuple(value)


def _quiz(value, rel, line, problems) -> Quiz | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem(rel, line, "quiz must be a table: options = [...], answer = [...]"))
        return None
    for extra in sorted(set(value) - QUIZ_KEYS):
        problems.append(Problem(rel, line, f"quiz: unknown key '{extra}' (a quiz has: options, answer, multiple)"))
    options = _str_list(value.get("options"), rel, line, "quiz options", problems)
    answer = value.get("answer")
    if isinstance(answer, str):
        answer = [answer]
    answer = _str_list(answer, rel, line, "quiz answer", problems)
    multiple = value.get("multiple", False)
    if not isinstance(multiple, bool):
        problems.append(Problem(rel, line, "quiz: multiple must be true or false"))
        multiple = False
    if len(options) < 2:
        problems.append(Problem(rel, line, "quiz: give at least two options"))
    if len(set(options)) != len(options):
        problems.append(Problem(rel, line, "quiz: option ids must be unique"))
    for opt in options:
        if not ID_RE.match(opt):
            problems.append(Problem(rel, line, f"quiz option id '{opt}': use lowercase letters, digits and -"))
    for a in answer:
        if a not in options:
            problems.append(Problem(rel, line, f"quiz answer '{a}' is not one of the options ({', '.join(options)})"))
    if not answer:
        problems.append(Problem(rel, line, "quiz: the answer is missing"))
    elif not multiple and len(answer) != 1:
        problems.append(Problem(rel, line, "quiz: a single-choice quiz has exactly one answer "
                                           "(or set multiple = true)"))
    elif multiple and set(answer) == set(options) and len(options) < 3:
        problems.append(Problem(rel, line, "quiz: every option is right, so nothing is asked"))
    return Quiz(tuple(options), frozenset(answer), multiple, line)


def _checks(value, rel, lines: TomlLines, index: int, problems) -> tuple[CheckSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(rel, lines.key("checks", index), "checks must be a list of tables"))
        return ()
    out = []
    for j, item in enumerate(value):
        line = lines.check(index, j)
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            problems.append(Problem(rel, line, "each check is a table with a kind: { kind = \"container-ran\", ... }"))
            continue
        args = {k: v for k, v in item.items() if k != "kind"}
        out.append(CheckSpec(item["kind"], args, line))
    return tuple(out)


def _lesson_toml(folder: Path, root: Path, problems: list[Problem]) -> dict | None:
    """The neutral part of a lesson, checked for shape; None if unreadable."""
    path = folder / "lesson.toml"
    data, lines = read_toml(path, root, problems)
    if data is None:
        return None
    rel = _rel(path, root)
    for extra in sorted(set(data) - LESSON_KEYS):
        problems.append(Problem(rel, lines.key(extra), f"unknown key '{extra}' "
                                                       f"(a lesson has: {', '.join(sorted(LESSON_KEYS))})"))
    m = FOLDER_RE.match(folder.name)
    lesson_id = data.get("id", m.group(2) if m else folder.name)
    if not isinstance(lesson_id, str) or not ID_RE.match(lesson_id):
        problems.append(Problem(rel, lines.key("id"), f"lesson id {lesson_id!r}: use lowercase letters, digits and -"))
    image = data.get("image", "lab")
    fallback = data.get("fallback", "lab")
    images = data.get("images", [])
    for key, value in (("image", image), ("fallback", fallback)):
        if not isinstance(value, str) or not value:
            problems.append(Problem(rel, lines.key(key), f"{key} must be an image name, like \"ubuntu\""))
    images = _str_list(images, rel, lines.key("images"), "images", problems)
    setup = _commands(data.get("setup"), rel, lambda v: lines.item("setup", None, v) if v else lines.key("setup"),
                      "setup", problems, allow_type=False)

    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(Problem(rel, lines.key("steps") if "steps" in data else 1,
                                "a lesson needs at least one [[steps]] table"))
        raw_steps = []
    steps, seen = [], set()
    for i, raw in enumerate(raw_steps):
        line = lines.step(i)
        if not isinstance(raw, dict):
            problems.append(Problem(rel, line, "each step must be a [[steps]] table"))
            continue
        for extra in sorted(set(raw) - STEP_KEYS):
            problems.append(Problem(rel, lines.key(extra, i), f"step: unknown key '{extra}' "
                                                              f"(a step has: {', '.join(sorted(STEP_KEYS))})"))
        sid = raw.get("id")
        if not isinstance(sid, str) or not ID_RE.match(sid):
            problems.append(Problem(rel, lines.key("id", i), f"step id {sid!r}: use lowercase letters, digits and -"))
            continue
        if sid in seen:
            problems.append(Problem(rel, lines.key("id", i), f"step id '{sid}' is used twice"))
            continue
        seen.add(sid)

        def line_of(value, key, _i=i):
            return lines.item(key, _i, value) if value else lines.key(key, _i)
        commands = _commands(raw.get("commands"), rel, lambda v: line_of(v, "commands"), "commands", problems)
        show = _commands(raw.get("show"), rel, lambda v: line_of(v, "show"), "show", problems)
        step_setup = _commands(raw.get("setup"), rel, lambda v: line_of(v, "setup"), "setup", problems,
                               allow_type=False)
        hints = _str_list(raw.get("hints"), rel, lines.key("hints", i), "hints", problems)
        requires = _str_list(raw.get("requires"), rel, lines.key("requires", i), "requires", problems)
        for h in hints:
            if not ID_RE.match(h):
                problems.append(Problem(rel, lines.key("hints", i), f"hint id '{h}': use lowercase letters, digits and -"))
        if len(set(hints)) != len(hints):
            problems.append(Problem(rel, lines.key("hints", i), "hint ids must be unique"))
        quiz_line = lines._find(lines._step_span(i), r"^\s*(\[\s*steps\s*\.\s*quiz\s*\]|quiz\s*=)") or line
        quiz = _quiz(raw.get("quiz"), rel, quiz_line, problems)
        checks = _checks(raw.get("checks"), rel, lines, i, problems)
        if checks and not hints:
            problems.append(Problem(rel, line, f"step '{sid}' has checks but no hints: give at least one"))
        if checks and not (commands or show):
            problems.append(Problem(rel, line, f"step '{sid}' has checks but no commands: "
                                               f"\"show me\" would have nothing to do"))
        steps.append(Step(sid, commands, show, hints, checks, quiz, step_setup, {}, line, requires))
    return {"id": lesson_id, "image": image, "images": images, "fallback": fallback, "setup": setup,
            "steps": steps, "rel": rel}


# -- en.md / zh.md -------------------------------------------------------------------

def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.container import container_plugin

    md = MarkdownIt("commonmark")
    for name in BLOCKS:
        container_plugin(md, name)
    return md


class _Section:
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
    rel = _rel(path, root)
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
    intro = _Section("", None, 1)
    sections: list[_Section] = []
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
                current = _Section(text[:m.start()].strip() if m else text.strip(), sid, line)
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


def _read_block(tokens, i: int, lines: list[str], rel: str, sec: _Section, problems) -> int:
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


# -- the course ----------------------------------------------------------------------

def lesson_folders(root: Path) -> list[Path]:
    """The lesson folders of a course, in order: ``NN-slug`` folders with a lesson.toml."""
    return sorted((p for p in root.iterdir() if p.is_dir() and FOLDER_RE.match(p.name)),
                  key=lambda p: (int(FOLDER_RE.match(p.name).group(1)), p.name))


def read_course(root: Path) -> tuple[Course | None, list[Problem]]:
    """Everything that can be read of the course at ``root``, and every problem found."""
    root = Path(root).resolve()
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(str(root), 0, "not a folder")]
    meta, lines = read_toml(root / "course.toml", root, problems)
    meta = meta or {}
    rel = _rel(root / "course.toml", root)
    langs = meta.get("languages", list(LANGS))
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) and x in LANGS for x in langs):
        problems.append(Problem(rel, lines.key("languages") if lines else 0,
                                f"languages must be a list drawn from {', '.join(LANGS)}"))
        langs = list(LANGS)
    langs = tuple(langs)
    course_id = meta.get("id", root.name)
    if not isinstance(course_id, str) or not ID_RE.match(course_id):
        problems.append(Problem(rel, lines.key("id") if lines else 0,
                                f"course id {course_id!r}: use lowercase letters, digits and -"))
        course_id = "course"
    title = _lang_table(meta.get("title"), rel, lines.key("title") if lines else 0, "title", langs, problems) \
        if lines else {}
    for extra in sorted(set(meta) - {"id", "title", "languages"}):
        problems.append(Problem(rel, lines.key(extra), f"unknown key '{extra}' (a course has: id, title, languages)"))
    glossary = load_glossary(root / "glossary.toml", root, langs, problems)

    lessons: list[Lesson] = []
    ids: dict[str, str] = {}
    folders = lesson_folders(root)
    if not folders:
        problems.append(Problem(_rel(root, root), 0, "no lessons: add folders named like 01-first-lesson "
                                                     "holding lesson.toml, en.md and zh.md"))
    for folder in folders:
        lesson = _read_lesson(folder, root, langs, glossary, problems)
        if lesson is None:
            continue
        if lesson.id in ids:
            problems.append(Problem(_rel(folder / "lesson.toml", root), 1,
                                    f"lesson id '{lesson.id}' is also used by {ids[lesson.id]}"))
            continue
        ids[lesson.id] = folder.name
        lessons.append(lesson)
    course = Course(course_id, root, title, langs, tuple(lessons), glossary)
    return course, problems


def _read_lesson(folder: Path, root: Path, langs, glossary, problems) -> Lesson | None:
    neutral = _lesson_toml(folder, root, problems)
    if neutral is None:
        for lang in langs:           # still report the prose's own mistakes
            parse_prose(folder / f"{lang}.md", root, problems)
        return None
    steps: list[Step] = neutral["steps"]
    by_id = {s.id: s for s in steps}
    texts: dict[str, dict[str, StepText]] = {s.id: {} for s in steps}
    title, intro = {}, {}
    for lang in langs:
        path = folder / f"{lang}.md"
        rel = _rel(path, root)
        parsed = parse_prose(path, root, problems)
        if parsed is None:
            continue
        title[lang], intro[lang], intro_sec, sections, src_lines = parsed
        prose_ids = [s.step_id for s in sections if s.step_id]
        toml_ids = [s.id for s in steps]
        for sec in sections:
            if sec.step_id and sec.step_id not in by_id:
                problems.append(Problem(rel, sec.line, f"step '{sec.step_id}' is not in {neutral['rel']} "
                                                       f"(its steps: {', '.join(toml_ids) or 'none'})"))
        for sid in toml_ids:
            if sid not in prose_ids:
                problems.append(Problem(rel, 1, f"step '{sid}' of {neutral['rel']} has no "
                                                f"'## Title {{#{sid}}}' section here"))
        common = [s for s in prose_ids if s in by_id]
        if common != [s for s in toml_ids if s in prose_ids]:
            problems.append(Problem(rel, 1, f"steps are in a different order than in {neutral['rel']}: "
                                            f"{', '.join(common)}"))
        for sec in sections:
            step = by_id.get(sec.step_id or "")
            if step is None:
                continue
            _check_section(step, sec, rel, glossary, problems)
            texts[step.id][lang] = StepText(sec.title, sec.body,
                                            dict(sec.hints), sec.question, dict(sec.options),
                                            tuple(g for g, _ in sec.glossary), sec.line)
        for gid, line in intro_sec.glossary:
            if gid not in glossary:
                problems.append(Problem(rel, line, f"glossary term '{gid}' is not in glossary.toml"))
    steps = [dataclasses.replace(s, text=texts[s.id]) for s in steps]
    return Lesson(neutral["id"], folder.name, folder, neutral["image"], neutral["images"], neutral["fallback"],
                  neutral["setup"], tuple(steps), title, intro)


def _check_section(step: Step, sec: _Section, rel: str, glossary, problems) -> None:
    """One language's section of a step against the step's neutral part."""
    for hid in step.hints:
        if hid not in sec.hints:
            problems.append(Problem(rel, sec.line, f"step '{step.id}': hint '{hid}' has no '::: hint {hid}' block"))
    for hid in sec.hints:
        if hid not in step.hints:
            problems.append(Problem(rel, sec.line, f"step '{step.id}': hint '{hid}' is not listed in "
                                                   f"the step's hints in lesson.toml"))
    if step.hints and step.commands:
        first = sec.hints.get(step.hints[0], "")
        for cmd in step.commands:
            if cmd.text in first:
                problems.append(Problem(rel, sec.line, f"step '{step.id}': the first hint gives the whole "
                                                       f"command away; start with a nudge"))
    if step.quiz is None:
        if sec.question or sec.options:
            problems.append(Problem(rel, sec.line, f"step '{step.id}' has a quiz here but none in lesson.toml"))
    else:
        if not sec.question:
            problems.append(Problem(rel, sec.line, f"step '{step.id}': the quiz needs a '::: quiz' block "
                                                   f"with the question"))
        if set(sec.options) != set(step.quiz.options):
            missing = [o for o in step.quiz.options if o not in sec.options]
            extra = [o for o in sec.options if o not in step.quiz.options]
            detail = "; ".join(x for x in (f"missing: {', '.join(missing)}" if missing else "",
                                            f"not in lesson.toml: {', '.join(extra)}" if extra else "") if x)
            problems.append(Problem(rel, sec.line, f"step '{step.id}': quiz options differ from lesson.toml ({detail})"))
    if not sec.body and not sec.question:
        problems.append(Problem(rel, sec.line, f"step '{step.id}' has no text"))
    for gid, line in sec.glossary:
        if gid not in glossary:
            problems.append(Problem(rel, line, f"glossary term '{gid}' is not in glossary.toml"))


def load_course(root: Path | str | None = None) -> Course:
    """The course at ``root`` (default: the shipped ``content/``), validated as
    ``course check`` does; raises :class:`CourseError` listing every problem."""
    from .validate import check_course

    if root is None:
        from .content import content_dir
        root = content_dir()
    course, problems = check_course(Path(root))
    if problems or course is None:
        raise CourseError(problems)
    return course
