"""How a container's stdio reaches the caller's own, through pipes of ours.

The container (and the supervisor) get pipe ends, never the caller's terminal
or files: :class:`Relay` copies between them in the caller's process, as
Docker's and Podman's clients do. The caller's own pipes are handed on as
they are (:func:`_is_pipe`; :meth:`engine.client.Client._stdio` decides).
"""

from __future__ import annotations

import os
import time

from .. import errors

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from .connection import _Conn


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
