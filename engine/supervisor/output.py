"""A container's output: read at a bounded rate (``OUTPUT_RATE``), logged,
and copied to an attached client's pipe (a :class:`~.state.Sink`) while that
client keeps up.
"""

from __future__ import annotations

import os
import selectors

from ..container import Container
from ..logs import LogWriter
from .settings import OUTPUT_BURST, OUTPUT_RATE, OUTPUT_TICK, SINK_BACKLOG
from .state import Sink


class Output:
    """Reading, logging, pacing and copying containers' output."""

    def start_draining(self, c: Container, fd: int) -> None:
        c.drain_pty = True
        os.set_blocking(fd, False)
        self.pace_output(c)

    def output_fds(self, c: Container) -> list[int]:
        return list(c.outputs) + ([c.pty] if c.drain_pty and c.pty >= 0 else [])

    def pace_output(self, c: Container) -> None:
        """Read a container's output pipes only while it has budget left and
        its attached client keeps up (see OUTPUT_RATE, SINK_BACKLOG)."""
        budget = self.budget.get(c.id, OUTPUT_BURST)
        held = False
        for fd in self.output_fds(c):
            sink = self.sinks.get(fd)
            want = budget > 0 and (sink is None or len(sink.buf) < SINK_BACKLOG)
            if want and fd not in self.reading:
                self.sel.register(fd, selectors.EVENT_READ, ("output", c))
                self.reading.add(fd)
            elif not want and fd in self.reading:
                self.sel.unregister(fd)
                self.reading.discard(fd)
            held = held or not want
        if held and budget <= 0:
            self.throttled.add(c.id)
        else:
            self.throttled.discard(c.id)

    def refill(self, t: float) -> None:
        elapsed = t - (self.next_refill - OUTPUT_TICK) if self.next_refill else OUTPUT_TICK
        self.next_refill = t + OUTPUT_TICK
        for cid in list(self.budget):
            value = min(OUTPUT_BURST, self.budget[cid] + OUTPUT_RATE * max(OUTPUT_TICK, elapsed))
            if value >= OUTPUT_BURST:
                del self.budget[cid]
            else:
                self.budget[cid] = value
        for cid in list(self.throttled):
            c = self.containers.get(cid)
            if c is None:
                self.throttled.discard(cid)
            else:
                self.pace_output(c)

    def on_output(self, fd, c: Container) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""           # EIO: the terminal's other side closed
        if not data:
            self.unwatch_output(fd)
            if fd == c.pty:
                c.pty = -1
            else:
                c.outputs.pop(fd, None)
            os.close(fd)
            self.end_sink(fd)
            return
        self.output(c, fd, data)
        self.budget[c.id] = self.budget.get(c.id, OUTPUT_BURST) - len(data)
        if self.budget[c.id] <= 0 or fd in self.sinks:
            self.pace_output(c)

    def output(self, c: Container, fd: int, data: bytes) -> None:
        """Log a chunk of output, and copy it to the attached client's pipe."""
        log = self.logs.get(c.id)
        if log is None:
            log = self.logs[c.id] = LogWriter(c.dir)
        log.write(c.outputs.get(fd, "stdout"), data)
        sink = self.sinks.get(fd)
        if sink is not None:
            sink.buf += data
            self.flush_sink(sink)

    def unwatch_output(self, fd: int) -> None:
        if fd in self.reading:
            self.reading.discard(fd)
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass

    def on_sink(self, _fd, sink: Sink) -> None:
        self.flush_sink(sink)

    def flush_sink(self, sink: Sink) -> None:
        while sink.buf:
            try:
                n = os.write(sink.fd, sink.buf[:1 << 16])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:              # the client has gone (EPIPE): its copy ends, the log goes on
                sink.buf.clear()
                sink.closing = True
                break
            del sink.buf[:n]
        if not sink.buf and sink.closing:
            self.close_sink(sink)
            return
        want = bool(sink.buf)
        if want != sink.writing:
            if want:
                self.sel.register(sink.fd, selectors.EVENT_WRITE, ("sink", sink))
            else:
                self.sel.unregister(sink.fd)
            sink.writing = want
        if len(sink.buf) < SINK_BACKLOG and sink in self.sinks.values():
            self.pace_output(sink.container)

    def end_sink(self, fd: int) -> None:
        """The container's side of a sink has ended: flush the rest, then close."""
        sink = self.sinks.pop(fd, None)
        if sink is not None:
            sink.closing = True
            self.ending_sinks.add(sink)
            self.flush_sink(sink)

    def close_sink(self, sink: Sink) -> None:
        if sink.writing:
            self.sel.unregister(sink.fd)
            sink.writing = False
        os.close(sink.fd)
        sink.fd = -1
        self.ending_sinks.discard(sink)
        for fd, other in list(self.sinks.items()):
            if other is sink:
                del self.sinks[fd]
                if sink.container.status == "running":
                    self.pace_output(sink.container)

