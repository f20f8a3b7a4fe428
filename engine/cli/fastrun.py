"""``run``'s flags read without argparse, for the common command lines.

argparse, with the gettext and locale modules it pulls in, is about a third
of the CLI's import time, and building ``run``'s parser costs as much again:
more than the rest of a ``container-lab run --rm lab true`` on the client's
side. This reads the same flags into the same namespace as ``run``'s parser
(:func:`engine.cli.run._add_run`), but only when the command line is plain:
known flags spelt in full (``--name x``, ``--name=x``, ``-it``), values that
do not start with ``-``, no ``--help``, no ``--``. Anything else -- an
abbreviation, ``-m64m``, a bad value, a missing one -- returns None and
argparse parses the whole line, so every error keeps its usual wording.
tests/test_cli_fastrun.py holds both readers to the same answers.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import values

# Flags that take no value: option -> dest.
SWITCHES = {"-i": "interactive", "--interactive": "interactive", "-t": "tty", "--tty": "tty",
            "-d": "detach", "--detach": "detach", "--rm": "remove", "--init": "init", "--timens": "timens",
            "--explain": "explain", "--pause": "pause", "-P": "publish_all", "--publish-all": "publish_all"}
# Flags that take one value: option -> (dest, converter or None, appended).
OPTIONS = {
    "--name": ("name", None, False), "-h": ("hostname", None, False), "--hostname": ("hostname", None, False),
    "-e": ("env", None, True), "--env": ("env", None, True),
    "-w": ("workdir", None, False), "--workdir": ("workdir", None, False),
    "-u": ("user", None, False), "--user": ("user", None, False),
    "-v": ("volume", None, True), "--volume": ("volume", None, True),
    "-l": ("label", values._kv, True), "--label": ("label", values._kv, True),
    "-m": ("memory", values._memory, False), "--memory": ("memory", values._memory, False),
    "--memory-swap": ("memory_swap", values._swap, False),
    "--pids-limit": ("pids_limit", values._pids, False),
    "--cpus": ("cpus", values._cpus, False),
    "--network": ("network", None, False), "--net": ("network", None, False),
    "--network-alias": ("network_alias", None, True), "--ip": ("ip", None, False),
    "-p": ("publish", None, True), "--publish": ("publish", None, True),
    "--pid": ("pid_mode", None, False), "--ipc": ("ipc_mode", None, False), "--uts": ("uts_mode", None, False),
    "--userns": ("userns_mode", None, False),
    "--clock-offset": ("clock_offset", None, True),
    "--security-opt": ("security_opt", None, True),
    "--storage-opt": ("storage_opt", None, True),
    "--lang": ("lang", None, False),
    "--pull": ("pull", None, False),
}
CHOICES = {"lang": ("en", "zh"), "pull": ("missing", "always", "never")}


def defaults() -> dict:
    """``run``'s defaults, as its parser has them."""
    from ..spec import DEFAULT_MEMORY, DEFAULT_PIDS

    return dict(interactive=False, tty=False, detach=False, remove=False, name=None, hostname=None, env=[],
                workdir=None, user=None, volume=[], init=False, label=[], memory=DEFAULT_MEMORY, memory_swap=None,
                pids_limit=DEFAULT_PIDS, cpus=None, network="bridge", network_alias=[], ip=None,
                publish=[], publish_all=False, pid_mode="private", ipc_mode="private",
                uts_mode="private", userns_mode="host", timens=False, clock_offset=[], security_opt=[],
                storage_opt=[], pull="missing", explain=False, pause=False, lang=None)


def parse_run(argv: list[str]) -> SimpleNamespace | None:
    """The namespace ``build_parser('run').parse_args(['run', *argv])`` gives,
    or None when this command line is not plain enough to be sure of that."""
    from .run import cmd_run

    if "--" in argv:
        return None
    ns = defaults()
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-"):
            break                                   # the image: the rest is the command
        if word == "-":
            return None
        if word in SWITCHES:
            ns[SWITCHES[word]] = True
            i += 1
            continue
        name, eq, value = word.partition("=")
        if eq and name.startswith("--") and name in OPTIONS:
            i += 1
        elif word in OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            name, value = word, argv[i + 1]
            i += 2
        elif len(word) > 2 and word[1] != "-" and all(f"-{c}" in SWITCHES for c in word[1:]):
            for c in word[1:]:                      # -it, -dit
                ns[SWITCHES[f"-{c}"]] = True
            i += 1
            continue
        else:
            return None
        dest, convert, append = OPTIONS[name]
        if dest in CHOICES and value not in CHOICES[dest]:
            return None
        if convert is not None:
            try:
                value = convert(value)
            except Exception:  # noqa: BLE001 - argparse says what is wrong with it
                return None
        if append:
            ns[dest] = [*ns[dest], value]
        else:
            ns[dest] = value
    if i >= len(argv):
        return None                                 # no image: argparse's usage error
    return SimpleNamespace(verb="run", func=cmd_run, **ns, image=argv[i], command=list(argv[i + 1:]))
