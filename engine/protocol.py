"""The supervisor's wire protocol, shared by both ends.

One JSON object per line over a Unix stream socket. File descriptors (a
client's stdio, a container's terminal) travel with SCM_RIGHTS beside the
message they belong to, and the message says how many in ``"nfds"``, so each
end hands every fd to the right message however the stream is cut.
"""

from __future__ import annotations

import json
import os
import socket

MAX_MESSAGE = 1 << 20
MAX_FDS = 16


class ProtocolError(Exception):
    """The peer sent something that is not a message."""


class Channel:
    """One end of a connection: a read buffer and the fds not yet claimed."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.fds: list[int] = []

    def send(self, message: dict, fds: list[int] = ()) -> None:
        """Send one message (and its fds); raises OSError if the peer is gone."""
        data = (json.dumps({**message, "nfds": len(fds)}) + "\n").encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def feed(self) -> bool:
        """Read what is there (one recv); False at end of stream."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, MAX_FDS)
        self.fds.extend(fds)
        if not data:
            return False
        self.buf += data
        if len(self.buf) > MAX_MESSAGE:
            raise ProtocolError("message too large")
        return True

    def take(self) -> tuple[dict, list[int]] | None:
        """The next complete message with its fds, or None if none is complete.
        Raises ProtocolError (after consuming the line) if it is not an object."""
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {e}") from None
        if not isinstance(message, dict):
            raise ProtocolError("not a JSON object")
        try:
            nfds = max(0, int(message.get("nfds", 0)))
        except (TypeError, ValueError):
            raise ProtocolError("nfds is not a number") from None
        fds, self.fds = self.fds[:nfds], self.fds[nfds:]
        return message, fds

    def pending(self) -> bool:
        """Whether a whole message is already buffered (a select would not see it)."""
        return b"\n" in self.buf

    def receive(self) -> tuple[dict, list[int]]:
        """Block until a whole message has arrived; EOFError if the peer closed."""
        while (item := self.take()) is None:
            if not self.feed():
                raise EOFError("the connection was closed")
        return item

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        self.sock.close()
