"""The verbs about this machine and the engine as a whole: doctor, gc and
events. (``--version`` is the parser's: :mod:`.parser`.)"""

from __future__ import annotations

import json

from .. import errors
from .values import _filter_arg


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


def _add_gc(sub, help_text: str) -> None:
    gc = sub.add_parser("gc", help=help_text,
                        description="Remove container dirs with no record and cgroups of containers that are not running.")
    gc.set_defaults(func=cmd_gc)


def _add_doctor(sub, help_text: str) -> None:
    dr = sub.add_parser("doctor", help=help_text,
                        description="Check this machine: root, overlayfs, each kind of namespace, and which "
                                    "cgroup limits (memory, pids, cpu, swap) are really applied -- with the "
                                    "reason for anything missing. Exit status 1 if containers cannot run here.")
    dr.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    dr.set_defaults(func=cmd_doctor)


def cmd_doctor(args, client) -> int:
    from ..doctor import diagnose

    report = diagnose(registry=True)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            print(f"{'ok ' if c['ok'] else 'NO '} {c['id']:<16} {c['detail']}")
        print("\ncontainers can run here" if report["ok"] else "\ncontainers cannot run here: see the NO lines")
    return 0 if report["ok"] else 1


def cmd_events(args, client) -> int:
    import time as _time

    from ..events import event_time, matches, parse_time

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
            elif event.get("kind") == "image":
                extra = "".join(f", {k}={event[k]}" for k in ("steps", "cached", "digest") if k in event)
                print(f"{event['time']} #{event['seq']} image {event.get('action', '')} {event.get('ref', '')} "
                      f"(names={','.join(event.get('names') or [])}{extra})", flush=True)
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


def cmd_gc(args, client) -> int:
    swept = client.gc()
    for item in swept:
        print(f"removed {item}")
    print(f"{len(swept)} leftover{'' if len(swept) == 1 else 's'} removed")
    return 0

