"""What a start or an exec gives back while its process runs.

:class:`Attached`: a container (or an exec) started attached; wait for its
exit, its relayed output copied meanwhile. :class:`Stepwise`: a container
started one stage at a time (``run --explain``), each stage read as it
comes, the next let go with :meth:`Stepwise.proceed`.
"""

from __future__ import annotations

import os

from .connection import _Conn, _error_from_reply, _wait_for_exit

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from .api import Client
    from .relay import Relay


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
