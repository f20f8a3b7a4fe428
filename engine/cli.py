"""``container-lab VERB ...``: a docker-like CLI, a thin layer over the client API.

Exit codes follow docker: the container's own, 125 when the engine fails,
126 when the command cannot be run, 127 when it is not found, 137 when it was
killed (OOM included). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from . import errors

PROG = "container-lab"

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
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(125, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def _size(text: str) -> int:
    from .spec import parse_size
    try:
        return parse_size(text)
    except errors.InvalidArgument as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _memory(text: str) -> int | None:
    return None if text in ("0", "-1") else _size(text)


def _swap(text: str) -> int:
    return -1 if text == "-1" else _size(text)


def _pids(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid pids limit: '{text}'") from None
    return None if value in (0, -1) else value


def _cpus(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid cpus value: '{text}'") from None
    return value            # 0: no CPU limit (docker's meaning), sent as such: a seat's policy refuses it


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"invalid label '{text}': expected KEY=VALUE")
    return key, value


def _signal_arg(text: str) -> int:
    import signal as _signal
    name = text.upper()
    if name.isdigit():
        return int(name)        # the supervisor says whether it is a signal (as docker's daemon does)
    name = name if name.startswith("SIG") else "SIG" + name
    value = getattr(_signal, name, None)
    if not isinstance(value, _signal.Signals):
        raise argparse.ArgumentTypeError(f"invalid signal: {text}")
    return int(value)


def _filter_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"bad format of filter (expected name=value): {text}")
    return key.lower(), value


def _containers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER", help="container name or id (a unique prefix will do)")


def _add_run(sub, help_text: str) -> None:
    from .spec import DEFAULT_MEMORY, DEFAULT_PIDS

    r = sub.add_parser("run", add_help=False, help=help_text,
                       description="Create a container from IMAGE and run COMMAND in it (the image's "
                                   "default command when none is given).")
    r.add_argument("-i", "--interactive", action="store_true", help="keep standard input open")
    r.add_argument("-t", "--tty", action="store_true", help="give the container a pseudo-terminal")
    r.add_argument("-d", "--detach", action="store_true", help="run in the background and print the container id")
    r.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    r.add_argument("--name", help="name the container (default: a generated name)")
    r.add_argument("-h", "--hostname", help="the container's hostname (default: its short id)")
    r.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    r.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    r.add_argument("-u", "--user", metavar="USER[:GROUP]", help="run as this user (name or uid)")
    r.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CTR[:ro]",
                   help="bind-mount an existing host path into the container")
    r.add_argument("--init", action="store_true", help="run a tiny init as PID 1 that forwards signals and reaps orphans")
    r.add_argument("-l", "--label", action="append", default=[], type=_kv, metavar="K=V", help="set a label")
    r.add_argument("-m", "--memory", type=_memory, default=DEFAULT_MEMORY, metavar="SIZE",
                   help=f"memory limit, e.g. 64m (default {DEFAULT_MEMORY >> 20}m; 0 for none)")
    r.add_argument("--memory-swap", type=_swap, metavar="SIZE",
                   help="memory plus swap; default: equal to --memory, so no swap; -1 for unlimited swap")
    r.add_argument("--pids-limit", type=_pids, default=DEFAULT_PIDS, metavar="N",
                   help=f"maximum number of processes (default {DEFAULT_PIDS}; -1 for none)")
    r.add_argument("--cpus", type=_cpus, metavar="N", help="CPU limit, e.g. 0.5 for half a core")
    r.add_argument("--network", "--net", default="none", metavar="MODE",
                   help="network namespace: none (a new one with loopback only; the default), "
                        "host (the host's), container:NAME (share NAME's)")
    r.add_argument("--pid", dest="pid_mode", default="private", metavar="MODE",
                   help="PID namespace: private (the default), host, container:NAME")
    r.add_argument("--ipc", dest="ipc_mode", default="private", metavar="MODE",
                   help="IPC namespace: private (the default), host, container:NAME")
    r.add_argument("--uts", dest="uts_mode", default="private", metavar="MODE",
                   help="UTS namespace (hostname): private (the default) or host")
    r.add_argument("--userns", dest="userns_mode", default="host", metavar="MODE",
                   help="user namespace: host (the default) or private (root inside is an "
                        "unprivileged user on the host)")
    r.add_argument("--timens", action="store_true",
                   help="a new time namespace in which the container's uptime starts at zero")
    r.add_argument("--clock-offset", action="append", default=[], metavar="CLOCK=SECS",
                   help="with a new time namespace, move monotonic or boottime by SECS seconds")
    r.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=unconfined: no system call filter (by default the calls Docker's "
                        "profile refuses are refused: unshare, mount, keyctl, bpf, reboot ...); "
                        "no-new-privileges: setuid programs inside gain nothing")
    r.add_argument("--storage-opt", action="append", default=[], metavar="size=SIZE",
                   help="limit the container's writable layer, e.g. size=1g (needs the data dir on XFS "
                        "mounted with prjquota; `doctor` says whether it is)")
    r.add_argument("--explain", action="store_true",
                   help="start the container one stage at a time, explaining each: what it does, "
                        "its kernel calls and the equivalent shell commands")
    r.add_argument("--pause", action="store_true",
                   help="with --explain: wait for Enter after each stage (look at the half-built "
                        "container with top or inspect meanwhile)")
    r.add_argument("--lang", choices=["en", "zh"], help="with --explain: the language of the explanations "
                   "(default: from LANG, zh* -> 中文)")
    r.add_argument("--help", action="help", help="show this help and exit")
    r.add_argument("image", metavar="IMAGE", help="image to run, e.g. lab (built in, works offline)")
    r.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    r.set_defaults(func=cmd_run)


def _add_exec(sub, help_text: str) -> None:
    ex = sub.add_parser("exec", help=help_text,
                        description="Run COMMAND inside a running container: it joins the container's "
                                    "namespaces, cgroup and root, like its first process.")
    ex.add_argument("-i", "--interactive", action="store_true", help="keep standard input open")
    ex.add_argument("-t", "--tty", action="store_true", help="give the command a pseudo-terminal")
    ex.add_argument("-d", "--detach", action="store_true", help="run it in the background")
    ex.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    ex.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    ex.add_argument("-u", "--user", metavar="USER[:GROUP]", help="run as this user (name or uid)")
    ex.add_argument("container", metavar="CONTAINER")
    ex.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    ex.set_defaults(func=cmd_exec)


def _add_ps(sub, help_text: str) -> None:
    ps = sub.add_parser("ps", help=help_text, description="List running containers (-a: all).")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    ps.add_argument("-f", "--filter", action="append", default=[], type=_filter_arg, metavar="KEY=VALUE",
                    help="name=NAME, label=KEY or label=KEY=VALUE, status=created|running|exited, id=PREFIX")
    ps.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    ps.set_defaults(func=cmd_ps)


def _add_stop(sub, help_text: str) -> None:
    st = sub.add_parser("stop", help=help_text,
                        description="Send SIGTERM to each container's first process, then SIGKILL after the timeout.")
    st.add_argument("-t", "--time", type=float, default=10, metavar="SECS", help="seconds to wait before SIGKILL (default 10)")
    _containers_arg(st)
    st.set_defaults(func=cmd_stop)


def _add_start(sub, help_text: str) -> None:
    sa = sub.add_parser("start", help=help_text,
                        description="Start a stopped container again; its writable layer is kept.")
    sa.add_argument("-a", "--attach", action="store_true", help="attach to its output and wait for it")
    sa.add_argument("-i", "--interactive", action="store_true", help="attach standard input too")
    _containers_arg(sa)
    sa.set_defaults(func=cmd_start)


def _add_kill(sub, help_text: str) -> None:
    k = sub.add_parser("kill", help=help_text,
                       description="Send a signal (default SIGKILL) to each container's first process.")
    k.add_argument("-s", "--signal", type=_signal_arg, default=9, metavar="SIGNAL", help="KILL, TERM, HUP, 15 ...")
    _containers_arg(k)
    k.set_defaults(func=cmd_kill)


def _add_rm(sub, help_text: str) -> None:
    rm = sub.add_parser("rm", help=help_text, description="Remove one or more containers.")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first; no error if missing")
    _containers_arg(rm)
    rm.set_defaults(func=cmd_rm)


def _add_container(sub, help_text: str) -> None:
    co = sub.add_parser("container", help=help_text, description="Manage containers.")
    cosub = co.add_subparsers(dest="container_verb", metavar="VERB", parser_class=_Parser, required=True)
    pr = cosub.add_parser("prune", help="remove all stopped containers", description="Remove all stopped containers.")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(func=cmd_prune)


def _add_logs(sub, help_text: str) -> None:
    lg = sub.add_parser("logs", help=help_text,
                        description="Show the output of a container started with -d (or started again "
                                    "without -a). Foreground runs write to your terminal directly.")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new output until it stops")
    lg.add_argument("-n", "--tail", default="all", metavar="N", help="only the last N lines")
    lg.add_argument("-t", "--timestamps", action="store_true", help="show the time of each chunk")
    lg.add_argument("container", metavar="CONTAINER")
    lg.set_defaults(func=cmd_logs)


def _add_wait(sub, help_text: str) -> None:
    wait = sub.add_parser("wait", help=help_text,
                          description="Block until each container stops, then print its exit code.")
    _containers_arg(wait)
    wait.set_defaults(func=cmd_wait)


def _add_inspect(sub, help_text: str) -> None:
    ins = sub.add_parser("inspect", help=help_text,
                         description="Print the full record of one or more containers as JSON: config, "
                                     "state, pid, exit code, namespaces, cgroup, layers, times.")
    ins.add_argument("--transcript", action="store_true",
                     help="show how the container was started: each stage, its kernel calls and shell twins")
    ins.add_argument("--namespaces", action="store_true",
                     help="a table of the container's namespaces: its inode beside the host's, shared or isolated")
    ins.add_argument("--format", choices=["text", "json"], default=None,
                     help="with --transcript or --namespaces: text (default) or json")
    _containers_arg(ins)
    ins.set_defaults(func=cmd_inspect)


def _add_events(sub, help_text: str) -> None:
    ev = sub.add_parser("events", help=help_text,
                        description="Print the event log: created, started, exec, exited, oom, "
                                    "pids-limit-hit, removed ... Each event has a sequence number (a cursor).")
    ev.add_argument("--since", metavar="CURSOR|TIME", help="after this sequence number, or since a time (RFC 3339, Unix time, or 10m)")
    ev.add_argument("--until", metavar="TIME", help="up to this time")
    ev.add_argument("-f", "--filter", action="append", default=[], type=_filter_arg, metavar="KEY=VALUE",
                    help="container=, name=, kind= (or event=), image=, label=")
    ev.add_argument("--follow", action="store_true", help="keep printing new events")
    ev.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    ev.set_defaults(func=cmd_events)


def _add_top(sub, help_text: str) -> None:
    t = sub.add_parser("top", help=help_text,
                       description="Show the processes of a running container as a tree: the PID inside "
                                   "the container beside the same process's PID on the host.")
    t.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    t.add_argument("container", metavar="CONTAINER")
    t.set_defaults(func=cmd_top)


def _add_diff(sub, help_text: str) -> None:
    d = sub.add_parser("diff", help=help_text,
                       description="List what changed in the container's writable layer against its image: "
                                   "A added, C changed, D deleted.")
    d.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    d.add_argument("container", metavar="CONTAINER")
    d.set_defaults(func=cmd_diff)


def _add_gc(sub, help_text: str) -> None:
    gc = sub.add_parser("gc", help=help_text,
                        description="Remove container dirs with no record and cgroups of containers that are not running.")
    gc.set_defaults(func=cmd_gc)


def _add_images(sub, help_text: str, name: str = "images", aliases: tuple[str, ...] = ()) -> None:
    im = sub.add_parser(name, aliases=list(aliases), help=help_text, description="List the images in the local store.")
    im.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    im.set_defaults(func=cmd_images)


def _add_rmi(sub, help_text: str, name: str = "rmi") -> None:
    rm = sub.add_parser(name, help=help_text,
                        description="Remove images (their tags; then the layers no other image and no container "
                                    "needs). An image a container uses is kept unless -f: then only its tag goes, "
                                    "and the layers stay for the container.")
    rm.add_argument("-f", "--force", action="store_true", help="untag even when a container uses the image")
    rm.add_argument("images", nargs="+", metavar="IMAGE")
    rm.set_defaults(func=cmd_rmi)


def _add_pull(sub, help_text: str) -> None:
    pl = sub.add_parser("pull", help=help_text,
                        description="Download an image from a registry: Docker Hub for a plain name (ubuntu, "
                                    "bitnami/redis), or the registry a name starts with (127.0.0.1:5000/team/app; "
                                    "loopback registries over plain HTTP, others HTTPS). The image for this "
                                    "machine's platform is picked from a multi-platform one; every layer is "
                                    "checked against its digest; layers already here are not fetched again. "
                                    "Offline? `save` images on a machine with a network and `load` them here.")
    pl.add_argument("-q", "--quiet", action="store_true", help="print only the image's name")
    pl.add_argument("image", metavar="NAME[:TAG]", help="the image, e.g. ubuntu:24.04")
    pl.set_defaults(func=cmd_pull)


def _add_load(sub, help_text: str) -> None:
    ld = sub.add_parser("load", help=help_text,
                        description="Load images from a tar archive (a `docker save` archive or an OCI image "
                                    "layout; gzip, bzip2 or xz compressed too), from a file or standard input. "
                                    "Every layer is checked against its digest and unpacked safely; an image "
                                    "that fails a check is not stored at all. No network needed: the way to "
                                    "bring images into an offline classroom.")
    ld.add_argument("-i", "--input", metavar="FILE", help="read from FILE instead of standard input")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress, only the names loaded")
    ld.set_defaults(func=cmd_load)


def _add_save(sub, help_text: str) -> None:
    sv = sub.add_parser("save", help=help_text,
                        description="Write one or more images to a tar archive (standard output unless -o): "
                                    "one archive that both `docker load` and OCI tools (skopeo, umoci) read, "
                                    "holding the stored layers as they are, so loading it elsewhere gives the "
                                    "same image id and digest.")
    sv.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    sv.add_argument("images", nargs="+", metavar="IMAGE", help="image name[:tag], name@digest or image id")
    sv.set_defaults(func=cmd_save)


def _add_history(sub, help_text: str) -> None:
    hi = sub.add_parser("history", help=help_text,
                        description="Show how an image was made, newest step first: one row per entry of its "
                                    "config's history; SIZE is the layer a step added (0B: it changed no file).")
    hi.add_argument("--no-trunc", action="store_true", help="do not shorten the output")
    hi.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    hi.add_argument("--format", choices=["table", "json"], default="table",
                    help="table (default) or json: one JSON object per line")
    hi.add_argument("image", metavar="IMAGE")
    hi.set_defaults(func=cmd_history)


def _add_image_inspect(sub, help_text: str) -> None:
    ii = sub.add_parser("inspect", help=help_text,
                        description="Print the record of one or more images as JSON, with Docker's field names: "
                                    "Id (the config's digest), RepoTags, RepoDigests (the manifest's digest), "
                                    "Created, Architecture, Os, Config (command, environment ...), "
                                    "RootFS.Layers (each layer's diff_id), Size, and the layer directories "
                                    "that overlayfs stacks (GraphDriver).")
    ii.add_argument("-f", "--format", metavar="TEMPLATE",
                    help="print one field per image: {{.Id}}, {{.Config.Cmd}}, {{json .RootFS}} ...")
    ii.add_argument("images", nargs="+", metavar="IMAGE", help="image name[:tag], name@digest or image id")
    ii.set_defaults(func=cmd_image_inspect)


def _add_image(sub, help_text: str) -> None:
    im = sub.add_parser("image", help=help_text, description="Manage images.")
    imsub = im.add_subparsers(dest="image_verb", metavar="VERB", parser_class=_Parser, required=True)
    _add_image_inspect(imsub, "show an image's record as JSON")
    _add_images(imsub, "list images", name="ls", aliases=("list",))
    _add_history(imsub, "show how an image was made")
    _add_load(imsub, "load images from a tar archive")
    _add_save(imsub, "save images to a tar archive")
    _add_pull(imsub, "download an image from a registry")
    _add_rmi(imsub, "remove images", name="rm")
    pr = imsub.add_parser("prune", help="remove unused images",
                          description="Remove the layers and blobs that no image and no container needs (left "
                                      "by `rmi -f` of an image a container was using); with -a, also every "
                                      "image that no container uses.")
    pr.add_argument("-a", "--all", action="store_true", help="remove every image no container uses")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(func=cmd_image_prune)


def _add_doctor(sub, help_text: str) -> None:
    dr = sub.add_parser("doctor", help=help_text,
                        description="Check this machine: root, overlayfs, each kind of namespace, and which "
                                    "cgroup limits (memory, pids, cpu, swap) are really applied -- with the "
                                    "reason for anything missing. Exit status 1 if containers cannot run here.")
    dr.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    dr.set_defaults(func=cmd_doctor)


def cmd_doctor(args, client) -> int:
    from .doctor import diagnose

    report = diagnose()
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            print(f"{'ok ' if c['ok'] else 'NO '} {c['id']:<16} {c['detail']}")
        print("\ncontainers can run here" if report["ok"] else "\ncontainers cannot run here: see the NO lines")
    return 0 if report["ok"] else 1


# Each verb, its one-line help, and the function that adds its parser: only
# the verb being run gets its full parser built (argparse is slow to build).
VERBS = {
    "run": ("create and start a container from an image", _add_run),
    "exec": ("run a command in a running container", _add_exec),
    "ps": ("list containers", _add_ps),
    "stop": ("stop running containers", _add_stop),
    "start": ("start stopped containers", _add_start),
    "kill": ("send a signal to running containers", _add_kill),
    "rm": ("remove containers", _add_rm),
    "container": ("manage containers (prune)", _add_container),
    "logs": ("show a container's output", _add_logs),
    "wait": ("wait for containers to stop; print their exit codes", _add_wait),
    "inspect": ("show a container's record as JSON", _add_inspect),
    "events": ("show what happened to containers", _add_events),
    "top": ("show a container's processes (container PID beside host PID)", _add_top),
    "diff": ("show what changed in a container's writable layer", _add_diff),
    "gc": ("remove what crashed runs left behind", _add_gc),
    "images": ("list images", _add_images),
    "image": ("manage images (inspect, ls, history, load, save)", _add_image),
    "history": ("show how an image was made, step by step", _add_history),
    "pull": ("download an image from a registry", _add_pull),
    "rmi": ("remove images", _add_rmi),
    "load": ("load images from a tar archive (docker save or OCI)", _add_load),
    "save": ("save images to a tar archive, for machines with no network", _add_save),
    "doctor": ("say what this machine can do for containers, and why not", _add_doctor),
}


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


# -- verbs -----------------------------------------------------------------

def config_from(args):
    from .spec import ContainerConfig, Volume, parse_security_opts, parse_storage_opts

    return ContainerConfig(**parse_security_opts(args.security_opt),
        image=args.image, cmd=list(args.command), name=args.name, hostname=args.hostname,
        env=list(args.env), workdir=args.workdir, user=args.user,
        volumes=[Volume.parse(v) for v in args.volume], labels=dict(args.label), init=args.init,
        tty=args.tty, interactive=args.interactive, detach=args.detach, remove=args.remove,
        network=args.network, pid_mode=args.pid_mode, ipc_mode=args.ipc_mode, uts_mode=args.uts_mode,
        userns_mode=args.userns_mode, timens=_timens(args.timens, args.clock_offset), memory=args.memory,
        memory_swap=args.memory_swap, pids_limit=args.pids_limit, cpus=args.cpus,
        storage_opt=parse_storage_opts(getattr(args, "storage_opt", None) or []),
    ).validate()


def _timens(bare: bool, offsets: list[str]) -> dict | None:
    """None (the host's clocks), or the offsets of a new time namespace:
    ``--clock-offset`` pairs, or for a bare ``--timens`` boottime set back by
    the host's uptime (so ``uptime`` inside says the container just booted)."""
    from .spec import parse_timens

    if offsets:
        return parse_timens(",".join(offsets))
    if not bare:
        return None
    with open("/proc/uptime") as f:
        return {"boottime": -int(float(f.read().split()[0]))}


def _foreground(client, start, *, interactive: bool) -> int:
    """Run an attached, non-tty process, its stdio relayed to and from ours
    through pipes (it never holds our terminal or files), forwarding the
    signals we get (docker's --sig-proxy), and return its exit code."""
    stdio = [0, 1, 2] if interactive else [1, 2]
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
    started: list = []        # the running container, once known
    pending: list[int] = []   # signals that came before it was

    def forward(signum, _frame):
        if not started:
            pending.append(signum)
            return
        try:
            client.kill(started[0].id, signum)
        except errors.EngineError:
            pass
    # Handlers first: a signal that arrives while the container starts is kept, not lost.
    previous = {s: signal.signal(s, forward) for s in forwarded}
    try:
        run = start(stdio)
        started.append(run)
        _warn(run.warnings)
        for signum in pending:
            forward(signum, None)
        result = run.wait()
        run.close()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return _report_exit(result)


def cmd_run(args, client) -> int:
    config = config_from(args)
    if args.pause and not args.explain:
        raise errors.InvalidArgument("--pause goes with --explain")
    if args.explain:
        if config.tty:
            raise errors.InvalidArgument("--explain cannot be used with -t: the explanation and the "
                                         "terminal would share your screen")
        return _run_explained(client, config, pause=args.pause, lang=args.lang)
    if config.detach:
        reply = client.run(config, attach=False)
        _warn(reply.get("warnings", []))
        print(reply["id"])
        return 0
    if config.tty:
        from .terminal import run_with_terminal
        return run_with_terminal(lambda size: client.run(config, winsize=size), interactive=config.interactive)
    return _foreground(client, lambda stdio: client.run(config, stdio=stdio, relay=True),
                       interactive=config.interactive)


def _run_explained(client, config, *, pause: bool, lang: str | None) -> int:
    """``run --explain``: each stage as it is done -- what it is for, its
    kernel calls, the shell commands that would do the same."""
    from . import explain

    lang = explain.language(lang)
    width = min(100, _terminal_width())
    stdio = [0, 1, 2] if config.interactive else [1, 2]
    start = client.run_stepwise(config, stdio=[] if config.detach else stdio, attach=not config.detach,
                                relay=True)
    _warn(start.warnings)
    count = 0
    short = lambda text: text.replace(start.id, start.id[:12])  # noqa: E731 - paths hold the full id
    try:
        while (report := start.next_stage()) is not None:
            stage = json.loads(short(json.dumps(report["stage"])))
            count += 1
            print(f"\n[{count}] {stage['id']}: {explain.stage_title(stage, lang)}  ({stage.get('ms', 0):.1f} ms)")
            for line in explain.wrap(explain.stage_text(stage["id"], lang), width - 4):
                print("    " + line)
            for op in stage.get("ops", []):
                print(f"    {explain.ui('kernel', lang)}: {explain.kernel_call(op)}"[:width * 2])
                print(f"    {explain.ui('shell', lang)}:  {op.get('shell', '')}")
            sys.stdout.flush()
            if report["paused"]:
                if pause:
                    print("\n" + "\n".join(explain.wrap(explain.ui("paused", lang, name=start.name), width)),
                          end=" ", flush=True)
                    if not sys.stdin.readline():
                        raise errors.InvalidArgument("no more input: the half-built container is ended")
                if stage["id"] == "exec":
                    print("\n" + "\n".join(explain.wrap(explain.ui("started", lang, name=start.name,
                                                                    pid=start.pid), width)) + "\n", flush=True)
                start.proceed()
        if config.detach:
            print(start.id)
            return 0
        return _report_exit(start.wait())
    except BaseException:
        start.close()             # the supervisor ends a half-built container whose client has gone
        raise


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(1).columns
    except OSError:
        return 100


def cmd_exec(args, client) -> int:
    if not args.command:
        raise errors.InvalidArgument("exec needs a command to run: container-lab exec CONTAINER COMMAND...")
    opts = dict(env=args.env, workdir=args.workdir, user=args.user, interactive=args.interactive)
    if args.detach:
        client.exec(args.container, args.command, detach=True, tty=args.tty, **opts)
        return 0
    if args.tty:
        from .terminal import run_with_terminal
        return run_with_terminal(lambda size: client.exec(args.container, args.command, tty=True,
                                                          winsize=size, **opts),
                                 interactive=args.interactive)
    return _foreground(client, lambda stdio: client.exec(args.container, args.command, stdio=stdio, relay=True,
                                                         **opts),
                       interactive=args.interactive)


def cmd_start(args, client) -> int:
    if not args.attach and not args.interactive:
        code = 0
        for ref in args.containers:
            try:
                client.start(ref)
                print(ref)
            except errors.EngineError as e:
                print(f"{PROG}: {e}", file=sys.stderr)
                code = e.exit_code if isinstance(e, errors.StartError) else 1
        return code
    if len(args.containers) > 1:
        raise errors.InvalidArgument("you cannot start and attach multiple containers at once")
    ref = args.containers[0]
    if client.inspect(ref)["config"]["tty"]:
        from .terminal import run_with_terminal
        return run_with_terminal(lambda size: client.start(ref, attach=True, winsize=size),
                                 interactive=args.interactive)
    return _foreground(client, lambda stdio: client.start(ref, attach=True, stdio=stdio, relay=True),
                       interactive=args.interactive)


def _warn(warnings: list[str]) -> None:
    """Limits that could not be applied are said out loud, never pretended."""
    for line in warnings:
        print(f"WARNING: {line}", file=sys.stderr)


def _report_exit(result: dict) -> int:
    if result.get("error"):
        print(f"{PROG}: {result['error']}", file=sys.stderr)
    return int(result["exit_code"])


def _each(refs, action) -> int:
    """Apply ``action`` to every container named; report errors one line each (docker's way)."""
    code = 0
    for ref in refs:
        try:
            action(ref)
            print(ref)
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    return code


def _ps_matches(c: dict, filters: list[tuple[str, str]]) -> bool:
    by_key: dict[str, list[str]] = {}
    for key, value in filters:
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        if key == "name":
            ok = any(v in c["name"] for v in values)
        elif key == "id":
            ok = any(c["id"].startswith(v) for v in values)
        elif key == "status":
            ok = c["status"] in values
        elif key == "label":
            from .events import label_matches
            ok = any(label_matches(c.get("labels") or {}, v) for v in values)
        else:
            raise errors.InvalidArgument(f"invalid filter '{key}' (use name, id, label or status)")
        if not ok:
            return False
    return True


def cmd_ps(args, client) -> int:
    items = client.ps(all=args.all or any(k == "status" for k, _ in args.filter))
    items = [c for c in items if _ps_matches(c, args.filter)]
    if args.quiet:
        for c in items:
            print(c["id"][:12])
        return 0
    if args.format == "json":
        for c in items:
            print(json.dumps(c))
        return 0
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in items:
        command = " ".join(c["command"])
        command = f'"{command[:20]}…"' if len(command) > 20 else f'"{command}"'
        status = "Up" if c["status"] == "running" else (
            f"Exited ({c['exit_code']})" if c["status"] == "exited" else c["status"].capitalize())
        rows.append((c["id"][:12], c["image"].get("requested", ""), command, c["created"][:19].replace("T", " "),
                     status, c["name"]))
    _table(rows)
    return 0


def cmd_stop(args, client) -> int:
    return _each(args.containers, lambda ref: client.stop(ref, timeout=args.time))


def cmd_kill(args, client) -> int:
    return _each(args.containers, lambda ref: client.kill(ref, args.signal))


def cmd_rm(args, client) -> int:
    code = 0
    for ref in args.containers:
        try:
            client.remove(ref, force=args.force)
            print(ref)
        except errors.ContainerNotFound as e:
            if not args.force:
                print(f"{PROG}: {e}", file=sys.stderr)
                code = 1
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    return code


def cmd_prune(args, client) -> int:
    if not args.force and sys.stdin.isatty():
        answer = input("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    removed = client.prune()
    if removed:
        print("Deleted Containers:")
        for item in removed:
            print(item["id"])
        print()
    print(f"Total reclaimed space: {_human(sum(i['size'] for i in removed))}")
    return 0


def cmd_logs(args, client) -> int:
    import time as _time

    from . import logs

    if args.tail != "all" and not args.tail.isdigit():
        raise errors.InvalidArgument(f"invalid --tail value '{args.tail}': a number or all")
    info = client.inspect(args.container)
    directory = client.container_dir(info["id"])
    records = list(logs.read(directory))
    if args.tail != "all":
        records = _tail_lines(records, int(args.tail))

    def emit(rec):
        out = sys.stdout if rec.get("stream") != "stderr" else sys.stderr
        text = rec["log"]
        if args.timestamps:
            text = "".join(f"{rec['time']} {line}" for line in text.splitlines(keepends=True))
        out.write(text)
        out.flush()
    for rec in records:
        emit(rec)
    if not args.follow:
        return 0
    seen = sum(1 for _ in logs.read(directory))
    while True:
        running = client.inspect(info["id"])["status"] == "running"
        current = list(logs.read(directory))
        if len(current) < seen:          # rotated: start over on the new file
            seen = 0
        for rec in current[seen:]:
            emit(rec)
        seen = len(current)
        if not running:
            return 0
        _time.sleep(0.2)


def _tail_lines(records: list[dict], n: int) -> list[dict]:
    """The records that hold the last ``n`` lines (the first one trimmed)."""
    out, lines = [], 0
    for rec in reversed(records):
        count = rec["log"].count("\n") or 1
        if lines + count > n:
            keep = n - lines
            if keep > 0:
                parts = rec["log"].splitlines(keepends=True)[-keep:]
                out.append(dict(rec, log="".join(parts)))
            break
        out.append(rec)
        lines += count
    return list(reversed(out))


def cmd_wait(args, client) -> int:
    code = 0
    for ref in args.containers:
        try:
            print(client.wait(ref)["exit_code"])
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    return code


def cmd_inspect(args, client) -> int:
    if args.namespaces:
        return _inspect_namespaces(args, client)
    out, code = [], 0
    for ref in args.containers:
        try:
            out.append(client.inspect(ref, transcript=args.transcript))
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    if args.transcript and args.format != "json":
        for rec in out:
            _print_transcript(rec)
        return code
    if args.transcript:
        print(json.dumps([r.get("transcript") for r in out], indent=2))
        return code
    print(json.dumps(out, indent=2))
    return code


def _print_transcript(rec: dict) -> None:
    transcript = rec.get("transcript")
    print(f"# {rec['name']} ({rec['id'][:12]}): how it was started")
    if not transcript:
        print("  (no transcript recorded)")
        return
    for i, stage in enumerate(transcript["stages"], 1):
        print(f"\n{i}. [{stage['id']}] {stage['title']}")
        for op in stage["ops"]:
            print(f"     {op['shell']}")


def cmd_events(args, client) -> int:
    import time as _time

    from .events import event_time, matches, parse_time

    after, since_time = 0, None
    if args.since:
        if args.since.isdigit() and len(args.since) < 10:
            after = int(args.since)
        else:
            since_time = parse_time(args.since)
    until = parse_time(args.until) if args.until else None
    filters: dict[str, list[str]] = {}
    for key, value in args.filter:
        if key not in ("container", "name", "kind", "event", "type", "image", "label"):
            raise errors.InvalidArgument(f"invalid filter '{key}' (use container, name, kind, image or label)")
        filters.setdefault(key, []).append(value)

    def show(event) -> bool:
        """Print one event; False once past --until."""
        t = event_time(event)
        if until is not None and t > until:
            return False
        if (since_time is None or t >= since_time) and matches(event, filters):
            if args.format == "json":
                print(json.dumps(event), flush=True)
            else:
                extra = "".join(f" {k}={event[k]}" for k in ("exit_code", "signal", "count", "exec_id")
                                if k in event and event[k] is not None)
                print(f"{event['time']} #{event['seq']} container {event['kind']} {event.get('id', '')[:12]} "
                      f"(name={event.get('name', '')}, image={(event.get('image') or {}).get('requested', '')}"
                      f"{extra})", flush=True)
        return True

    if not args.follow:
        for event in client.events(after=after):
            if not show(event):
                return 0
        return 0
    with client.subscribe(after=after) as events:     # pushed by the supervisor as they happen
        while until is None or _time.time() <= until:
            event = events.get(timeout=0.5)
            if event is not None and not show(event):
                return 0
    return 0


def _inspect_namespaces(args, client) -> int:
    code = 0
    for ref in args.containers:
        try:
            snap = client.snapshot(ref, network=False)
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
            continue
        if snap["status"] not in ("running", "starting"):
            print(f"{PROG}: container {snap['name']} is not running: its namespaces are gone", file=sys.stderr)
            code = 1
            continue
        if args.format == "json":
            print(json.dumps({"name": snap["name"], "reference": snap["reference"],
                              "namespaces": snap["namespaces"]}))
            continue
        rows = [("NAMESPACE", "CONTAINER", "HOST", "", "SHARED WITH")]
        for kind, ns in snap["namespaces"].items():
            others = (["host"] if ns["shared_with_host"] else []) + list(ns.get("shared_with") or [])
            rows.append((kind, ns["inode"], ns["host"] or "?", "shared" if others else "isolated",
                         ", ".join(others) or "-"))
        print(f"# {snap['name']}: namespaces of its PID 1 (host PID {snap['pid']}), "
              f"compared with {snap['reference']}")
        _table(rows)
    return code


def cmd_top(args, client) -> int:
    snap = client.snapshot(args.container, others=False, network=False)
    if snap["status"] not in ("running", "starting"):
        raise errors.NotRunning(f"container {snap['name']} is not running")
    procs = snap["processes"]
    if args.format == "json":
        print(json.dumps(procs))
        return 0
    users = _container_users(snap["pid"])
    children: dict[int, list[dict]] = {}
    for p in procs:
        children.setdefault(p["ppid"], []).append(p)
    rows = [("PID", "HOST PID", "USER", "STAT", "COMMAND")]

    def walk(p: dict, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else prefix + ("└─ " if last else "├─ ")
        rows.append((p["pid"], p["host_pid"], users.get(p["uid"], str(p["uid"])), p["state"],
                     branch + " ".join(p["cmd"])))
        kids = children.get(p["pid"], [])
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("" if depth == 0 else ("   " if last else "│  ")), i == len(kids) - 1, depth + 1)
    known = {p["pid"] for p in procs}
    for root in [p for p in procs if p["ppid"] == 0 or p["ppid"] not in known]:
        walk(root, "", True, 0)
    _table(rows)
    return 0


def _container_users(pid: int) -> dict[int, str]:
    """uid -> name from the container's own /etc/passwd (seen through /proc/PID/root)."""
    try:
        with open(f"/proc/{pid}/root/etc/passwd", encoding="utf-8", errors="replace") as f:
            return {int(e[2]): e[0] for e in (line.split(":") for line in f) if len(e) > 2 and e[2].isdigit()}
    except OSError:
        return {}


def cmd_diff(args, client) -> int:
    changes = client.diff(args.container)
    if args.format == "json":
        print(json.dumps([{"kind": k, "path": p} for k, p in changes]))
    else:
        for kind, path in changes:
            print(f"{kind} {path}")
    return 0


def cmd_gc(args, client) -> int:
    swept = client.gc()
    for item in swept:
        print(f"removed {item}")
    print(f"{len(swept)} leftover{'' if len(swept) == 1 else 's'} removed")
    return 0


def cmd_images(args, client) -> int:
    store = _image_store()
    store.ensure_lab()
    images = store.list()
    if args.quiet:
        for im in images:
            print(im.id.split(":", 1)[1][:12])
        return 0
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for im in images:
        repo, _, tag = im.ref.rpartition(":")
        rows.append((repo, tag, im.id.split(":", 1)[1][:12], im.created[:19].replace("T", " "), _human(im.size)))
    _table(rows)
    return 0


def _image_store():
    from . import paths
    from .images import ImageStore

    return ImageStore(paths.ensure_private_dir(paths.data_dir()) / "images")


def _docker_exit(func):
    """Image verbs fail the way docker's do: the one-line error, exit status 1."""
    import functools

    @functools.wraps(func)
    def wrapper(args, client) -> int:
        try:
            return func(args, client)
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return 1
    return wrapper


class _Progress:
    """One line of progress on stderr, rewritten in place -- only when stderr is a terminal."""

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.shown = False

    def __call__(self, text: str) -> None:
        if self.on:
            try:
                width = (os.get_terminal_size(2).columns or 80) - 1
            except OSError:
                width = 79
            sys.stderr.write("\r" + text[:width] + "\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


@_docker_exit
def cmd_load(args, client) -> int:
    from .images import archive

    if args.input is None and sys.stdin.isatty():
        raise errors.InvalidArgument("requested load from stdin, but stdin is empty "
                                     "(give a file with -i, or redirect one: container-lab load < FILE)")
    progress = _Progress(args.quiet)
    warnings: list[str] = []
    try:
        names = archive.load(_image_store(), args.input if args.input is not None else sys.stdin.buffer,
                             progress=progress, warn=warnings.append)
    finally:
        progress.done()
    _warn(warnings)
    for name in names:
        print(f"Loaded image: {name}")
    return 0


def cmd_rmi(args, client) -> int:
    # The supervisor decides what is in use and deletes, in one step: it
    # knows the containers being started right now, which `ps` here would not.
    results = client.call("rmi", images=args.images, force=args.force)["results"]
    code = 0
    for r in results:
        if "error" in r:
            print(f"{PROG}: {r['error']}", file=sys.stderr)
            code = 1
        else:
            print(f"Untagged: {r['untagged']}")
    return code


@_docker_exit
def cmd_image_prune(args, client) -> int:
    what = "all images without at least one container associated to them" if args.all else \
        "all dangling images (layers no image and no container needs)"
    if not args.force:
        if not sys.stdin.isatty():
            raise errors.InvalidArgument(f"image prune would remove {what}: add -f to do so without being asked")
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    reply = client.call("rmi", prune=True, all=args.all)
    for r in reply["results"]:
        if "error" in r:
            print(f"{PROG}: {r['error']}", file=sys.stderr)
        else:
            print(f"Untagged: {r['untagged']}")
    print(f"Total reclaimed space: {_human(reply['freed'])}")
    return 0


@_docker_exit
def cmd_pull(args, client) -> int:
    from .images.reference import parse_reference
    from .images.registry import pull

    store = _image_store()
    ref = str(parse_reference(args.image))
    try:
        before = store.resolve(ref).digest
    except errors.ImageError:
        before = None
    progress = _Progress(args.quiet)
    shown: set[str] = set()

    def report(event: dict) -> None:
        short = event.get("digest", "").removeprefix("sha256:")[:12]
        if event["event"] == "resolved" and not args.quiet:
            print(f"{ref.rpartition(':')[2]}: Pulling from {event['repository']}", flush=True)
        elif event["event"] == "downloading":
            progress(f"{short}: Downloading {_human(event['bytes'])}/{_human(event['size'])}")
        elif event["event"] in ("exists", "done") and not args.quiet and short not in shown:
            shown.add(short)
            progress.done()
            print(f"{short}: {'Already exists' if event['event'] == 'exists' else 'Pull complete'}", flush=True)

    try:
        result = pull(store, ref, report)
    finally:
        progress.done()
    if args.quiet:
        print(ref)
        return 0
    print(f"Digest: {result['digest']}")
    fresh = result["new"] or before != result["digest"]
    print(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {ref}")
    print(ref)
    return 0


@_docker_exit
def cmd_save(args, client) -> int:
    from .images import archive

    store = _image_store()
    if args.output:
        archive.save_to_file(store, args.images, args.output)
        return 0
    if sys.stdout.isatty():
        raise errors.InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    try:
        archive.save(store, args.images, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise errors.ImageError(f"cannot write the archive to standard output: {e.strerror or e}") from None
    return 0


@_docker_exit
def cmd_image_inspect(args, client) -> int:
    from .images.describe import inspect_record

    store = _image_store()
    out, code = [], 0
    for name in args.images:
        try:
            out.append(inspect_record(store, store.find(name)))
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    if args.format:
        for record in out:
            print(_template(args.format, record))
    else:
        print(json.dumps(out, indent=4))
    return code


def _template(template: str, record: dict) -> str:
    """The small part of Go templates that ``inspect -f`` needs: ``{{.A.B}}`` and ``{{json .A}}``."""
    import re

    def field(m) -> str:
        as_json, path = m[1], m[2]
        value = record
        for key in filter(None, path.split(".")):
            if not isinstance(value, dict) or key not in value:
                raise errors.InvalidArgument(f"template: no field {path!r} in an image record")
            value = value[key]
        if as_json:
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + " ".join(str(v) for v in value) + "]"
        if isinstance(value, dict):
            return "map[" + " ".join(f"{k}:{v}" for k, v in value.items()) + "]"
        return str(value)
    result, n = re.subn(r"\{\{\s*(json\s+)?(\.[A-Za-z0-9_.]*)\s*\}\}", field, template)
    if "{{" in result:
        raise errors.InvalidArgument(f"template: cannot read {template!r} (only {{{{.Field}}}} and "
                                     "{{json .Field}} are understood)")
    return result


@_docker_exit
def cmd_history(args, client) -> int:
    from .images.describe import history, since

    store = _image_store()
    image = store.find(args.image)
    rows = history(store, image)
    short = (lambda i: i) if args.no_trunc else (lambda i: i if i == "<missing>" else i.split(":", 1)[1][:12])
    if args.quiet:
        for row in rows:
            print(short(row["ID"]))
        return 0
    if args.format == "json":
        for row in rows:
            print(json.dumps({"Comment": row["Comment"], "CreatedAt": row["CreatedAt"],
                              "CreatedBy": row["CreatedBy"], "CreatedSince": since(row["CreatedAt"]),
                              "ID": short(row["ID"]), "Size": _human(row["Size"])}))
        return 0
    table = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    for row in rows:
        created_by = " ".join(row["CreatedBy"].split()) if not args.no_trunc else row["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append((short(row["ID"]), since(row["CreatedAt"]) or row["CreatedAt"], created_by,
                      _human(row["Size"]), row["Comment"]))
    _table(table)
    return 0


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def _not_a_verb(word: str) -> int:
    """docker's answer to a word that is no command of ours, with the nearest verb."""
    import difflib

    near = difflib.get_close_matches(word, sorted(VERBS), n=3, cutoff=0.5)
    near = [v for v in near if len(v) == len(word)] or near     # a key hit in its place: rum is run
    hint = f" Did you mean '{PROG} {near[0]}'?" if near else ""
    print(f"{PROG}: '{word}' is not a {PROG} command.{hint}\nSee '{PROG} --help'.", file=sys.stderr)
    return 125


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in VERBS and not argv[0].startswith("-"):
        return _not_a_verb(argv[0])
    parser = build_parser(argv[0] if argv and argv[0] in VERBS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit:                  # --help, --version, a usage error
        _flushed(0)
        raise
    if not getattr(args, "func", None):
        parser.print_help()
        return _flushed(0)
    from .client import Client

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


if __name__ == "__main__":
    sys.exit(main())
