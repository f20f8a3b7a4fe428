"""``course check``: everything that can be wrong with a course, file:line each.

On top of what the loader finds (TOML and Markdown syntax, languages in
parity, step/hint/quiz ids, glossary links), this checks what only makes
sense with the engine's vocabulary in hand:

- every command is a docker command the engine can run (parsed by the
  engine's own parser; no image store or engine needed);
- every check is a known kind with valid arguments;
- setup commands are ``docker run --name NAME`` without a terminal,
  ``docker network create NAME`` or ``docker build -t NAME ...``;
- a check that names a container, or a network other than ``bridge``, can
  find it in a state the step can be opened in directly: the lesson's setup,
  the step's setup or the step's own commands must create it;
- an interactive command that "show me" runs says what to type, ending the
  session (``exit``), so the automated learner can finish it;
- a step's ``requires`` names checks that ``container-lab doctor`` makes
  (``cgroup.memory``, ``ns.time`` ...).
"""

from __future__ import annotations

from pathlib import Path

from engine.images.config import COURSE_REGISTRY

from .checks import validate as validate_check
from .docker import CommandError, Context, translate
from .docker import _parse as _parse_args
from .loader import read_course
from .model import Command, Course, Lesson, Problem, Step
from .requirements import known_ids


def check_course(root: Path | str) -> tuple[Course | None, list[Problem]]:
    """Read and validate the course at ``root``; returns it and every problem, in file order."""
    course, problems = read_course(Path(root))
    if course is not None:
        for lesson in course.lessons:
            problems += _check_lesson(course, lesson)
            for lang in course.languages:
                problems += _check_emphasis(lesson.path / f"{lang}.md", course.path.parent)
    return course, sorted(problems, key=lambda p: (p.file, p.line))


def _check_emphasis(path: Path, base: Path) -> list[Problem]:
    """Bold or italic markers that CommonMark leaves as they are: a closing
    ``**`` after punctuation and before a letter does not close, which is how
    Chinese text usually comes (``**目标：**在`` shows its asterisks; write
    ``**目标**：在``)."""
    from markdown_it import MarkdownIt

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []                  # the loader has said so already
    problems = []
    for token in MarkdownIt("commonmark").parse(text):
        for child in token.children or []:
            if child.type == "text" and ("**" in child.content or "__" in child.content):
                line = (token.map[0] + 1) if token.map else 0
                problems.append(Problem(str(path.relative_to(base)), line,
                                        "bold markers that will show as they are (CommonMark does not close "
                                        "`**` between punctuation and a letter: put the punctuation outside, "
                                        "as in **目标**：)"))
                break
    return problems


def _rel(course: Course, lesson: Lesson) -> str:
    return str((lesson.path / "lesson.toml").relative_to(course.path.parent))


def _parse(cmd: Command, rel: str, context: Context, problems: list[Problem]):
    try:
        return translate(cmd.text, context, check_only=True)
    except CommandError as e:
        problems.append(Problem(rel, cmd.line, f"command '{cmd.text}': {e}"))
        return None


def _check_lesson(course: Course, lesson: Lesson) -> list[Problem]:
    rel = _rel(course, lesson)
    problems: list[Problem] = []
    context = Context(course=course.id, lesson=lesson.id, images=(lesson.image, *lesson.images),
                      fallback=lesson.fallback, variables=(("PWD", "/"), ("REGISTRY", COURSE_REGISTRY)))
    lesson_names, lesson_networks = _setup_names(lesson.setup, rel, context, problems)
    known = known_ids()
    for step in lesson.steps:
        for rid in step.requires:
            if rid not in known:
                problems.append(Problem(rel, step.line, f"step '{step.id}': requires '{rid}', which is not a "
                                                        f"container-lab doctor check (they are: {', '.join(known)})"))
        step_names, step_networks = _setup_names(step.setup, rel, context, problems)
        names, networks = lesson_names | step_names, {"bridge"} | lesson_networks | step_networks
        for cmd in (*step.commands, *step.show):
            parsed = _parse(cmd, rel, context, problems)
            if parsed is None:
                continue
            if parsed.name:
                names.add(parsed.name)
            if parsed.network:
                networks.add(parsed.network)
            if cmd.type and not parsed.interactive:
                problems.append(Problem(rel, cmd.line, f"command '{cmd.text}': typed lines need -i "
                                                       f"(and -t for a terminal)"))
        for cmd in step.show_me:
            parsed = _parse(cmd, rel, context, [])
            if parsed is not None and parsed.terminal and parsed.interactive:
                if not cmd.type:
                    problems.append(Problem(rel, cmd.line, f"command '{cmd.text}' opens an interactive session: "
                                                           f"say what to type, e.g. {{ command = \"...\", "
                                                           f"type = [\"ls\", \"exit\"] }}"))
                elif cmd.type[-1].split()[0:1] not in (["exit"], ["logout"]):
                    problems.append(Problem(rel, cmd.line, f"command '{cmd.text}': end the typed lines "
                                                           f"with exit, so the session ends"))
        problems += _check_checks(step, rel, names, networks)
    return problems


def _setup_names(commands, rel: str, context: Context, problems: list[Problem]) -> tuple[set[str], set[str]]:
    """The containers and the networks that setup ``commands`` make."""
    names, networks = set(), set()
    for cmd in commands:
        parsed = _parse(cmd, rel, context, problems)
        if parsed is None:
            continue
        if parsed.network:
            networks.add(parsed.network)
        elif parsed.verb == "build" and _parse_args("build", list(parsed.argv[1:])).tag:
            continue                                  # an image, named: built again, from the cache
        elif parsed.verb != "run" or not parsed.name:
            problems.append(Problem(rel, cmd.line, f"setup '{cmd.text}': setup commands are "
                                                   f"'docker run --name NAME ...', 'docker network create NAME' or "
                                                   f"'docker build -t NAME ...', "
                                                   f"so the state they make has a name"))
        elif parsed.terminal:
            problems.append(Problem(rel, cmd.line, f"setup '{cmd.text}': setup cannot open a terminal (drop -t)"))
        else:
            names.add(parsed.name)
    return names, networks


def _check_checks(step: Step, rel: str, names: set[str], networks: set[str]) -> list[Problem]:
    problems = []
    for spec in step.checks:
        for message in validate_check(spec.kind, spec.args):
            problems.append(Problem(rel, spec.line, f"step '{step.id}': {message}"))
        for key in ("container", "other", "name"):
            ref = spec.args.get(key)
            if isinstance(ref, str) and ref != "host" and ref not in names:
                problems.append(Problem(rel, spec.line, f"step '{step.id}': check '{spec.kind}' names container "
                                                        f"'{ref}', but neither the lesson's setup, the step's "
                                                        f"setup nor its commands create it (run --name {ref})"))
        ref = spec.args.get("network")
        if isinstance(ref, str) and ref not in networks:
            problems.append(Problem(rel, spec.line, f"step '{step.id}': check '{spec.kind}' names network "
                                                    f"'{ref}', but neither the lesson's setup, the step's setup "
                                                    f"nor its commands create it (network create {ref})"))
    return problems
