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

DESCRIPTION = """\
Learn what a container really is, by running real ones.

Run `container-lab` with no verb to open the course. The verbs below work like
their docker namesakes, on this machine's real namespaces, overlayfs and cgroups.
Try:  container-lab run --rm -it lab bash
"""


class _Parser(argparse.ArgumentParser):
    """argparse with docker's exit code (125) and a one-line error."""

    def error(self, message: str):
        self.exit(125, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def _size(text: str) -> int:
    from .cgroups import parse_size
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
    return None if value == 0 else value


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"invalid label '{text}': expected KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    from .spec import DEFAULT_MEMORY, DEFAULT_PIDS

    p = _Parser(prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    r = sub.add_parser("run", add_help=False, help="create and start a container from an image",
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
                   help="network: none (a loopback device only; the default)")
    r.add_argument("--help", action="help", help="show this help and exit")
    r.add_argument("image", metavar="IMAGE", help="image to run, e.g. lab (built in, works offline)")
    r.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    r.set_defaults(func=cmd_run)

    ps = sub.add_parser("ps", help="list containers", description="List running containers (-a: all).")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    ps.set_defaults(func=cmd_ps)

    rm = sub.add_parser("rm", help="remove containers", description="Remove one or more containers.")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first; no error if missing")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")
    rm.set_defaults(func=cmd_rm)

    wait = sub.add_parser("wait", help="wait for containers to stop; print their exit codes",
                          description="Block until each container stops, then print its exit code.")
    wait.add_argument("containers", nargs="+", metavar="CONTAINER")
    wait.set_defaults(func=cmd_wait)

    ins = sub.add_parser("inspect", help="show a container's record as JSON",
                         description="Print the full record of one or more containers as JSON.")
    ins.add_argument("containers", nargs="+", metavar="CONTAINER")
    ins.set_defaults(func=cmd_inspect)

    im = sub.add_parser("images", help="list images", description="List the images in the local store.")
    im.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    im.set_defaults(func=cmd_images)
    return p


# -- verbs -----------------------------------------------------------------

def _config_from(args):
    from .spec import ContainerConfig, Volume

    return ContainerConfig(
        image=args.image, cmd=list(args.command), name=args.name, hostname=args.hostname,
        env=list(args.env), workdir=args.workdir, user=args.user,
        volumes=[Volume.parse(v) for v in args.volume], labels=dict(args.label), init=args.init,
        tty=args.tty, interactive=args.interactive, detach=args.detach, remove=args.remove,
        network=args.network, memory=args.memory, memory_swap=args.memory_swap,
        pids_limit=args.pids_limit, cpus=args.cpus,
    ).validate()


def cmd_run(args, client) -> int:
    config = _config_from(args)
    if config.detach:
        reply = client.run(config, attach=False)
        _warn(reply.get("warnings", []))
        print(reply["id"])
        return 0
    if config.tty:
        from .terminal import run_with_terminal
        return run_with_terminal(client, config)
    stdio = [0, 1, 2] if config.interactive else [1, 2]
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
        run = client.run(config, stdio=stdio)
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


def _warn(warnings: list[str]) -> None:
    """Limits that could not be applied are said out loud, never pretended."""
    for line in warnings:
        print(f"WARNING: {line}", file=sys.stderr)


def _report_exit(result: dict) -> int:
    if result.get("error"):
        print(f"{PROG}: {result['error']}", file=sys.stderr)
    return int(result["exit_code"])


def cmd_ps(args, client) -> int:
    items = client.ps(all=args.all)
    if args.quiet:
        for c in items:
            print(c["id"][:12])
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
    out, code = [], 0
    for ref in args.containers:
        try:
            out.append(client.inspect(ref))
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    print(json.dumps(out, indent=2))
    return code


def cmd_images(args, client) -> int:
    from . import paths
    from .images import ImageStore

    store = ImageStore(paths.ensure_private_dir(paths.data_dir()) / "images")
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


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return f"{n}"


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .client import Client

    try:
        return args.func(args, Client())
    except errors.EngineError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
