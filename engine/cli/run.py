"""The verbs that start processes: ``run`` (and ``run --explain``), ``exec``
and ``start``; the container config a ``run`` command line makes
(:func:`config_from`, which the course uses too), and the foreground relay
of a process's stdio and signals."""

from __future__ import annotations

import json
import os
import signal
import sys

from .. import errors
from . import PROG
from .output import _report_exit, _terminal_width, _warn
from .values import _containers_arg, _cpus, _kv, _memory, _pids, _swap


def _add_run(sub, help_text: str, name: str = "run") -> None:
    """``run``'s parser -- or, with ``name="create"``, ``create``'s: the same
    flags but those about starting (-d, --explain, --pause, --lang)."""
    import argparse

    from ..spec import DEFAULT_MEMORY, DEFAULT_PIDS

    create = name == "create"
    r = sub.add_parser(name, add_help=False, help=help_text,
                       description="Create a container from IMAGE, without starting it (`start` does); print "
                                   "its id." if create else
                                   "Create a container from IMAGE and run COMMAND in it (the image's "
                                   "default command when none is given). An image that is not here is "
                                   "pulled first, as `pull` would (--pull).")
    r.add_argument("-i", "--interactive", action="store_true", help="keep standard input open")
    r.add_argument("-t", "--tty", action="store_true", help="give the container a pseudo-terminal")
    if not create:
        r.add_argument("-d", "--detach", action="store_true",
                       help="run in the background and print the container id")
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
    r.add_argument("--network", "--net", default="bridge", metavar="NETWORK",
                   help="bridge (the default network: an address of its own, a way out through the host), "
                        "a network made with `network create`, none (loopback only), host (the host's own "
                        "network), or container:NAME (share another container's)")
    r.add_argument("--network-alias", action="append", default=[], metavar="NAME",
                   help="another name the container answers to on its (user) network")
    r.add_argument("--ip", metavar="ADDRESS", help="its address on a user network, e.g. 10.10.0.5")
    r.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:][HOST:]PORT[/udp]",
                   help="publish a container port on the host, e.g. -p 8080:80 (-p 80: a free host port)")
    r.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every port the image exposes, each on a free host port")
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
    r.add_argument("--pull", choices=["missing", "always", "never"], default="missing",
                   help="pull the image before creating the container: missing (the default: when it is "
                        "not here), always, never (refuse when it is not here)")
    if not create:
        r.add_argument("--explain", action="store_true",
                       help="start the container one stage at a time, explaining each: what it does, "
                            "its kernel calls and the equivalent shell commands")
        r.add_argument("--pause", action="store_true",
                       help="with --explain: wait for Enter after each stage (look at the half-built "
                            "container with top or inspect meanwhile)")
        r.add_argument("--lang", choices=["en", "zh"], help="with --explain: the language of the explanations "
                       "(default: your locale: LANGUAGE, LC_ALL, LC_MESSAGES, LANG; zh* -> 中文)")
    r.add_argument("--help", action="help", help="show this help and exit")
    r.add_argument("image", metavar="IMAGE", help="image to run, e.g. lab (built in, works offline)")
    r.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    if create:
        r.set_defaults(func=cmd_create, detach=False)
    else:
        r.set_defaults(func=cmd_run)


def _add_create(sub, help_text: str) -> None:
    _add_run(sub, help_text, name="create")


def _add_exec(sub, help_text: str) -> None:
    import argparse

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


def _add_start(sub, help_text: str) -> None:
    sa = sub.add_parser("start", help=help_text,
                        description="Start a stopped container again; its writable layer is kept.")
    sa.add_argument("-a", "--attach", action="store_true", help="attach to its output and wait for it")
    sa.add_argument("-i", "--interactive", action="store_true", help="attach standard input too")
    _containers_arg(sa)
    sa.set_defaults(func=cmd_start)


def config_from(args):
    from ..spec import ContainerConfig, Volume, parse_security_opts, parse_storage_opts

    return ContainerConfig(**parse_security_opts(args.security_opt),
        image=args.image, cmd=list(args.command), name=args.name, hostname=args.hostname,
        env=list(args.env), workdir=args.workdir, user=args.user,
        volumes=[Volume.parse(v) for v in args.volume], labels=dict(args.label), init=args.init,
        tty=args.tty, interactive=args.interactive, detach=args.detach, remove=args.remove,
        network=args.network, network_aliases=list(args.network_alias), ip=args.ip,
        publish=list(args.publish), publish_all=args.publish_all, pid_mode=args.pid_mode, ipc_mode=args.ipc_mode, uts_mode=args.uts_mode,
        userns_mode=args.userns_mode, timens=_timens(args.timens, args.clock_offset), memory=args.memory,
        memory_swap=args.memory_swap, pids_limit=args.pids_limit, cpus=args.cpus,
        storage_opt=parse_storage_opts(getattr(args, "storage_opt", None) or []),
    ).validate()


def _timens(bare: bool, offsets: list[str]) -> dict | None:
    """None (the host's clocks), or the offsets of a new time namespace:
    ``--clock-offset`` pairs, or for a bare ``--timens`` boottime set back by
    the host's uptime (so ``uptime`` inside says the container just booted)."""
    from ..spec import parse_timens

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


def _image_here(ref: str) -> bool:
    """Whether the store's index names ``ref`` as written (``:latest`` added),
    or it is the built-in ``lab``: a quick look, so that a run whose image is
    here pays nothing for the registry code. A no is checked properly (and
    the image pulled) by :func:`engine.images.pull.ensure_image`."""
    from .. import paths

    last = ref.rpartition("/")[2]
    name = ref if "@" in ref or ":" in last else f"{ref}:latest"
    if name == "lab:latest":
        return True
    try:
        with open(os.path.join(paths.data_path(), "images", "repositories.json"), "rb") as f:
            return name in json.loads(f.read())
    except (OSError, ValueError, TypeError):
        return False


def _ensure_image(args) -> None:
    """The image of a ``run`` or ``create``, pulled first if need be (``--pull``),
    docker's pull lines on stderr."""
    policy = getattr(args, "pull", "missing")
    if policy != "always" and _image_here(args.image):
        return
    from .images import pull_for_run

    pull_for_run(args.image, policy)


def cmd_create(args, client) -> int:
    _ensure_image(args)
    reply = client.create(config_from(args))
    _warn(reply.get("warnings", []))
    print(reply["id"])
    return 0


def cmd_run(args, client) -> int:
    _ensure_image(args)
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
        from ..terminal import run_with_terminal
        return run_with_terminal(lambda size: client.run(config, winsize=size), interactive=config.interactive)
    return _foreground(client, lambda stdio: client.run(config, stdio=stdio, relay=True),
                       interactive=config.interactive)


def _run_explained(client, config, *, pause: bool, lang: str | None) -> int:
    """``run --explain``: each stage as it is done -- what it is for, its
    kernel calls, the shell commands that would do the same."""
    from .. import explain

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


def cmd_exec(args, client) -> int:
    if not args.command:
        raise errors.InvalidArgument("exec needs a command to run: container-lab exec CONTAINER COMMAND...")
    opts = dict(env=args.env, workdir=args.workdir, user=args.user, interactive=args.interactive)
    if args.detach:
        client.exec(args.container, args.command, detach=True, tty=args.tty, **opts)
        return 0
    if args.tty:
        from ..terminal import run_with_terminal
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
        from ..terminal import run_with_terminal
        return run_with_terminal(lambda size: client.start(ref, attach=True, winsize=size),
                                 interactive=args.interactive)
    return _foreground(client, lambda stdio: client.start(ref, attach=True, stdio=stdio, relay=True),
                       interactive=args.interactive)

