"""One connection to the supervisor, as the client sees it.

:class:`_Conn` is the client's end of the protocol (:mod:`engine.protocol`):
a request is bounded, a reply of any size is read, and a closed connection
is a :class:`~engine.errors.SupervisorError`. An error reply becomes the
matching :class:`~engine.errors.EngineError` (:func:`_error_from_reply`);
:func:`_wait_for_exit` reads a connection until its container's exit.
"""

from __future__ import annotations

import os

from .. import errors
from ..protocol import MAX_MESSAGE, Channel, ProtocolError, encode

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    import socket

    from .relay import Relay


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
