"""The supervisor's wire protocol, shared by both ends.

One JSON object per line over a Unix stream socket. File descriptors (a
client's stdio, a container's terminal) travel with SCM_RIGHTS beside the
message they belong to, and the message says how many in ``"nfds"``, so each
end hands every fd to the right message however the stream is cut.

Requests are bounded (:data:`MAX_MESSAGE`): a client refuses to send a larger
one and the supervisor answers one at once with an error. Replies are not: a
list of a thousand containers is as long as it is, and a client reads it
whole from its own supervisor.
"""

from __future__ import annotations

import json
import os
import socket

MAX_MESSAGE = 1 << 20
MAX_FDS = 16


class ProtocolError(Exception):
    """The peer sent something that is not a message."""


class MessageTooLarge(ProtocolError):
    """A message longer than the reader accepts."""


def encode(message: dict, nfds: int = 0) -> bytes:
    """One message as its line on the wire."""
    return (json.dumps({**message, "nfds": nfds}, separators=(",", ":")) + "\n").encode()


class Channel:
    """One end of a connection: a read buffer and the fds not yet claimed.

    ``max_message``: the longest message this end accepts (None: any)."""

    def __init__(self, sock: socket.socket, max_message: int | None = MAX_MESSAGE):
        self.sock = sock
        self.buf = bytearray()
        self.scanned = 0            # bytes of buf known to hold no newline
        self.fds: list[int] = []
        self.max_message = max_message

    def send(self, message: dict, fds: list[int] = ()) -> None:
        """Send one message (and its fds); raises OSError if the peer is gone."""
        data = encode(message, len(fds))
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            if sent < len(data):
                self.sock.sendall(data[sent:])
        else:
            self.sock.sendall(data)

    def feed(self, size: int = 65536) -> bool:
        """Read what is there (one recv); False at end of stream."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, size, MAX_FDS)
        self.fds.extend(fds)
        if not data:
            return False
        self.buf += data
        if self.max_message is not None and len(self.buf) > self.max_message and \
                self.buf.find(b"\n", self.scanned) < 0:
            raise MessageTooLarge(f"message too large (the limit is {self.max_message // 1024} KiB)")
        return True

    def take(self) -> tuple[dict, list[int]] | None:
        """The next complete message with its fds, or None if none is complete.
        Raises ProtocolError (after consuming the line) if it is not an object."""
        end = self.buf.find(b"\n", self.scanned)
        if end < 0:
            self.scanned = len(self.buf)
            return None
        line = bytes(self.buf[:end])
        del self.buf[:end + 1]
        self.scanned = 0
        if self.max_message is not None and len(line) > self.max_message:
            raise MessageTooLarge(f"message too large (the limit is {self.max_message // 1024} KiB)")
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
        return self.buf.find(b"\n", self.scanned) >= 0

    def receive(self) -> tuple[dict, list[int]]:
        """Block until a whole message has arrived; EOFError if the peer closed."""
        while (item := self.take()) is None:
            if not self.feed(1 << 18 if self.max_message is None else 65536):
                raise EOFError("the connection was closed")
        return item

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        self.sock.close()
