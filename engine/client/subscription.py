"""Engine events pushed by the supervisor as they happen (:meth:`engine.client.Client.subscribe`)."""

from __future__ import annotations

import os

from .. import errors

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from .connection import _Conn


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
