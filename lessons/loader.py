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

Where each part is read:

- this module -- the course: its lesson folders found and read in order,
  ``course.toml``, ``glossary.toml``, each lesson's neutral part and prose
  put together and checked against each other (steps, hints, quiz options,
  glossary terms);
- :mod:`lessons.lesson_toml` -- a lesson's ``lesson.toml``;
- :mod:`lessons.lesson_prose` -- a lesson's ``en.md`` / ``zh.md``;
- :mod:`lessons.course_files` -- what they share: ids, folder names, paths as
  problems name them, TOML with line numbers.

What needs more than the files (commands that translate, checks that exist,
container names) is :mod:`lessons.validate`'s.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .course_files import FOLDER_RE, ID_RE, read_toml, rel_path
from .lesson_prose import Section, parse_prose
from .lesson_toml import read_lesson_toml
from .model import LANGS, Course, Lesson, Problem, Step, StepText, Term


class CourseError(Exception):
    """A course that cannot be used as it is; ``problems`` says why, file:line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        first = str(problems[0]) if problems else "invalid course"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


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
    rel = rel_path(path, root)
    terms = {}
    for tid, entry in data.items():
        line = lines.find((0, len(lines.lines) - 1), rf"^\s*\[\s*\"?{re.escape(tid)}\"?\s*[\].]") or 1
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
    rel = rel_path(root / "course.toml", root)
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
        problems.append(Problem(rel_path(root, root), 0, "no lessons: add folders named like 01-first-lesson "
                                                     "holding lesson.toml, en.md and zh.md"))
    for folder in folders:
        lesson = _read_lesson(folder, root, langs, glossary, problems)
        if lesson is None:
            continue
        if lesson.id in ids:
            problems.append(Problem(rel_path(folder / "lesson.toml", root), 1,
                                    f"lesson id '{lesson.id}' is also used by {ids[lesson.id]}"))
            continue
        ids[lesson.id] = folder.name
        lessons.append(lesson)
    course = Course(course_id, root, title, langs, tuple(lessons), glossary)
    return course, problems


def _read_lesson(folder: Path, root: Path, langs, glossary, problems) -> Lesson | None:
    neutral = read_lesson_toml(folder, root, problems)
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
        rel = rel_path(path, root)
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
                  neutral["setup"], tuple(steps), title, intro, neutral["files"])


def _check_section(step: Step, sec: Section, rel: str, glossary, problems) -> None:
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
