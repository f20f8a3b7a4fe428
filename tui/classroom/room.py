"""The room: its code, its seats, and the seats' app processes. No Textual here.

**Seats.** A learner's NAME (lower case, ``[a-z][a-z0-9_-]{0,31}``) is a seat:
slot N of the room (kept in ``room.json``: the same NAME is the same seat
again, from either door and after a restart of ``serve``), uid
``SEAT_UID_BASE + N`` -- an unprivileged uid with no /etc/passwd entry, as
systemd's DynamicUser, from a range no account and no /etc/subuid range
uses (checked when ``serve`` starts) -- and the directory
``<state>/seats/NAME`` (mode 0700, owned by that uid): the seat's home, its
progress and language (``progress/``), its course cache.

The seat is registered with the supervisor over the owner's connection
(``seat_add``: uid, name, budget), which from then on holds every connection
from that uid to the seat's policy; ``end`` removes it (``seat_rm``: its
containers, network and cgroup go; its directory, so its progress, stays).

**Processes.** Each session of a seat is the course app on a pty of its own,
started as root by :mod:`tui.classroom.seat_app` and dropped to the seat's
uid before it opens anything of the learner's.

**State dir** (``--state-dir``; default ``/var/lib/container-lab-classroom``,
or ``$CONTAINER_LAB_ROOT/classroom``): mode 0711, so a seat's process can
reach its own directory and nothing else; ``room.json``, ``ssh_host_key``
(0600) and ``classroom.log`` (joins, refusals) are root's.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import secrets
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

SEAT_UID_BASE = 1_990_000          # seat N runs as uid SEAT_UID_BASE + N
MAX_SEATS = 1000
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"      # no 0/o, 1/l/i: read aloud in a room


class RoomError(Exception):
    """Something that stops ``serve`` (one line)."""


def default_state_dir() -> Path:
    if root := os.environ.get("CONTAINER_LAB_ROOT"):
        return Path(root) / "classroom"
    return Path("/var/lib/container-lab-classroom")


def new_code() -> str:
    """A room code: 8 letters and digits, easy to read aloud (about 39 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def check_uid_range(count: int, passwd: str = "/etc/passwd", subuid: str = "/etc/subuid") -> None:
    """Refuse a seat uid range that an account or a subordinate range uses."""
    low, high = SEAT_UID_BASE, SEAT_UID_BASE + count
    for path in (passwd, "/etc/group"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split(":")
                    if len(parts) > 2 and parts[2].isdigit() and low <= int(parts[2]) < high:
                        raise RoomError(f"{path}: {parts[0]} has id {parts[2]}, in the range the seats use "
                                        f"({low}-{high - 1})")
        except FileNotFoundError:
            pass
    for path in (subuid, "/etc/subgid"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        start, n = int(parts[1]), int(parts[2])
                        if start < high and low < start + n:
                            raise RoomError(f"{path}: the range of {parts[0]} overlaps the seats' uids "
                                            f"({low}-{high - 1})")
        except FileNotFoundError:
            pass


class Seat:
    __slots__ = ("name", "slot", "dir", "sessions", "last_seen", "lang")

    def __init__(self, name: str, slot: int, base: Path):
        self.name, self.slot, self.dir = name, slot, base / name
        self.sessions: set = set()
        self.last_seen = time.monotonic()
        self.lang = ""

    @property
    def uid(self) -> int:
        return SEAT_UID_BASE + self.slot


class Room:
    """The room's code, seats and their processes."""

    def __init__(self, state_dir: Path, code: str, *, max_seats: int = 40, budget: dict | None = None,
                 course: str | None = None, client=None):
        from engine.client import Client

        self.state = Path(state_dir)
        self.code = code
        self.max_seats = max_seats
        self.budget = budget or {}
        self.course = course
        self.client = client or Client()
        self.seats: dict[str, Seat] = {}
        self.registered: set[str] = set()
        if self.state.is_dir() and any(self.state.iterdir()) and not (self.state / "room.json").exists() \
                and not (self.state / "seats").is_dir():
            # Its mode is about to become 0711 and its owner root: never a directory of something else.
            raise RoomError(f"{self.state} is not a classroom's state dir (no room.json): give a new or empty "
                            "directory")
        self.held = None                 # a connection that keeps the supervisor from idling out
        self.lock = threading.Lock()     # joins come from the doors' worker threads at once
        for d, mode in ((self.state, 0o711), (self.state / "seats", 0o711)):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, 0, 0)
            os.chmod(d, mode)
        self.load()

    # -- seats --------------------------------------------------------------------------

    def load(self) -> None:
        try:
            data = json.loads((self.state / "room.json").read_text())
            for name, slot in data.get("seats", {}).items():
                if NAME_RE.fullmatch(name) and isinstance(slot, int) and 0 <= slot < MAX_SEATS:
                    self.seats[name] = Seat(name, slot, self.state / "seats")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as e:
            self.log(f"room.json ignored: {e}")

    def save(self) -> None:
        tmp = self.state / ".room.json.tmp"
        tmp.write_text(json.dumps({"seats": {s.name: s.slot for s in self.seats.values()}}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state / "room.json")

    def seat(self, name: str) -> Seat:
        """The seat called ``name``, made on first use and registered with the
        supervisor (RoomError when the name is bad, the room is full or the
        engine refuses)."""
        from engine.errors import EngineError

        with self.lock:
            try:
                return self._seat(name)
            except EngineError as e:
                raise RoomError(f"the engine refused seat {name}: {e}") from None

    def _seat(self, name: str) -> Seat:
        if not NAME_RE.fullmatch(name):
            raise RoomError(f"{name[:40]!r} cannot be a seat's name: use a-z, 0-9, - and _, "
                            "starting with a letter (at most 32)")
        seat = self.seats.get(name)
        if seat is None:
            if sum(1 for s in self.seats.values()) >= self.max_seats:
                raise RoomError(f"the room is full ({self.max_seats} seats)")
            used = {s.slot for s in self.seats.values()}
            slot = next(n for n in range(MAX_SEATS) if n not in used)
            seat = self.seats[name] = Seat(name, slot, self.state / "seats")
            self.save()
        if not seat.dir.is_dir():
            seat.dir.mkdir(mode=0o700)
        os.chown(seat.dir, seat.uid, seat.uid)
        os.chmod(seat.dir, 0o700)
        # Registered at every join (the same answer again): the instructor may have
        # ended the seat meanwhile (class view), or the supervisor restarted.
        self.client.call("seat_add", uid=seat.uid, name=name, budget=self.budget)
        self.registered.add(name)
        seat.last_seen = time.monotonic()
        return seat

    def note_sessions(self) -> None:
        """``live.json``: each seat's sessions and their doors, for ``container-lab class``."""
        live = {"seats": {s.name: {"sessions": len(s.sessions), "doors": sorted({x.door for x in s.sessions})}
                          for s in self.seats.values()}}
        tmp = self.state / ".live.json.tmp"
        tmp.write_text(json.dumps(live))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state / "live.json")

    def hold_engine(self) -> None:
        """Keep one owner connection open: a supervisor with a client never
        idles out, so a seat's app (which may not start one) always finds it.
        Made again when the supervisor was restarted (the old one reads EOF)."""
        import socket

        if self.held is not None:
            try:
                if self.held.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                    return
            except BlockingIOError:
                return                     # open, nothing said: still held
            except OSError:
                pass
            self.held.close()
            self.held = None
        self.client.ping()                 # starts the supervisor if none runs
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.connect(self.client.socket_path)
        self.held = sock
        # Seats a previous supervisor knew (seats.json) are registered again on their next join.
        self.registered.clear()

    def release(self, name: str) -> list[str]:
        """A seat's containers, network and cgroup removed (its progress kept)."""
        if name not in self.registered:
            return []
        self.registered.discard(name)
        try:
            return self.client.call("seat_rm", name=name).get("removed", [])
        except Exception as e:  # noqa: BLE001 - the end of a class goes on for the other seats
            self.log(f"seat {name}: {e}")
            return []

    def end(self) -> None:
        """Every session ended, every seat released (progress kept)."""
        for seat in self.seats.values():
            for session in list(seat.sessions):
                if isinstance(session, SeatProcess):      # the web door's end with the door
                    session.terminate()
                else:
                    self.leave(seat, session)
        for name in list(self.registered):
            self.release(name)
        # Seats registered by an earlier serve that stopped without ending them.
        try:
            for item in self.client.call("seat_ls").get("seats", []):
                if item["name"] in self.seats:
                    self.registered.add(item["name"])
                    self.release(item["name"])
        except Exception as e:  # noqa: BLE001
            self.log(f"end: {e}")
        if self.held is not None:
            self.held.close()
            self.held = None

    def log(self, line: str) -> None:
        fd = os.open(self.state / "classroom.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n".encode("utf-8", "replace"))
        finally:
            os.close(fd)

    # -- a seat's app on a pty -------------------------------------------------------------

    def spawn(self, seat: Seat, *, term: str = "xterm-256color", cols: int = 80, rows: int = 24,
              lang: str | None = None) -> SeatProcess:
        proc = SeatProcess(self, seat, term=term, cols=cols, rows=rows, lang=lang)
        self.enter(seat, proc)
        return proc

    def enter(self, seat: Seat, session) -> None:
        seat.sessions.add(session)
        seat.last_seen = time.monotonic()
        self.note_sessions()

    def leave(self, seat: Seat, session) -> None:
        seat.sessions.discard(session)
        seat.last_seen = time.monotonic()
        self.note_sessions()


def seat_env(seat: Seat) -> dict[str, str]:
    """The environment of a seat's app: nothing of root's but the engine's socket and the course cache."""
    from engine import paths
    from tui import course_cache

    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": source_root(),
            "CONTAINER_LAB_STATE_DIR": paths.state_path(), "CONTAINER_LAB_SEAT": seat.name,
            "CONTAINER_LAB_CACHE_DIR": str(course_cache.cache_dir())}     # root's: read before the drop


def seat_argv(room: Room, seat: Seat, lang: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "tui.classroom.seat_app", str(seat.uid), str(seat.dir)]
    if lang:
        argv += ["--lang", lang]
    if room.course:
        argv += ["--course", room.course]
    return argv


def source_root() -> str:
    """The directory our packages are in (this file is tui/classroom/room.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(1, rows), max(1, cols), 0, 0))


class SeatProcess:
    """The course app of one session: a process on a pty, as the seat's uid.
    ``master`` is the pty's side the door reads and writes."""

    door = "ssh"

    def __init__(self, room: Room, seat: Seat, *, term: str, cols: int, rows: int, lang: str | None):
        self.room, self.seat = room, seat
        self.master, slave = pty.openpty()
        set_winsize(self.master, rows, cols)
        env = seat_env(seat) | {"TERM": term or "xterm-256color", "COLORTERM": "truecolor"}
        self.proc = subprocess.Popen(seat_argv(room, seat, lang), stdin=slave, stdout=slave, stderr=slave, env=env, cwd="/",
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        os.set_blocking(self.master, False)

    def resize(self, cols: int, rows: int) -> None:
        try:
            set_winsize(self.master, rows, cols)
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            except OSError:
                return
            view = view[n:]

    def terminate(self, grace: float = 3.0) -> None:
        """The app ended: SIGHUP as a closed terminal would, SIGKILL after ``grace``."""
        if self in self.seat.sessions:
            self.room.leave(self.seat, self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
