"""The SSH door: ``ssh -p 2222 NAME@SERVER``, the room code as password, lands in the course.

An asyncssh server. The user name is the seat's name (the same name is the
same seat again); the password is the room code, compared in constant time,
with failures counted per source address (:mod:`.limiter`): a locked-out
address is refused whatever it sends. A session must ask for a terminal
(``ssh -t`` when a command is given); its shell is the seat's course app on
a pty (:class:`~tui.classroom.room.SeatProcess`), bytes relayed both ways,
window changes passed on (TIOCSWINSZ). The host key is made once (ed25519)
and kept in the state dir (0600), so learners' ``known_hosts`` stay valid.
"""

from __future__ import annotations

import asyncio
import hmac
import os

import asyncssh

from tui.i18n import t

from .room import NAME_RE, Room, RoomError, SeatProcess


def host_key(path) -> asyncssh.SSHKey:
    """The server's key: read, or made once and kept (mode 0600)."""
    path = str(path)
    if os.path.exists(path):
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    os.replace(path + ".tmp", path)
    return key


class SSHDoor:
    """The server; :meth:`start` listens, :meth:`close` ends it."""

    def __init__(self, room: Room, limiter, host: str, port: int, lang: str):
        self.room, self.limiter, self.host, self.port, self.lang = room, limiter, host, port, lang
        self.server = None
        self.sessions: set[_Session] = set()

    async def start(self) -> int:
        key = host_key(self.room.state / "ssh_host_key")
        self.server = await asyncssh.create_server(
            lambda: _Server(self), self.host, self.port, server_host_keys=[key],
            encoding=None, login_timeout=60,
            allow_scp=False, x11_forwarding=False, agent_forwarding=False)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for session in list(self.sessions):
            session.end()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class _Server(asyncssh.SSHServer):
    def __init__(self, door: SSHDoor):
        self.door = door
        self.address = "?"

    def connection_made(self, conn) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.address = peer[0] if peer else "?"

    def session_requested(self):
        return _Session(self.door)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    async def validate_password(self, username: str, password: str) -> bool:
        door, room = self.door, self.door.room
        if door.limiter.locked_for(self.address):
            room.log(f"ssh {self.address} {username[:40]!r}: refused, too many wrong codes")
            return False
        name = username.lower()
        if not hmac.compare_digest(password.encode(), room.code.encode()):
            door.limiter.failed(self.address)
            room.log(f"ssh {self.address} {username[:40]!r}: wrong code")
            await asyncio.sleep(1.0)               # each guess costs its sender a second
            return False
        if not NAME_RE.fullmatch(name):
            self.conn.send_auth_banner(t(door.lang, "serve.bad_name", name=username[:40]) + "\r\n")
            room.log(f"ssh {self.address} {username[:40]!r}: not a seat name")
            return False
        door.limiter.succeeded(self.address)
        try:
            await asyncio.get_running_loop().run_in_executor(None, room.seat, name)
        except (RoomError, OSError) as e:
            self.conn.send_auth_banner(f"{e}\r\n")
            room.log(f"ssh {self.address} {name}: {e}")
            return False
        room.log(f"ssh {self.address} {name}: joined")
        return True


class _Session(asyncssh.SSHServerSession):
    def __init__(self, door: SSHDoor):
        self.door = door
        self.term, self.size = "xterm-256color", (80, 24)
        self.pty = False
        self.proc: SeatProcess | None = None
        self.chan = None

    def connection_made(self, chan) -> None:
        self.chan = chan

    def pty_requested(self, term_type, term_size, term_modes) -> bool:
        self.pty = True
        self.term = term_type or self.term
        if term_size and term_size[0] and term_size[1]:
            self.size = (term_size[0], term_size[1])
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command) -> bool:
        return True            # answered in session_started: the course needs a terminal

    def session_started(self) -> None:
        chan = self.chan
        if not self.pty:
            chan.write(t(self.door.lang, "serve.needs_tty").encode() + b"\r\n")
            chan.exit(1)
            return
        name = chan.get_extra_info("username").lower()
        room = self.door.room
        seat = room.seats[name]
        cols, rows = self.size
        try:
            self.proc = room.spawn(seat, term=self.term, cols=cols, rows=rows)
        except OSError as e:
            chan.write(f"{e}\r\n".encode())
            chan.exit(1)
            return
        self.door.sessions.add(self)
        asyncio.get_running_loop().add_reader(self.proc.master, self.on_output)

    def on_output(self) -> None:
        try:
            data = os.read(self.proc.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.chan.write(data)
            return
        self.end()                              # the app ended (EIO on the pty)

    def data_received(self, data, datatype) -> None:
        if self.proc is not None:
            self.proc.write(data)

    def terminal_size_changed(self, width, height, pixwidth, pixheight) -> None:
        if self.proc is not None:
            self.proc.resize(width, height)

    def connection_lost(self, exc) -> None:
        self.end()

    def end(self) -> None:
        """The app's process ended (HUP, then KILL), the channel closed."""
        self.door.sessions.discard(self)
        proc, self.proc = self.proc, None
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(proc.master)
        except (ValueError, OSError):
            pass
        code = proc.proc.poll()
        self.door.room.leave(proc.seat, proc)
        loop.run_in_executor(None, proc.terminate)
        try:
            self.chan.exit(code or 0)
        except (OSError, asyncssh.Error, AttributeError):
            pass
