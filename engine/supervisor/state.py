"""What the loop keeps besides containers: a start in flight
(:class:`Starting`), an attached client's pipe (:class:`Sink`) and a process
started by ``exec`` (:class:`Exec`).
"""

from __future__ import annotations

import os
import socket
import time

from ..container import Container
from .settings import START_TIMEOUT


class Starting:
    """A container's first process, or an ``exec`` process, on its way to
    execve. The loop watches its start channel (never waiting on it); the
    client's reply -- or, stage by stage (``run --explain``), its events --
    is sent once the child has exec'd or failed, or when its deadline passes."""

    def __init__(self, client, chan: socket.socket, transcript, attach: bool, *, container: Container,
                 pid: int, stepwise: bool = False, exec_: Exec | None = None, sinks: dict | None = None):
        self.client = client            # the connection that gets the reply (None once it has gone)
        self.chan = chan                # the start channel to the half-built container
        self.transcript = transcript    # the supervisor's own stages (limits, fork, cgroup)
        self.attach = attach
        self.container = container
        self.pid = pid
        self.stepwise = stepwise        # run --explain: each stage waits for proceed; no deadline
        self.exec = exec_               # set when this is an exec process
        self.sinks = sinks or {}        # stream -> the attached client's pipe, copied to once it runs
        self.deadline = None if stepwise else time.monotonic() + START_TIMEOUT
        self.pty = -1
        self.error: dict | None = None
        self.stages: list = []          # the child's, once it execs
        self.abandoned = False          # its client went away: the container goes too


class Sink:
    """An attached client's pipe that one output stream of a container is
    copied to, as the container's output is logged: the container itself
    never holds a client's fds. Written when writable; while its backlog is
    past :data:`SINK_BACKLOG`, the container's pipe is not read (so the
    container waits on its own full pipe, not the supervisor on the client)."""

    def __init__(self, fd: int, conn, container: Container):
        self.fd = fd
        self.conn = conn
        self.container = container
        self.buf = bytearray()
        self.closing = False            # its source has ended: closed once flushed
        self.writing = False            # registered for EVENT_WRITE


class Exec:
    """A process started in a running container by ``exec``."""

    def __init__(self, eid: str, container: Container, pid: int, argv: list[str], tty: bool):
        self.id = eid
        self.container = container
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.argv = argv
        self.tty = tty
        self.pty = -1
        self.attached: set = set()

