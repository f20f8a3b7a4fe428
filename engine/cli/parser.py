"""The parser: argparse with docker's exit code and one-line errors, the help
text, ``--version``, and :func:`build_parser`, which builds only the verb
being run (the others are listed by name: argparse is slow to build).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import PROG, VERBS

USAGE = """\
container-lab [--lang en|zh] [--lesson ID] [--course DIR]
       container-lab course check|solve ...
       container-lab [--version] VERB ..."""


DESCRIPTION = """\
Learn what a container really is, by running real ones.

With no verb, container-lab opens the course where you left off:
  --lang en|zh   the course's language (default: your last choice, then LANGUAGE,
                 LC_ALL, LC_MESSAGES, LANG); F2 switches at any moment
  --lesson ID    open this lesson (its number, id or folder), e.g. --lesson 6
  --course DIR   the course in DIR instead of the built-in one
`container-lab course check|solve` checks a course or works through it
(see container-lab course --help).

With a verb, it runs containers: the verbs below work like their docker
namesakes, on this machine's real namespaces, overlayfs and cgroups.
Try:  container-lab run --rm -it lab bash
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help text that keeps our line breaks. It is given its width, because
    argparse would import shutil just to ask (on every command, ~6 ms)."""

    def __init__(self, prog: str):
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(sys.stdout.fileno()).columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=max(columns - 2, 40))


def version() -> str:
    """This installation's version, from its metadata. importlib.metadata costs
    some 25 ms to import, so it is read only when asked for."""
    from importlib import metadata

    try:
        return metadata.version("container-lab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: run from a checkout)"


class _Version(argparse.Action):
    """``--version``: the version, looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{PROG} version {version()}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse with docker's exit code (125) and a one-line error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        # No abbreviated flags, as docker has none: `run lab echo --ne` hands
        # `--ne` to the command instead of refusing it as short for --network.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(125, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: every verb's in full, or only ``verb``'s (the rest listed)."""
    p = _Parser(prog=PROG, description=DESCRIPTION, usage=USAGE)
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser, prog=PROG)
    for name, (help_text, add) in VERBS.items():
        if verb is None or verb == name:
            add(sub, help_text)
        else:
            sub.add_parser(name, help=help_text)
    return p

