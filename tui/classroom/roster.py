"""``container-lab class [--format json]``: the room's seats, for the instructor. No Textual here.

Read on the server, as root, from three places, each fresh at every call:

- the room (``room.json``: names and slots; ``live.json``, written by
  ``serve`` as sessions come and go: sessions per seat and their doors);
- each seat's progress (``seats/NAME/progress/progress.json``) -- a file the
  seat's own uid writes, so it is opened without following a symlink, only
  when it is a regular file, and at most 1 MiB of it read;
- the supervisor (``seat_ls``): each seat's containers and its cgroup's usage
  against its budget.

:func:`roster` returns it as data (what ``--format json`` prints);
:func:`main` prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from .room import NAME_RE, SEAT_UID_BASE, default_state_dir

MAX_PROGRESS = 1 << 20
CSV_COLUMNS = ("seat", "uid", "language", "lesson", "step", "steps_done", "last_activity", "last_checks",
               "sessions", "doors", "containers", "memory_bytes", "memory_budget_bytes")


def read_untrusted_json(path: Path) -> dict | None:
    """A JSON object from a file a seat controls (None when it is not one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_PROGRESS + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_PROGRESS:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def progress_summary(progress: dict | None) -> dict:
    """Language, where the learner is, steps done, the last step's time and checks."""
    if not progress:
        return {"language": None, "lesson": None, "step": None, "steps_done": 0, "last_activity": None,
                "last_checks": []}
    current = progress.get("current") if isinstance(progress.get("current"), dict) else {}
    done, last, last_checks = 0, None, []
    for course in (progress.get("courses") or {}).values():
        for lesson in (course or {}).values() if isinstance(course, dict) else ():
            for step in (lesson or {}).values() if isinstance(lesson, dict) else ():
                if not isinstance(step, dict):
                    continue
                done += bool(step.get("done"))
                when = step.get("time")
                if isinstance(when, str) and (last is None or when > last):
                    last, last_checks = when, [c for c in step.get("checks") or [] if isinstance(c, str)]
    return {"language": progress.get("language"), "lesson": current.get("lesson"), "step": current.get("step"),
            "steps_done": done, "last_activity": last, "last_checks": last_checks}


def roster(state: Path | None = None, client=None) -> dict:
    from engine.client import Client

    state = Path(state or default_state_dir())
    room = read_untrusted_json(state / "room.json") or {}
    live = read_untrusted_json(state / "live.json") or {}
    engine = {}
    try:
        for item in (client or Client(autostart=False)).call("seat_ls").get("seats", []):
            engine[item["name"]] = item
    except Exception as e:  # noqa: BLE001 - the engine down: the room is still shown
        engine_error = str(e)
    else:
        engine_error = None
    seats = []
    for name, slot in sorted((room.get("seats") or {}).items()):
        if not NAME_RE.fullmatch(name) or not isinstance(slot, int):
            continue
        e = engine.get(name, {})
        sessions = (live.get("seats") or {}).get(name, {})
        seats.append({"name": name, "uid": SEAT_UID_BASE + slot,
                      **progress_summary(read_untrusted_json(state / "seats" / name / "progress" / "progress.json")),
                      "sessions": sessions.get("sessions", 0), "doors": sessions.get("doors", []),
                      "in_engine": name in engine, "containers": e.get("containers", []),
                      "usage": e.get("usage", {}), "budget": e.get("budget", {})})
    return {"state_dir": str(state), "engine_error": engine_error, "seats": seats}


def send_message(state: Path | None, text: str, seats: list[str] | None = None) -> list[str]:
    """Append ``text`` to each seat's ``messages.jsonl`` (its app shows it within a
    second); returns the seats it went to. ValueError: empty, too long, no such seat."""
    import time

    from .seat_app import MESSAGES

    text = text.strip()
    if not text or len(text) > 500 or not text.isprintable():
        raise ValueError("a message is 1 to 500 printable characters")
    state = Path(state or default_state_dir())
    names = sorted((read_untrusted_json(state / "room.json") or {}).get("seats", {}))
    for name in seats or ():
        if name not in names:
            raise ValueError(f"no such seat: {name[:40]}")
    sent = []
    line = (json.dumps({"time": time.time(), "text": text}, ensure_ascii=False) + "\n").encode()
    for name in seats or names:
        d = state / "seats" / name
        try:
            # The seat's own directory: no symlink followed, nothing but a regular file appended to.
            dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fd = os.open(MESSAGES, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644,
                         dir_fd=dfd)
        except OSError:
            os.close(dfd)
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:       # never another file linked in
                os.write(fd, line)
                sent.append(name)
        finally:
            os.close(fd)
            os.close(dfd)
    return sent


def main(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="container-lab class",
                                description="The room's seats: progress, sessions, containers, usage.")
    p.add_argument("--format", choices=("live", "table", "json", "csv"), default=None,
                   help="live: the Textual view (the default in a terminal); table: one print; json, csv: "
                        "for scripts and spreadsheets (progress export)")
    p.add_argument("--state-dir", help="the room's state dir (default: serve's)")
    p.add_argument("--message", metavar="TEXT", help="show TEXT in the app of every seat (or of --seat's)")
    p.add_argument("--seat", metavar="NAME", action="append", help="with --message: this seat only (repeatable)")
    ns = p.parse_args(args)
    if os.geteuid() != 0:
        print("container-lab class runs as root, on the server that runs serve", file=sys.stderr)
        return 1
    state = Path(ns.state_dir) if ns.state_dir else None
    if ns.message is not None:
        try:
            sent = send_message(state, ns.message, ns.seat)
        except ValueError as e:
            print(f"container-lab class: {e}", file=sys.stderr)
            return 2
        print(f"sent to {len(sent)} seats: {', '.join(sent)}")
        return 0
    fmt = ns.format or ("live" if sys.stdin.isatty() and sys.stdout.isatty() else "table")
    if fmt == "live":
        from .class_app import ClassApp

        ClassApp(state).run()
        return 0
    data = roster(state)
    if fmt == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    if fmt == "csv":
        import csv

        out = csv.writer(sys.stdout)
        out.writerow(CSV_COLUMNS)
        for s in data["seats"]:
            out.writerow([s["name"], s["uid"], s["language"] or "", s["lesson"] or "", s["step"] or "",
                          s["steps_done"], s["last_activity"] or "", " ".join(s["last_checks"]), s["sessions"],
                          " ".join(s["doors"]), len(s["containers"]), s["usage"].get("memory_current") or "",
                          s["budget"].get("memory") or ""])
        return 0
    print(f"{'SEAT':<16} {'LANG':<5} {'LESSON':<24} {'STEP':<16} {'DONE':>4} {'SESSIONS':>8} {'CONTAINERS':>10}  MEMORY")
    for s in data["seats"]:
        mem = s["usage"].get("memory_current") or 0
        budget = s["budget"].get("memory") or 0
        print(f"{s['name']:<16} {s['language'] or '-':<5} {s['lesson'] or '-':<24} {s['step'] or '-':<16} "
              f"{s['steps_done']:>4} {s['sessions']:>8} {len(s['containers']):>10}  "
              f"{mem >> 20}/{budget >> 20} MiB")
    if data["engine_error"]:
        print(f"(the engine: {data['engine_error']})", file=sys.stderr)
    return 0
