"""``container-lab VERB ...``: a docker-like CLI, a thin layer over the client API.

Exit codes follow docker: the container's own, 125 when the engine fails,
126 when the command cannot be run, 127 when it is not found, 137 when it was
killed (OOM included). Errors are one line on stderr, never a traceback.

One module per group of verbs, imported only when one of its verbs runs
(or for ``--help``), so that start-up does not grow with the verbs:

- ``run.py``         run (and run --explain), create, exec, start: the verbs that
                     start processes; :func:`config_from`
- ``containers.py``  ps, stop, kill, rm, container prune, logs, wait, inspect, top, diff
- ``images.py``      images, image ... (layers too), history, pull, rmi, load, save
- ``share.py``       login, logout, tag, push, export, import: sharing images
- ``stats.py``       stats: what containers use, live or once
- ``system.py``      doctor, gc, events
- ``networks.py``    network create|ls|inspect|rm|connect|disconnect|prune, port
- ``build.py``       build, commit: the verbs that make images
- ``parser.py``      argparse: the help text, --version, :func:`build_parser`
- ``values.py``      converters for argument values (sizes, limits, signals)
- ``output.py``      warnings, exit reports, tables
- ``fastrun.py``     ``run``'s flags read without argparse in the common case
                     (anything unusual goes to argparse, which has the last word)

A new group (networks, build, classroom) is a module with ``_add_<verb>(sub,
help_text)`` functions that set ``func=cmd_<verb>``, and its lines in VERBS.
"""

from __future__ import annotations

import os
import sys

from .. import errors

PROG = "container-lab"


def _verb(module: str, adder: str):
    """The function that adds a verb's parser, its module imported only when it is called."""
    def add(sub, help_text: str, **kwargs) -> None:
        getattr(__import__(f"{__name__}.{module}", fromlist=[adder]), adder)(sub, help_text, **kwargs)
    add.__name__ = adder
    return add


# Each verb, its one-line help, and the function that adds its parser: only
# the verb being run gets its full parser built (argparse is slow to build).
VERBS = {
    "run": ("create and start a container from an image", _verb("run", "_add_run")),
    "create": ("create a container from an image, without starting it", _verb("run", "_add_create")),
    "exec": ("run a command in a running container", _verb("run", "_add_exec")),
    "ps": ("list containers", _verb("containers", "_add_ps")),
    "stop": ("stop running containers", _verb("containers", "_add_stop")),
    "start": ("start stopped containers", _verb("run", "_add_start")),
    "kill": ("send a signal to running containers", _verb("containers", "_add_kill")),
    "rm": ("remove containers", _verb("containers", "_add_rm")),
    "container": ("manage containers (prune, create, export)", _verb("containers", "_add_container")),
    "logs": ("show a container's output", _verb("containers", "_add_logs")),
    "wait": ("wait for containers to stop; print their exit codes", _verb("containers", "_add_wait")),
    "inspect": ("show a container's record as JSON", _verb("containers", "_add_inspect")),
    "stats": ("show what containers use: CPU, memory, network and block I/O, processes",
              _verb("stats", "_add_stats")),
    "events": ("show what happened to containers", _verb("system", "_add_events")),
    "top": ("show a container's processes (container PID beside host PID)", _verb("containers", "_add_top")),
    "diff": ("show what changed in a container's writable layer", _verb("containers", "_add_diff")),
    "gc": ("remove what crashed runs left behind", _verb("system", "_add_gc")),
    "images": ("list images", _verb("images", "_add_images")),
    "image": ("manage images (inspect, ls, history, layers, load, save, pull, push, tag, import)",
              _verb("images", "_add_image")),
    "history": ("show how an image was made, step by step", _verb("images", "_add_history")),
    "pull": ("download an image from a registry", _verb("images", "_add_pull")),
    "rmi": ("remove images", _verb("images", "_add_rmi")),
    "load": ("load images from a tar archive (docker save or OCI)", _verb("images", "_add_load")),
    "save": ("save images to a tar archive, for machines with no network", _verb("images", "_add_save")),
    "tag": ("give an image another name (where push sends it)", _verb("share", "_add_tag")),
    "push": ("upload an image to a registry", _verb("share", "_add_push")),
    "login": ("log in to a registry (credentials for pull and push)", _verb("share", "_add_login")),
    "logout": ("forget the credentials for a registry", _verb("share", "_add_logout")),
    "export": ("write a container's file system as a tar archive", _verb("share", "_add_export")),
    "import": ("make a one-layer image of a tar archive", _verb("share", "_add_import")),
    "build": ("build an image from a Dockerfile", _verb("build", "_add_build")),
    "commit": ("make an image of a container's changes", _verb("build", "_add_commit")),
    "network": ("manage networks (create, ls, inspect, rm, connect, disconnect, prune)",
                _verb("networks", "_add_network")),
    "port": ("list a container's published ports", _verb("networks", "_add_port")),
    "doctor": ("say what this machine can do for containers, and why not", _verb("system", "_add_doctor")),
}


def build_parser(verb: str | None = None):
    """The CLI's parser: every verb's in full, or only ``verb``'s (the rest listed)."""
    from .parser import build_parser

    return build_parser(verb)


def config_from(args):
    """The ContainerConfig of parsed ``run`` arguments (see :func:`.run.config_from`)."""
    from .run import config_from

    return config_from(args)


def version() -> str:
    """This installation's version (see :func:`.parser.version`)."""
    from .parser import version

    return version()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in VERBS and not argv[0].startswith("-"):
        return _not_a_verb(argv[0])
    args = None
    if argv and argv[0] == "run":
        from .fastrun import parse_run

        args = parse_run(argv[1:])          # None: argparse decides (and words any error)
    if args is None:
        parser = build_parser(argv[0] if argv and argv[0] in VERBS else None)
        try:
            args = parser.parse_args(argv)
        except SystemExit:                  # --help, --version, a usage error
            _flushed(0)
            raise
        if not getattr(args, "func", None):
            parser.print_help()
            return _flushed(0)
    from ..client import Client

    try:
        code = args.func(args, Client())
    except errors.EngineError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:             # `container-lab ps | head -1`: the reader has gone; no error
        code = 0
    return _flushed(code)


def _not_a_verb(word: str) -> int:
    """docker's answer to a word that is no command of ours, with the nearest verb."""
    import difflib

    near = difflib.get_close_matches(word, sorted(VERBS), n=3, cutoff=0.5)
    near = [v for v in near if len(v) == len(word)] or near     # a key hit in its place: rum is run
    hint = f" Did you mean '{PROG} {near[0]}'?" if near else ""
    print(f"{PROG}: '{word}' is not a {PROG} command.{hint}\nSee '{PROG} --help'.", file=sys.stderr)
    return 125


def _flushed(code: int) -> int:
    """``code``, once what was printed has gone out. Flushed here, a reader that
    has gone is caught; left to Python's flush at exit (stdout to a pipe is
    block-buffered unless PYTHONUNBUFFERED is set), it would be "Exception
    ignored ... BrokenPipeError". Then stdout goes to /dev/null, so that last
    flush has nowhere to fail."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
