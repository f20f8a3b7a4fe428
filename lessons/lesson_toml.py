"""A lesson's ``lesson.toml``: its language-neutral part -- ``image``,
``setup``, ``files`` (written into the lesson's folder, where its commands
run: a Dockerfile to build) and the ``[[steps]]`` with their commands, show
me, hints, checks, quiz, setup and ``requires`` -- checked for shape, every
mistake a :class:`~lessons.model.Problem` at its line.

The prose that goes with it is :mod:`lessons.lesson_prose`'s; the two are
put together, and checked against each other, by :mod:`lessons.loader`.
"""

from __future__ import annotations

from pathlib import Path

from .course_files import FOLDER_RE, ID_RE, TomlLines, read_toml, rel_path
from .model import CheckSpec, Command, Problem, Quiz, Step

LESSON_KEYS = {"id", "image", "images", "fallback", "setup", "steps", "files"}
MAX_FILE = 64 * 1024         # a lesson's file is a Dockerfile or a few lines of text
STEP_KEYS = {"id", "commands", "show", "hints", "checks", "quiz", "setup", "requires"}
QUIZ_KEYS = {"options", "answer", "multiple"}
COMMAND_KEYS = {"command", "type"}


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


def _files(value, rel, line: int, problems) -> tuple[tuple[str, str], ...]:
    """``[files]``: a relative path inside the lesson's folder -> its text."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        problems.append(Problem(rel, line, 'files must be a table: "Dockerfile" = """..."""'))
        return ()
    out = []
    for name, text in value.items():
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
            problems.append(Problem(rel, line, f"file {name!r}: a relative path inside the lesson's folder, "
                                               f"without . or .."))
        elif not isinstance(text, str):
            problems.append(Problem(rel, line, f"file {name!r}: its content must be a string"))
        elif len(text.encode()) > MAX_FILE:
            problems.append(Problem(rel, line, f"file {name!r}: larger than {MAX_FILE >> 10} KiB"))
        else:
            out.append((name, text))
    return tuple(out)


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


def read_lesson_toml(folder: Path, root: Path, problems: list[Problem]) -> dict | None:
    """The neutral part of a lesson, checked for shape; None if unreadable."""
    path = folder / "lesson.toml"
    data, lines = read_toml(path, root, problems)
    if data is None:
        return None
    rel = rel_path(path, root)
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
        quiz_line = lines.find(lines.step_span(i), r"^\s*(\[\s*steps\s*\.\s*quiz\s*\]|quiz\s*=)") or line
        quiz = _quiz(raw.get("quiz"), rel, quiz_line, problems)
        checks = _checks(raw.get("checks"), rel, lines, i, problems)
        if checks and not hints:
            problems.append(Problem(rel, line, f"step '{sid}' has checks but no hints: give at least one"))
        if checks and not (commands or show):
            problems.append(Problem(rel, line, f"step '{sid}' has checks but no commands: "
                                               f"\"show me\" would have nothing to do"))
        steps.append(Step(sid, commands, show, hints, checks, quiz, step_setup, {}, line, requires))
    files = _files(data.get("files"), rel, lines.find((0, len(lines.lines) - 1), r"^\s*\[\s*files\s*\]")
                   or lines.key("files"), problems)
    return {"id": lesson_id, "image": image, "images": images, "fallback": fallback, "setup": setup,
            "steps": steps, "rel": rel, "files": files}
