"""The verbs that look at and manage containers: ps, stop, kill, rm,
container prune, logs, wait, inspect (--transcript, --namespaces), top, diff."""

from __future__ import annotations

import json
import sys

from .. import errors
from ..spec import human_size as _human
from . import PROG
from .output import _each, _table
from .parser import _Parser
from .values import _containers_arg, _filter_arg, _signal_arg


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
    from .run import _add_create
    from .share import _add_export

    _add_create(cosub, "create a container without starting it")
    _add_export(cosub, "write a container's file system as a tar archive")


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


_BUILD_LABEL = "org.container-lab.build"     # engine.images.build.runner.BUILD_LABEL, not imported for ps


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
            from ..events import label_matches
            ok = any(label_matches(c.get("labels") or {}, v) for v in values)
        else:
            raise errors.InvalidArgument(f"invalid filter '{key}' (use name, id, label or status)")
        if not ok:
            return False
    return True


def cmd_ps(args, client) -> int:
    items = client.ps(all=args.all or any(k == "status" for k, _ in args.filter))
    items = [c for c in items if _ps_matches(c, args.filter)]
    if not any(k == "label" and v.partition("=")[0] == _BUILD_LABEL for k, v in args.filter):
        # A build's RUN containers live for one step and are removed: not the learner's.
        items = [c for c in items if _BUILD_LABEL not in (c.get("labels") or {})]
    if args.quiet:
        for c in items:
            print(c["id"][:12])
        return 0
    if args.format == "json":
        for c in items:
            print(json.dumps(c))
        return 0
    from .networks import ports_column

    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for c in items:
        command = " ".join(c["command"])
        command = f'"{command[:20]}…"' if len(command) > 20 else f'"{command}"'
        status = "Up" if c["status"] == "running" else (
            f"Exited ({c['exit_code']})" if c["status"] == "exited" else c["status"].capitalize())
        rows.append((c["id"][:12], c["image"].get("requested", ""), command, c["created"][:19].replace("T", " "),
                     status, ports_column(c.get("ports") or []), c["name"]))
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

    from .. import logs

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
        rows = [("NAMESPACE", "CONTAINER", "HOST", "STATE", "SHARED WITH")]
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

