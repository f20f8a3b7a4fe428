"""``container-lab serve``: one Linux server for a whole room.

Run as root. Opens the two doors (SSH, browser), prints the room code and
how to join, serves until Ctrl+C or SIGTERM, then ends the class: every
session's app ended, every seat released (its containers removed, its
network and cgroup too), progress kept in the seats' directories. A seat
with no session for ``--idle-timeout`` is released the same way (progress
kept; it comes back with the same name).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

from tui.i18n import detect_language, t

DEFAULT_SSH, DEFAULT_WEB = 2222, 8080


def parse_address(flag: str, value: str, lang: str) -> tuple[str, int] | None:
    """``[HOST:]PORT`` (or ``off``) -> (host, port); host defaults to every address."""
    if value == "off":
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise SystemExit(t(lang, "serve.bad_address", flag=flag, value=value))
    return host, int(port)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration: {text!r} (e.g. 900, 15m, 1h)") from None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 up, not {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    from engine.cli.values import _cpus, _size

    p = argparse.ArgumentParser(
        prog="container-lab serve",
        description="Serve the course to a room: learners join with ssh or a browser, each in a seat of "
                    "their own (own user, containers, network, budget).")
    p.add_argument("--ssh", default=str(DEFAULT_SSH), metavar="[HOST:]PORT",
                   help=f"the SSH door (default {DEFAULT_SSH}; off: none)")
    p.add_argument("--web", default=str(DEFAULT_WEB), metavar="[HOST:]PORT",
                   help=f"the browser door (default {DEFAULT_WEB}; off: none)")
    p.add_argument("--code", help="the room code (default: a new one, printed)")
    p.add_argument("--seats", type=_count, default=40, metavar="N", help="at most N learners (default 40)")
    p.add_argument("--seat-memory", type=_size, default=512 << 20, metavar="BYTES",
                   help="memory of all a seat's containers together (default 512m)")
    p.add_argument("--seat-pids", type=_count, default=512, metavar="N",
                   help="processes of all a seat's containers together (default 512)")
    p.add_argument("--seat-cpus", type=_cpus, default=1.0, metavar="CPUS", help="CPUs of a seat (default 1)")
    p.add_argument("--seat-containers", type=_count, default=5, metavar="N",
                   help="containers a seat may have at once (default 5)")
    p.add_argument("--course", metavar="DIR", help="serve the course in DIR instead of the built-in one")
    p.add_argument("--idle-timeout", type=_duration, default=1800.0, metavar="TIME",
                   help="release a seat with no session for this long: its containers removed, its "
                        "progress kept (default 30m)")
    p.add_argument("--state-dir", help="the room's state: seats, host key, log "
                                       "(default /var/lib/container-lab-classroom)")
    return p


def main(args: list[str]) -> int:
    lang = detect_language()
    if os.geteuid() != 0:
        print(t(lang, "serve.not_root"), file=sys.stderr)
        return 1
    ns = parser().parse_args(args)
    try:
        ssh = parse_address("--ssh", ns.ssh, lang)
        web = parse_address("--web", ns.web, lang)
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        return 2
    from pathlib import Path

    from .room import Room, RoomError, check_uid_range, default_state_dir, new_code

    if ns.seats > 1000:
        print("container-lab serve: --seats is at most 1000", file=sys.stderr)
        return 2
    code = ns.code or new_code()
    if len(code) < 4 or not code.isprintable():
        print("container-lab serve: --code needs at least 4 printable characters", file=sys.stderr)
        return 2
    budget = {"memory": ns.seat_memory, "pids": ns.seat_pids, "cpus": ns.seat_cpus,
              "containers": ns.seat_containers}
    try:
        check_uid_range(ns.seats)
        room = Room(Path(ns.state_dir) if ns.state_dir else default_state_dir(), code, max_seats=ns.seats,
                    budget=budget, course=ns.course)
    except (RoomError, OSError) as e:
        print(f"container-lab serve: {e}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(room, ssh, web, ns.idle_timeout, lang))


async def _serve(room, ssh, web, idle_timeout: float, lang: str) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*DSA.*")     # asyncssh still imports DSA support
    from .limiter import Limiter
    from .ssh_door import SSHDoor
    from .web_door import WebDoor

    limiter = Limiter()
    doors = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await loop.run_in_executor(None, room.hold_engine)
    except Exception as e:  # noqa: BLE001 - EngineError, OSError: the engine cannot be reached
        print(f"container-lab serve: {e}", file=sys.stderr)
        return 1
    print(t(lang, "serve.started", code=room.code), flush=True)
    for address, make, key in ((ssh, lambda h, p: SSHDoor(room, limiter, h, p, lang), "serve.join_ssh"),
                               (web, lambda h, p: WebDoor(room, limiter, h, p), "serve.join_web")):
        if address is None:
            continue
        door = make(*address)
        try:
            port = await door.start()
        except OSError as e:
            print(t(lang, "serve.cannot_listen", host=address[0], port=address[1], error=e.strerror or e),
                  file=sys.stderr)
            for d in doors:
                await d.close()
            await loop.run_in_executor(None, room.end)
            return 1
        doors.append(door)
        host = address[0] if address[0] not in ("0.0.0.0", "::") else os.uname().nodename
        print(t(lang, key, host=host, port=port), flush=True)
        room.log(f"{type(door).__name__} listening on {address[0]}:{port}")
    print(t(lang, "serve.stop_hint"), flush=True)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(30.0, max(1.0, idle_timeout / 4)))
        except TimeoutError:
            pass
        try:
            await loop.run_in_executor(None, room.hold_engine)
        except Exception as e:  # noqa: BLE001
            room.log(f"the engine cannot be reached: {e}")
        now = time.monotonic()
        for seat in list(room.seats.values()):
            if seat.name in room.registered and not seat.sessions and now - seat.last_seen > idle_timeout:
                removed = await loop.run_in_executor(None, room.release, seat.name)
                room.log(f"seat {seat.name}: idle, released ({len(removed)} containers removed)")
    for door in doors:
        await door.close()
    before = sum(len(s.get("containers", [])) for s in _seat_list(room))
    await loop.run_in_executor(None, room.end)
    room.log("class ended")
    print(t(lang, "serve.ended", count=before, path=room.state / "seats"), flush=True)
    return 0


def _seat_list(room) -> list[dict]:
    try:
        return room.client.call("seat_ls").get("seats", [])
    except Exception:  # noqa: BLE001 - only a count for the closing line
        return []
