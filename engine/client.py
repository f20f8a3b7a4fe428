"""The client API: how the CLI, the app and the tests talk to the supervisor.

Safe to use from any thread: it only connects to a Unix socket and, when no
supervisor runs yet, starts one with ``subprocess`` (which execs at once, so
no Python runs in a forked child of a threaded caller).
"""

from __future__ import annotations

import os
import socket
import sys
import time

from . import errors, paths
from .protocol import MAX_MESSAGE, Channel, ProtocolError, encode
from .spec import ContainerConfig

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from pathlib import Path


def _error_from_reply(reply: dict) -> errors.EngineError:
    cls = getattr(errors, reply.get("kind", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.EngineError)):
        cls = errors.EngineError
    err = cls.__new__(cls)
    errors.EngineError.__init__(err, reply.get("error", "unknown error"))
    err.exit_code = int(reply.get("exit_code", 125))
    err.stage = reply.get("stage", "")
    return err


class _Conn(Channel):
    """The client's end: a closed connection is a SupervisorError. Replies of
    any size are read (from our own supervisor); a request is bounded."""

    def __init__(self, sock: socket.socket):
        super().__init__(sock, max_message=None)

    def send(self, message: dict, fds: list[int] = ()) -> None:
        size = len(encode(message, len(fds)))
        if size > MAX_MESSAGE:
            raise errors.InvalidArgument(f"request too large: {size >> 10} KiB (the supervisor accepts at most "
                                         f"{MAX_MESSAGE >> 10} KiB)")
        super().send(message, fds)

    def receive(self) -> tuple[dict, list[int]]:
        try:
            return super().receive()
        except (EOFError, ProtocolError) as e:
            raise errors.SupervisorError(f"the supervisor closed the connection ({e})") from None


def _wait_for_exit(conn: _Conn, relay: Relay | None = None) -> dict:
    """Read a connection until its exit event: exit_code, oom_killed, error
    (copying a relay's streams meanwhile, and their rest after)."""
    conn.sock.settimeout(None)
    if relay is not None:
        return relay.run(conn)
    while True:
        message, fds = conn.receive()
        for fd in fds:
            os.close(fd)
        if message.get("event") == "exit":
            return message


def _is_pipe(fd: int) -> bool:
    import stat

    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode) and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        return False


def _is_null(fd: int) -> bool:
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return False
    return (st.st_mode, st.st_rdev) == (null.st_mode, null.st_rdev)


class Relay:
    """Pipes between a container and the caller's own stdio: the container
    (and the supervisor) get pipe ends, never the caller's terminal or files,
    and the caller's side is copied here, in :meth:`run`, as Docker's and
    Podman's clients do. ``fds``: ``[stdout, stderr]`` or ``[stdin, stdout, stderr]``."""

    QUIET_AFTER_EXIT = 1.0       # seconds of silence after the exit that end the copy

    def __init__(self, fds: list[int]):
        self.targets = list(fds[-2:])           # the caller's stdout, stderr
        self.stdin = fds[0] if len(fds) == 3 else None
        self.remote: list[int] = []             # the ends sent to the supervisor
        self.sources: dict[int, int] = {}       # our read end -> the caller's fd
        self.input_w = -1
        self.pending = b""                       # read from stdin, not yet written
        try:
            if self.stdin is not None:
                r, self.input_w = os.pipe2(os.O_CLOEXEC)
                os.set_blocking(self.input_w, False)
                self.remote.append(r)
            for target in self.targets:
                r, w = os.pipe2(os.O_CLOEXEC)
                self.sources[r] = target
                self.remote.append(w)
        except OSError:
            self.close()
            raise

    def sent(self) -> None:
        """The supervisor holds its copies: close ours of its ends."""
        for fd in self.remote:
            os.close(fd)
        self.remote = []

    def run(self, conn: _Conn) -> dict:
        """Copy until the exit event has come and the output pipes have ended."""
        import select

        exit_event = None
        quiet_deadline = None
        try:
            while True:
                if exit_event is None and conn.pending():
                    message, fds = conn.receive()
                    for fd in fds:
                        os.close(fd)
                    if message.get("event") == "exit":
                        exit_event = message
                        quiet_deadline = time.monotonic() + self.QUIET_AFTER_EXIT
                        self.stop_input()
                    continue
                if exit_event is not None and not self.sources:
                    return exit_event
                readers = list(self.sources)
                if exit_event is None:
                    readers.append(conn.sock)
                    if self.stdin is not None and not self.pending:
                        readers.append(self.stdin)
                writers = [self.input_w] if self.pending and self.input_w >= 0 else []
                timeout = None
                if quiet_deadline is not None:
                    timeout = max(0.0, quiet_deadline - time.monotonic())
                ready_r, ready_w, _ = select.select(readers, writers, [], timeout)
                if not ready_r and not ready_w and quiet_deadline is not None:
                    return exit_event       # the process left something holding its output: done
                for fd in ready_r:
                    if fd is conn.sock:
                        try:
                            alive = conn.feed()
                        except OSError as e:
                            raise errors.SupervisorError(f"talking to the supervisor failed: {e}") from None
                        if not alive:
                            raise errors.SupervisorError("the supervisor closed the connection")
                    elif fd == self.stdin:
                        self.read_input()
                    else:
                        self.copy_output(fd)
                if ready_w:
                    self.write_input()
                if exit_event is not None and ready_r:
                    quiet_deadline = time.monotonic() + self.QUIET_AFTER_EXIT
        finally:
            self.close()

    def copy_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            os.close(fd)
            del self.sources[fd]
            return
        target = self.sources[fd]
        if target < 0:
            return                        # the caller's side has gone: drained, dropped
        try:
            _write_all(target, data)
        except OSError:                   # EPIPE (`| head` done): keep draining, stop copying
            self.sources[fd] = -1

    def read_input(self) -> None:
        try:
            data = os.read(self.stdin, 65536)
        except OSError:
            data = b""
        if not data:
            self.stop_input()
            return
        self.pending = data
        self.write_input()

    def write_input(self) -> None:
        try:
            n = os.write(self.input_w, self.pending)
        except BlockingIOError:
            return
        except OSError:                   # the container closed its stdin
            self.stop_input()
            return
        self.pending = self.pending[n:]

    def stop_input(self) -> None:
        """Our input has ended (or the container has): the container sees EOF."""
        self.stdin = None
        self.pending = b""
        if self.input_w >= 0:
            os.close(self.input_w)
            self.input_w = -1

    def close(self) -> None:
        self.sent()
        self.stop_input()
        for fd in self.sources:
            os.close(fd)
        self.sources = {}


def _write_all(fd: int, data: bytes) -> None:
    import select

    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:           # a caller's non-blocking fd: wait until it takes more
            select.select([], [fd], [])
            continue
        view = view[n:]


class Attached:
    """A container started with ``attach=True``: wait for its exit here."""

    def __init__(self, conn: _Conn, reply: dict, pty: int | None, relay: Relay | None = None):
        self._conn = conn
        self._relay = relay
        self.id: str = reply["id"]
        self.name: str = reply["name"]
        self.pid: int = reply["pid"]
        self.pty = pty          # the terminal's master fd (tty containers), owned by the caller
        self.warnings: list[str] = reply.get("warnings", [])

    def fileno(self) -> int:
        """The connection's fd: readable when the exit event has arrived."""
        return self._conn.sock.fileno()

    def wait(self) -> dict:
        """Block until the container exits (copying its relayed output meanwhile);
        returns exit_code, oom_killed, error."""
        relay, self._relay = self._relay, None
        return _wait_for_exit(self._conn, relay)

    def close(self) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        self._conn.close()


class Stepwise:
    """A container being started one stage at a time (``run --explain``).

    Read stages with :meth:`next_stage`; a stage with ``paused`` true waits,
    half-built and observable, until :meth:`proceed`. After the last stage
    the start ends: :attr:`started` is set (or :meth:`next_stage` raises the
    start's error), and with ``attach`` :meth:`wait` gives the exit::

        start = client.run_stepwise(config)
        while (report := start.next_stage()) is not None:
            show(report["stage"])
            if report["paused"]:
                start.proceed()
        result = start.wait()
    """

    def __init__(self, client: Client, conn: _Conn, reply: dict, relay: Relay | None = None):
        self._client = client
        self._conn = conn
        self._relay = relay
        self.id: str = reply["id"]
        self.name: str = reply["name"]
        self.pid: int = reply["pid"]
        self.warnings: list[str] = reply.get("warnings", [])
        self.started: dict | None = None
        self._done = [{"stage": st, "paused": False} for st in reply.get("stages", [])]

    def next_stage(self) -> dict | None:
        """The next stage report ``{"stage": {...}, "paused": bool}``, or None
        once the container runs; a failed start raises its StartError."""
        if self._done:
            return self._done.pop(0)
        if self.started is not None:
            return None
        self._conn.sock.settimeout(None)
        while True:
            message, fds = self._conn.receive()
            for fd in fds:
                os.close(fd)
            event = message.get("event")
            if event == "stage":
                return {"stage": message["stage"], "paused": bool(message.get("paused"))}
            if event == "started":
                self.started = message
                self.warnings = message.get("warnings", self.warnings)
                return None
            if event == "start-failed":
                self._conn.close()
                err = _error_from_reply({**message, "kind": "StartError"})
                raise err

    def proceed(self) -> None:
        """Let the container go on to its next stage."""
        self._client.call("proceed", id=self.id)

    def fileno(self) -> int:
        return self._conn.sock.fileno()

    def pending(self) -> bool:
        """Whether a message (a stage, the start's end, the exit) has already
        arrived and waits to be read -- a select on :meth:`fileno` misses it."""
        return self._conn.pending()

    def wait(self) -> dict:
        """After the start, block until the container exits (attached starts only)."""
        while (report := self.next_stage()) is not None:
            if report["paused"]:            # the supervisor's own stages come done: nothing waits there
                self.proceed()
        relay, self._relay = self._relay, None
        return _wait_for_exit(self._conn, relay)

    def close(self) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        self._conn.close()


class Subscription:
    """Engine events as they happen (see :meth:`Client.subscribe`).

    ``get(timeout)`` returns the next event or None when the time is up, so
    a worker thread can poll a cancellation flag between calls; ``fileno()``
    is readable when an event is waiting on the connection."""

    def __init__(self, conn: _Conn, backlog: list[dict]):
        self._conn = conn
        self._queue = list(backlog)
        self.cursor = max((e["seq"] for e in backlog), default=0)

    def fileno(self) -> int:
        return self._conn.sock.fileno()

    def pending(self) -> bool:
        """Whether a message (a stage, the start's end, the exit) has already
        arrived and waits to be read -- a select on :meth:`fileno` misses it."""
        return self._conn.pending()

    def get(self, timeout: float | None = None) -> dict | None:
        """The next event, or None if none came within ``timeout`` seconds."""
        import select

        while not self._queue:
            if not self._conn.pending() and not select.select([self._conn.sock], [], [], timeout)[0]:
                return None
            message, fds = self._conn.receive()
            for fd in fds:
                os.close(fd)
            if message.get("event") == "dropped":
                raise errors.SupervisorError(message.get("error") or "the supervisor cut this subscription off")
            if message.get("event") == "event" and message["data"].get("seq", 0) > self.cursor:
                self._queue.append(message["data"])
        event = self._queue.pop(0)
        self.cursor = max(self.cursor, event["seq"])
        return event

    def __iter__(self):
        while True:
            yield self.get()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Client:
    """Requests to this user's supervisor, starting it on demand."""

    def __init__(self, *, state_dir=None, autostart: bool = True, timeout: float = 60.0):
        self.state_dir = str(state_dir) if state_dir else paths.state_path()
        self.autostart = autostart
        self.timeout = timeout

    @property
    def socket_path(self) -> str:
        return os.path.join(self.state_dir, "supervisor.sock")

    def _try_connect(self) -> socket.socket | None:
        """A connection to the supervisor, or None if none listens. Nothing is
        sent before the directory and the peer have been checked (below)."""
        self._check_directory()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except PermissionError:
            sock.close()
            raise errors.SupervisorError(
                f"permission denied on {self.socket_path}: the supervisor belongs to another user") from None
        except OSError as e:            # a path too long for a Unix socket, a file where a directory is ...
            sock.close()
            raise errors.SupervisorError(f"cannot connect to the supervisor at {self.socket_path}: "
                                         f"{e.strerror or e}") from None
        try:
            self._check_peer(sock)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        return sock

    # The CLI hands the supervisor its own terminal (stdin, stdout, stderr), so
    # whoever listens on the socket gets them: the socket is trusted only when
    # its directory is this user's or root's and not writable by others, and
    # only when the process listening runs as this user or root (SO_PEERCRED).
    def _check_directory(self) -> None:
        why = paths.untrusted_reason(self.state_dir)
        if why is not None:
            raise errors.SupervisorError(f"refusing the supervisor's directory: {why}")

    def _check_peer(self, sock: socket.socket) -> None:
        import struct

        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        me = os.geteuid()
        if uid not in (me, 0):
            raise errors.SupervisorError(f"refusing the supervisor at {self.socket_path}: it runs as uid {uid}, "
                                         f"not as you (uid {me}) or root")

    def _connect(self) -> _Conn:
        sock = self._try_connect()
        if sock is None and self.autostart:
            self._start_supervisor()
            sock = self._try_connect()
        if sock is None:
            raise errors.SupervisorError(f"no supervisor is listening on {self.socket_path}")
        return _Conn(sock)

    def _start_supervisor(self) -> None:
        """Start ``python -m engine.supervisor --daemon``, serialised by a lock."""
        import fcntl
        import subprocess

        self._check_directory()
        paths.ensure_private_dir(self.state_dir)
        self._check_directory()
        with open(os.path.join(self.state_dir, "start.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (sock := self._try_connect()) is not None:
                sock.close()
                return
            log_path = os.path.join(self.state_dir, "supervisor.log")
            with open(log_path, "ab") as log:
                start = log.tell()
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [os.path.dirname(os.path.dirname(os.path.realpath(__file__)))] +
                    ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
                rc = subprocess.call([sys.executable, "-m", "engine.supervisor", "--daemon"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                     cwd="/", env=env, start_new_session=True)
            if rc != 0:
                with open(log_path, "rb") as f:
                    f.seek(start)
                    tail = f.read().decode(errors="replace").strip().splitlines()
                raise errors.SupervisorError(tail[-1] if tail else "the supervisor failed to start")

    def call(self, op: str, *, fds: list[int] = (), **fields) -> dict:
        """One request, one reply; an error reply raises the matching EngineError."""
        conn = self._connect()
        try:
            conn.send({"op": op, **fields}, fds)
            reply, rfds = conn.receive()
            for fd in rfds:
                os.close(fd)
        except (OSError, ValueError) as e:
            raise errors.SupervisorError(f"talking to the supervisor failed: {e}") from None
        finally:
            conn.close()
        if not reply.get("ok"):
            raise _error_from_reply(reply)
        return reply

    # -- the verbs -----------------------------------------------------------
    def ping(self) -> dict:
        return self.call("ping")

    def _open(self, op: str, fields: dict, fds=()) -> tuple[_Conn, dict, list[int]]:
        """Send one request and read its reply, keeping the connection open for
        what follows on it (an exit event, stages, pushed events). An error
        reply raises the matching EngineError, with the connection closed."""
        conn = self._connect()
        try:
            conn.send({"op": op, **fields}, list(fds))
            reply, rfds = conn.receive()
        except (OSError, ValueError) as e:
            conn.close()
            raise errors.SupervisorError(f"talking to the supervisor failed: {e}") from None
        if not reply.get("ok"):
            conn.close()
            for fd in rfds:
                os.close(fd)
            raise _error_from_reply(reply)
        return conn, reply, rfds

    @staticmethod
    def _stdio(fds, attach: bool, relay: bool | None) -> tuple[list[int], Relay | None]:
        """What to send for ``fds``: the caller's own pipes as they are, or
        (``relay`` True, or any fd not a pipe) the ends of a :class:`Relay`."""
        fds = list(fds)
        if not attach or not fds:
            return [], None
        if relay is None:
            if len(fds) == 3 and _is_null(fds[0]) and all(_is_pipe(fd) for fd in fds[1:]):
                fds = fds[1:]             # nothing to read from: the container's stdin is /dev/null anyway
            relay = not all(_is_pipe(fd) for fd in fds)
        if not relay:
            return fds, None
        r = Relay(fds)
        return r.remote, r

    def _open_with_stdio(self, op: str, fields: dict, fds, attach: bool, relay: bool | None
                         ) -> tuple[_Conn, dict, list[int], Relay | None]:
        """:meth:`_open` with the caller's stdio handed over as pipes
        (:meth:`_stdio`): the relay is closed if the request fails, and told
        its far ends are sent once it went through."""
        send, rel = self._stdio(fds, attach, relay)
        try:
            conn, reply, rfds = self._open(op, fields, send)
        except BaseException:
            if rel is not None:
                rel.close()
            raise
        if rel is not None:
            rel.sent()
        return conn, reply, rfds, rel

    def _attached_request(self, op: str, fields: dict, fds: list[int], attach: bool,
                          relay: bool | None = None) -> Attached | dict:
        """A request whose reply may come with a terminal fd and, when
        attached, a later exit event on the same connection."""
        conn, reply, rfds, rel = self._open_with_stdio(op, {**fields, "attach": attach}, fds, attach, relay)
        if not attach:
            conn.close()
            for fd in rfds:
                os.close(fd)
            return reply
        return Attached(conn, reply, rfds[0] if rfds else None, rel)

    def run(self, config: ContainerConfig, *, stdio: list[int] = (), attach: bool = True,
            winsize: tuple[int, int] | None = None, relay: bool | None = None) -> Attached | dict:
        """Create and start a container.

        ``stdio``: where the container's output (and, with ``interactive``,
        input) goes -- ``[stdout, stderr]`` or ``[stdin, stdout, stderr]``. The
        container only ever gets pipes: the caller's own pipes are handed on,
        any other fd (a terminal, a file) is relayed through pipes of ours,
        copied in :meth:`Attached.wait` (``relay=True``: relay pipes too).
        The output is also kept in the container's log, as a detached one's is.
        With ``attach`` returns an :class:`Attached` (with the terminal master
        for a tty container), else the reply (id, name, pid).
        """
        config.validate()
        return self._attached_request("run", {"config": config.to_dict(),
                                              "winsize": list(winsize) if winsize else None},
                                      stdio, attach, relay)

    def create(self, config: ContainerConfig) -> dict:
        """Create a container without starting it (docker create): id, name."""
        config.validate()
        return self.call("create", config=config.to_dict())

    def run_stepwise(self, config: ContainerConfig, *, stdio: list[int] = (), attach: bool = True,
                     relay: bool | None = None) -> Stepwise:
        """Create a container and start it one stage at a time (see :class:`Stepwise`);
        ``stdio`` and ``relay`` as for :meth:`run`."""
        config.validate()
        conn, reply, rfds, rel = self._open_with_stdio(
            "run", {"config": config.to_dict(), "attach": attach, "stepwise": True}, stdio, attach, relay)
        for fd in rfds:
            os.close(fd)
        return Stepwise(self, conn, reply, rel)

    def start(self, ref: str, *, attach: bool = False, stdio: list[int] = (),
              winsize: tuple[int, int] | None = None, relay: bool | None = None) -> Attached | dict:
        """Start a stopped container again, its writable layer kept."""
        return self._attached_request("start", {"id": ref, "winsize": list(winsize) if winsize else None},
                                      stdio, attach, relay)

    def exec(self, ref: str, cmd: list[str], *, env: list[str] = (), workdir: str | None = None,
             user: str | None = None, tty: bool = False, interactive: bool = False, detach: bool = False,
             stdio: list[int] = (), winsize: tuple[int, int] | None = None,
             relay: bool | None = None) -> Attached | dict:
        """Run ``cmd`` in running container ``ref`` (every namespace and its cgroup joined);
        ``stdio`` and ``relay`` as for :meth:`run` (nothing of an exec is logged)."""
        opts = {"cmd": list(cmd), "env": list(env), "workdir": workdir, "user": user, "tty": tty,
                "interactive": interactive, "detach": detach}
        return self._attached_request("exec", {"id": ref, "exec": opts,
                                               "winsize": list(winsize) if winsize else None},
                                      stdio, not detach, relay)

    def wait(self, ref: str) -> dict:
        """Block until container ``ref`` has exited; returns its exit info."""
        return self._wait_for("wait", {"id": ref})

    def stop(self, ref: str, timeout: float = 10) -> dict:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once it has exited."""
        return self._wait_for("stop", {"id": ref, "timeout": timeout})

    def _wait_for(self, op: str, fields: dict) -> dict:
        conn = self._connect()
        try:
            conn.send({"op": op, **fields})
            reply, _ = conn.receive()
            if not reply.get("ok"):
                raise _error_from_reply(reply)
            if reply.get("event") == "exit":
                return reply
            return Attached(conn, {"id": fields["id"], "name": fields["id"], "pid": 0}, None).wait()
        finally:
            conn.close()

    def kill(self, ref: str, signal: int = 9) -> None:
        self.call("kill", id=ref, signal=signal)

    def remove(self, ref: str, *, force: bool = False) -> str:
        cid = self.call("rm", id=ref, force=force)["id"]
        observe = sys.modules.get("engine.observe")
        if observe is not None:
            observe.forget(cid)        # the /proc fds kept for its next snapshot
        return cid

    def ps(self, *, all: bool = False) -> list[dict]:  # noqa: A002 - docker's flag name
        return self.call("ps", all=all)["containers"]

    def inspect(self, ref: str, *, transcript: bool = False) -> dict:
        return self.call("inspect", id=ref, transcript=transcript)["container"]

    # networks
    def network_create(self, name: str, *, subnet: str | None = None, internal: bool = False) -> dict:
        return self.call("network_create", name=name, subnet=subnet, internal=internal)["network"]

    def networks(self) -> list[dict]:
        return self.call("network_ls")["networks"]

    def network_inspect(self, name: str) -> dict:
        return self.call("network_inspect", name=name)["network"]

    def network_remove(self, name: str) -> dict:
        return self.call("network_rm", name=name)

    def network_connect(self, network: str, container: str, *, aliases=(), ip: str | None = None) -> dict:
        return self.call("network_connect", network=network, container=container, aliases=list(aliases), ip=ip)

    def network_disconnect(self, network: str, container: str) -> dict:
        return self.call("network_disconnect", network=network, container=container)

    def network_prune(self) -> list[str]:
        return self.call("network_prune")["removed"]

    def port(self, ref: str) -> list[dict]:
        """A container's published ports: {host_ip, host_port, container_port, proto, container_ip}."""
        return self.call("port", id=ref)["ports"]

    def prune(self) -> list[dict]:
        """Remove every stopped container; returns [{id, size}]."""
        return self.call("prune")["removed"]

    def gc(self) -> list[str]:
        """Remove what crashed runs left; returns what was swept."""
        return self.call("gc")["swept"]

    def cursor(self) -> int:
        """The sequence number of the newest event: a step that begins now
        counts only events above it."""
        return int(self.ping()["events_seq"])

    def subscribe(self, *, after: int = 0) -> Subscription:
        """Events with a sequence number above ``after``, then live, pushed by
        the supervisor as they happen (the app's lab panel listens here)."""
        conn, reply, rfds = self._open("subscribe", {"after": after})
        for fd in rfds:
            os.close(fd)
        sub = Subscription(conn, reply.get("events", []))
        sub.cursor = max(sub.cursor, after)
        return sub

    def events(self, *, after: int = 0):
        """Events with a sequence number above ``after`` (see engine.events)."""
        from .events import EventLog
        return EventLog(paths.data_dir() / "events.jsonl").read(after=after)

    def snapshot(self, ref: str, *, others: bool | dict[str, int] = True, network: bool = True) -> dict:
        """What container ``ref`` is made of right now (see engine.observe).

        ``others``: compare namespaces with the other running containers (True),
        with these (a name -> PID 1 dict, e.g. from one ``ps`` shared by several
        snapshots), or with none (False). ``network``: False leaves the network
        out (it costs a pyroute2 import once, and a netlink dump each time)."""
        from . import observe

        record = self.inspect(ref)
        if others is True:
            others = {c["name"]: c["pid"] for c in self.ps() if c["pid"]}
        other_pids = {name: pid for name, pid in (others or {}).items()
                      if name != record["name"] and pid and pid != record.get("pid")}
        return observe.snapshot(record, cgroup=self._cgroup_of(record), others=other_pids, network=network)

    def diff(self, ref: str) -> list[tuple[str, str]]:
        """The container's writable-layer changes against its image (docker diff)."""
        from . import observe

        record = self.inspect(ref)
        return observe.diff_layer(record["rootfs"]["upper"], record["rootfs"]["layers"])

    def _cgroup_of(self, record: dict):
        """The container's cgroup (for its members and usage), or None. The
        layout is detected once per Client (it means parsing mountinfo)."""
        if not record.get("cgroup"):
            return None
        from .errors import CgroupError

        if getattr(self, "_driver", None) is None:
            from .cgroups import detect
            self._driver = detect()
        parent = os.path.basename(os.path.dirname(next(iter(record["cgroup"].values()))))
        try:
            return self._driver.open(record["id"], parent=parent)
        except CgroupError:
            return None

    def container_dir(self, ref: str) -> Path:
        """Where a container's files (log, transcript, layers) are."""
        return paths.data_dir() / "containers" / self.inspect(ref)["id"]

    def shutdown(self) -> None:
        """Ask a running supervisor to stop its containers and exit (no autostart)."""
        sock = self._try_connect()
        if sock is None:
            return
        conn = _Conn(sock)
        try:
            conn.send({"op": "shutdown"})
            conn.receive()
        finally:
            conn.close()
        deadline = time.monotonic() + 10
        while os.path.exists(self.socket_path) and time.monotonic() < deadline:
            time.sleep(0.02)

    def build(self, context, options=None, *, stream=None):
        """Build an image from ``context`` (a directory with a Dockerfile) here,
        RUN steps in containers of this supervisor; see engine.images.build.
        ``options``: an engine.images.build.Options; progress goes to
        ``stream`` (stderr). Returns a Result: id, names, warnings."""
        from .images.build import build

        return build(self, context, options, stream=stream)

    def commit(self, ref: str, name: str | None = None, **options):
        """Make container ``ref``'s writable layer a new image (docker commit);
        ``options``: pause, message, author, changes. Returns id, name, warnings."""
        from .images.build import commit

        return commit(self, ref, name, **options)
