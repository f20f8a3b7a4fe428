"""Docker commands, as the source material writes them, mapped onto the engine.

``docker run ubuntu echo Hello World`` becomes the engine CLI's
``run --label course=... ubuntu echo Hello World`` -- which pulls ``ubuntu``
first if it is not in the store and a registry has it (Docker Hub, or a
classroom's mirror named in registries.toml). When none can give it (an
offline machine), ``lab`` runs in place of ``ubuntu``, and the learner is told
why, in their language: the registry cannot be reached, or it does not have
the image. Flags are passed through
unchanged -- the engine's own parser (``engine.cli.VERBS``) checks them, so a
flag the engine gains (``--pid host``, ``--network none`` ...) works here at
once -- and a docker feature the engine lacks gets a one-line message in the
learner's language instead of a usage dump.

:func:`translate` is pure apart from one look into the image store and, for
a lesson's image that is not there, one quick question to the registry (for
the fallback; :class:`lessons.lab.Lab` asks once per lesson), both of which
``check_only=True`` skips; it is safe from any thread.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, field, replace

from .i18n import msg

# docker verb (or "group verb") -> the engine's verb.
ALIASES = {
    "container ls": "ps", "container list": "ps", "container ps": "ps", "image ls": "images",
    "image list": "images", "image pull": "pull", "image history": "history", "image inspect": "image inspect",
    "image rm": "rmi", "container prune": "container prune", "image tag": "tag", "image push": "push",
    "image import": "import", "image load": "load", "image save": "save",
    "image build": "build", "container commit": "commit",
}
for _v in ("run", "exec", "rm", "stop", "start", "kill", "logs", "inspect", "top", "diff", "wait", "create",
           "export", "stats"):
    ALIASES[f"container {_v}"] = _v

# Docker's own commands (``docker --help``, ``docker container --help``, ``docker image --help``):
# one of these that the engine lacks is "not available yet"; any other word is no docker
# command at all, and the nearest verb that works here is suggested, as docker does.
DOCKER_VERBS = frozenset(
    "attach build builder buildx checkpoint commit compose config container context cp create debug diff "
    "events exec export history image images import info init inspect kill load login logout logs manifest "
    "network node pause plugin port ps pull push rename restart rm rmi run save scout search secret service "
    "stack start stats stop swarm system tag top trust unpause update version volume wait".split())
DOCKER_GROUP_VERBS = {
    "container": frozenset("attach commit cp create diff exec export inspect kill logs ls list ps pause port "
                           "prune rename restart rm run start stats stop top unpause update wait".split()),
    "image": frozenset("build history import inspect load ls list prune pull push rm save tag".split()),
}

# docker run flags the engine does not have, and what they are for.
UNSUPPORTED_FLAGS = {
    "--privileged": "privileged", "--cap-add": "caps", "--cap-drop": "caps",
    "--mount": "mount", "--restart": "restart", "--platform": "platform", "--entrypoint": "entrypoint",
    "--device": "device", "--link": "network", "--add-host": "network",
    "--dns": "network", "--gpus": "device", "--log-driver": "logging", "--read-only": "readonly",
    "--ulimit": "ulimit", "--cpuset-cpus": "cpuset", "--memory-reservation": "reservation",
    "--tmpfs": "mount", "--expose": "port", "--env-file": "envfile",
}

LABEL_COURSE, LABEL_LESSON, LABEL_STEP = "course", "course.lesson", "course.step"
LABEL_ORIGIN, LABEL_IMAGE = "course.origin", "course.image-requested"
ORIGINS = ("setup", "show", "learner", "solve")


class CommandError(Exception):
    """A command that cannot run as written; the message is for the learner."""


@dataclass(frozen=True)
class Context:
    """Where a command is run from: the labels its containers get, the images
    the lesson may fall back from, and the learner's language."""

    course: str = ""
    lesson: str = ""
    step: str = ""
    origin: str = "learner"
    images: tuple[str, ...] = ()       # the lesson's images: missing ones fall back
    fallback: str = "lab"
    lang: str = "en"
    cwd: str | None = None              # the lesson's folder: commands run there (relative paths)
    variables: tuple[tuple[str, str], ...] = ()     # $NAME -> value in the words ($PWD, $REGISTRY)

    def labels(self) -> dict[str, str]:
        """The labels a container started here gets (none outside a course)."""
        if not self.course:
            return {}
        out = {LABEL_COURSE: self.course, LABEL_LESSON: self.lesson, LABEL_STEP: self.step,
               LABEL_ORIGIN: self.origin}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class EngineCommand:
    """A docker command translated: the engine CLI's arguments and how to run them."""

    source: str
    verb: str
    argv: tuple[str, ...] = ()
    terminal: bool = False          # needs a pseudo-terminal (-t, or start -a)
    interactive: bool = False       # reads standard input (-i)
    detach: bool = False
    name: str | None = None         # run --name
    network: str | None = None      # the network a ``network create`` makes
    image: str | None = None        # the image asked for (run)
    image_used: str | None = None   # the image that runs (after the fallback)
    notices: tuple[str, ...] = ()   # said to the learner before it runs
    output: str | None = None       # a command answered here, without the engine
    labels: dict = field(default_factory=dict)
    explain: bool = False           # run --explain: started one stage at a time
    explain_lang: str | None = None  # the --lang the learner gave it (None: the learner's language)
    cwd: str | None = None          # where it runs (the lesson's folder; None: /)


class _Raising(argparse.ArgumentParser):
    """The engine's parsers, made to raise instead of printing and exiting."""

    def error(self, message):
        raise CommandError(message)

    def exit(self, status=0, message=None):
        raise CommandError(message or "")


def engine_verbs() -> set[str]:
    from engine.cli import VERBS
    return set(VERBS)


def _parse(verb: str, args: list[str]) -> argparse.Namespace:
    """Parse ``verb ARGS`` with the engine's own parser for that verb."""
    from engine.cli import VERBS

    root = _Raising(prog="docker", add_help=False)
    sub = root.add_subparsers(dest="verb", parser_class=_Raising)
    VERBS[verb][1](sub, "")
    return root.parse_args([verb, *args])


def split(text: str, lang: str = "en") -> list[str]:
    """Shell words of ``text`` (quotes as a shell reads them)."""
    try:
        words = shlex.split(text, comments=False)
    except ValueError as e:
        raise CommandError(msg(lang, "cmd.quote", error=str(e))) from None
    if not words:
        raise CommandError(msg(lang, "cmd.empty"))
    return words


def normalize_image(ref: str) -> str:
    """``ubuntu`` -> ``ubuntu:latest`` (as the engine's store names it); bad refs unchanged."""
    try:
        from engine.images.reference import normalize_reference
        return normalize_reference(ref)
    except Exception:  # noqa: BLE001 - a bad reference is the engine's to report
        return ref


def image_in_store(ref: str) -> bool:
    """True when the engine's image store has ``ref`` (``lab`` always: it is built on demand)."""
    from engine import errors, paths
    from engine.images.store import ImageStore

    if normalize_image(ref) == "lab:latest":
        return True
    try:
        ImageStore(paths.data_dir() / "images").resolve(ref)
        return True
    except errors.EngineError:
        return False


def registry_has(ref: str) -> tuple[str, str]:
    """Whether a registry could give ``ref`` now: ("available", where),
    ("absent", registries asked), ("unreachable", registries asked), or
    ("settings", the error) when the registry settings cannot be read."""
    from engine import errors
    from engine.images.pull import probe

    try:
        return probe(ref)
    except errors.EngineError as e:
        return "settings", str(e)


_VARIABLE = re.compile(r"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")


def expand(words: list[str], variables) -> list[str]:
    """``$NAME`` and ``${NAME}`` in ``words`` replaced, for the names ``variables``
    gives (a shell's way, for the few a lesson knows: ``$PWD``, its folder;
    ``$REGISTRY``, the course's registry); any other ``$`` is left as it is."""
    values = dict(variables)
    if not values:
        return words

    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))
    return [_VARIABLE.sub(one, w) if "$" in w else w for w in words]


def translate(text: str, context: Context = Context(), *, check_only: bool = False,
              has_image=image_in_store, can_pull=registry_has) -> EngineCommand:
    """Map one docker command line onto the engine; raises :class:`CommandError`.

    ``check_only``: parse and validate, but do not look into the image store
    (nor ask a registry). ``can_pull(ref)``: as :func:`registry_has`. The
    command runs in ``context.cwd`` (its ``cwd``), with ``context.variables``
    put in its words."""
    cmd = _translate(text, context, check_only, has_image, can_pull)
    return replace(cmd, cwd=context.cwd) if context.cwd else cmd


def _translate(text: str, context: Context, check_only: bool, has_image, can_pull) -> EngineCommand:
    lang = context.lang
    words = expand(split(text, lang), context.variables)
    if words[0] not in ("docker", "container-lab"):
        raise CommandError(msg(lang, "cmd.not_docker", word=words[0]))
    words = words[1:]
    if not words:
        raise CommandError(msg(lang, "cmd.no_verb"))
    if words[0].startswith("-") and words[0] not in ("--help", "-h"):
        raise CommandError(msg(lang, "cmd.global_flag", flag=words[0]))
    verb, rest = words[0], words[1:]
    if verb in ("--help", "-h", "help"):
        return EngineCommand(text, "help", ("--help",))
    available = engine_verbs()
    if rest and f"{verb} {rest[0]}" in ALIASES:
        verb, rest = ALIASES[f"{verb} {rest[0]}"], rest[1:]
    elif verb in DOCKER_GROUP_VERBS:
        if rest and rest[0] not in DOCKER_GROUP_VERBS[verb] and not rest[0].startswith("-"):
            known = [a.split(" ", 1)[1] for a in ALIASES if a.startswith(verb + " ")]
            raise CommandError(_not_a_command(f"{verb} {rest[0]}", rest[0], known, lang, prefix=verb + " "))
        raise CommandError(msg(lang, "cmd.unsupported_verb", verb=" ".join(words[:2])))
    elif verb not in DOCKER_VERBS and verb not in available:
        raise CommandError(_not_a_command(verb, verb, [*available, *DOCKER_GROUP_VERBS], lang))
    if verb == "image inspect":
        if "image" not in available:
            raise CommandError(msg(lang, "cmd.unsupported_verb", verb="image inspect"))
        return EngineCommand(text, verb, ("image", "inspect", *rest))
    if verb == "container prune":
        return EngineCommand(text, verb, ("container", "prune", *rest))
    if verb not in available:
        raise CommandError(msg(lang, "cmd.unsupported_verb", verb=verb))
    if "--help" in rest:
        return EngineCommand(text, verb, (verb, *rest))
    if verb == "run":
        return _run(text, rest, context, check_only, has_image, can_pull)
    args = _parse_or_explain(verb, rest, lang)
    if verb == "network" and args.network_verb == "create":
        return EngineCommand(text, verb, (verb, *rest), network=args.name)
    # The course shows a command's output as text and gives it no input:
    # an archive goes to a file and comes from one.
    if verb == "save" and not getattr(args, "output", None):
        raise CommandError(msg(lang, "cmd.save_to_file"))
    if verb == "load" and not getattr(args, "input", None):
        raise CommandError(msg(lang, "cmd.load_from_file"))
    if verb == "export" and not getattr(args, "output", None):
        raise CommandError(msg(lang, "cmd.export_to_file"))
    if verb == "stats" and not args.no_stream:
        raise CommandError(msg(lang, "cmd.stats_no_stream"))
    if verb == "import" and getattr(args, "file", None) == "-":
        raise CommandError(msg(lang, "cmd.import_from_file"))
    terminal = bool(getattr(args, "tty", False)) or (verb == "start" and (args.attach or args.interactive))
    return EngineCommand(text, verb, (verb, *rest), terminal=terminal,
                         interactive=bool(getattr(args, "interactive", False)),
                         detach=bool(getattr(args, "detach", False)))


def _not_a_command(what: str, word: str, verbs, lang: str, prefix: str = "") -> str:
    """docker's answer to a word that is none of its commands, with the nearest
    one that works here (``docker exce`` -> did you mean ``docker exec``?)."""
    import difflib

    text = msg(lang, "cmd.not_a_command", verb=what)
    near = difflib.get_close_matches(word, sorted(set(verbs)), n=3, cutoff=0.5)
    # A verb as long as the word first: a key hit in its place or two swapped (rum: run, not rm).
    near = [v for v in near if len(v) == len(word)] or near
    if near:
        text += msg(lang, "cmd.did_you_mean", command=f"docker {prefix}{near[0]}")
    return text


def _parse_or_explain(verb: str, rest: list[str], lang: str) -> argparse.Namespace:
    try:
        return _parse(verb, rest)
    except CommandError as e:
        flags = [w.split("=", 1)[0] for w in rest if w.startswith("-")]
        for flag in flags:
            if flag in UNSUPPORTED_FLAGS:
                raise CommandError(msg(lang, "cmd.unsupported_flag", verb=verb, flag=flag,
                                       why=msg(lang, f"flag.{UNSUPPORTED_FLAGS[flag]}"))) from None
        raise CommandError(msg(lang, "cmd.invalid", verb=verb, error=str(e).strip())) from None


def _run(text: str, rest: list[str], context: Context, check_only: bool, has_image, can_pull) -> EngineCommand:
    lang = context.lang
    args = _parse_or_explain("run", rest, lang)
    at = len(rest) - len(args.command) - 1
    if at < 0 or rest[at] != args.image:
        raise CommandError(msg(lang, "cmd.invalid", verb="run", error="cannot find the image name"))
    requested = args.image
    image, notices = requested, []
    labels = context.labels()
    if not check_only and _is_lesson_image(requested, context) and not has_image(requested):
        state, where = can_pull(requested)
        if state != "available":         # else the engine pulls it, as docker would
            image = context.fallback
            labels[LABEL_IMAGE] = requested
            notices.append(msg(lang, f"notice.fallback.{state}", image=requested, fallback=image,
                               registry=where, error=where))
    extra: list[str] = []
    for key, value in labels.items():
        extra += ["--label", f"{key}={value}"]
    if args.explain and not args.lang:
        extra += ["--lang", lang]           # the explanation in the learner's language
    argv = ("run", *rest[:at], *extra, image, *rest[at + 1:])
    return EngineCommand(text, "run", argv, terminal=bool(args.tty), interactive=bool(args.interactive),
                         detach=bool(args.detach), name=args.name, image=requested, image_used=image,
                         notices=tuple(notices), labels=labels, explain=bool(args.explain),
                         explain_lang=args.lang)


def run_config(cmd: EngineCommand):
    """The engine's :class:`~engine.spec.ContainerConfig` for a translated ``run``
    -- the one the CLI would build from ``cmd.argv`` (labels and image fallback
    included), for a caller that starts the container through the client itself
    (the app's step-through start). Raises :class:`CommandError` for another verb."""
    from engine.cli import config_from

    if cmd.verb != "run" or not cmd.argv or cmd.argv[0] != "run":
        raise CommandError(f"not a run command: {cmd.source}")
    return config_from(_parse("run", list(cmd.argv[1:])))


def _is_lesson_image(ref: str, context: Context) -> bool:
    wanted = normalize_image(ref)
    return any(normalize_image(i) == wanted for i in context.images) and wanted != normalize_image(context.fallback)
