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
  (``cgroup.memory``, ``ns.time`` ...);
- a step checks what its commands teach: a ``run --explain`` needs a
  ``container-ran`` check with ``explained = true``, a ``docker diff`` a
  ``diff-read`` check, a ``docker rm NAME`` a ``container-removed`` check of
  NAME (a stopped container would pass a ``container-running`` check), and
  a ``--timens`` or ``--userns private`` run a ``requires`` of ``ns.time`` or
  ``userns.private`` (the run fails where the kernel lacks them);
- a hint between a step's first and its last does not give one of its
  commands whole (the loader says so of the first): the middle hints lead,
  the last one (and "show me") gives the command.
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
        problems += _check_taught(step, rel, context)
        problems += _check_hints(course, lesson, step)
    return problems


# What a command teaches, and the check (or requirement) that shows the learner did it.
_REQUIRES = {"timens": "ns.time", "userns": "userns.private"}


def _taught(cmd: Command, context: Context) -> dict:
    """What ``cmd`` teaches that a check must see: {"explain": True, "diff": True,
    "rm": [names], "timens": True, "userns": True} (only the keys that apply)."""
    from .docker import _parse

    try:
        parsed = translate(cmd.text, context, check_only=True)
    except CommandError:
        return {}
    out: dict = {}
    if parsed.verb == "run":
        args = _parse("run", list(parsed.argv[1:]))
        if args.explain:
            out["explain"] = True
        if args.timens or args.clock_offset:
            out["timens"] = True
        if args.userns_mode == "private":
            out["userns"] = True
    elif parsed.verb == "diff":
        out["diff"] = True
    elif parsed.verb == "rm":
        out["rm"] = list(_parse("rm", list(parsed.argv[1:])).containers)
    return out


def _check_taught(step: Step, rel: str, context: Context) -> list[Problem]:
    """A step whose checks never look at what its commands teach (see the module docstring)."""
    problems = []
    kinds = {spec.kind for spec in step.checks}
    explained = any(spec.kind == "container-ran" and spec.args.get("explained") is True for spec in step.checks)
    removed = {spec.args.get("container") for spec in step.checks if spec.kind == "container-removed"}
    for cmd in step.commands:
        taught = _taught(cmd, context)
        if taught.get("explain") and not explained:
            problems.append(Problem(rel, cmd.line, f"step '{step.id}': '{cmd.text}' teaches --explain, but no "
                                                   f"check requires it: add explained = true to a "
                                                   f"container-ran check"))
        if taught.get("diff") and "diff-read" not in kinds:
            problems.append(Problem(rel, cmd.line, f"step '{step.id}': '{cmd.text}' teaches docker diff, but no "
                                                   f"check looks for it: add a diff-read check"))
        for name in taught.get("rm", ()):
            if name not in removed:
                problems.append(Problem(rel, cmd.line, f"step '{step.id}': '{cmd.text}' removes {name}, but no "
                                                       f"check requires it gone: add {{ kind = "
                                                       f"\"container-removed\", container = \"{name}\" }}"))
        for flag, rid in _REQUIRES.items():
            if taught.get(flag) and rid not in step.requires:
                problems.append(Problem(rel, cmd.line, f"step '{step.id}': '{cmd.text}' needs what "
                                                       f"'container-lab doctor' calls {rid}: add "
                                                       f"requires = [\"{rid}\"] (the step is explained, "
                                                       f"not run, where the machine lacks it)"))
    return problems


def _words(text: str) -> str:
    return " ".join(text.replace("`", " ").split())


def _check_hints(course: Course, lesson: Lesson, step: Step) -> list[Problem]:
    """A hint between the first and the last that gives a whole command of the
    step (the loader already refuses a first hint that does, as "start with a
    nudge"; here backquotes and line breaks do not hide a command either)."""
    problems = []
    commands = [_words(c.text) for c in (*step.commands, *step.show)]
    commands = [c for c in commands if len(c.split()) > 2]          # "docker ps" gives nothing away
    for lang in course.languages:
        text = step.text.get(lang)
        if text is None:
            continue
        rel = str((lesson.path / f"{lang}.md").relative_to(course.path.parent))
        for hint_id in step.hints[1:-1]:
            body = _words(text.hints.get(hint_id, ""))
            for command in commands:
                if command in body:
                    problems.append(Problem(rel, text.line, f"step '{step.id}': hint '{hint_id}' gives the "
                                                            f"command '{command}' whole: a hint before the "
                                                            f"last leads the learner to it; the last hint (or "
                                                            f"show me) gives it"))
                    break
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
