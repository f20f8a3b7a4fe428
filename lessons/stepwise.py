"""A container started one stage at a time, for the app's step-through start.

``docker run --explain ...`` in the app does not run the CLI: the app starts
the container through the engine's client (:meth:`engine.client.Client.run_stepwise`)
and stops after each stage until the learner says go on, so the lab panel can
show the half-built container -- its namespaces made, its root mounted, not yet
its command. :func:`start_explained` does that from a worker thread:

- the container is the one the CLI would make from the same command (its
  config built by :func:`lessons.docker.run_config`: the same labels, the same
  image fallback; an image that is not here pulled first, as the CLI's ``run``
  pulls it), so the step's checks see the same thing either way;
- between stages it waits on a :class:`Gate`, which the learner's keys open
  (:meth:`Gate.next`, :meth:`Gate.finish`) from the app's thread;
- the worker's ``cancelled_event`` (or :meth:`Gate.stop`) ends the start
  cleanly: the half-built container is force-removed (the supervisor ends it,
  its mounts going with its mount namespace and its control group with it)
  and the connection closed;
- the container's output comes through a pipe, as it is written.

:func:`stage_lines` words a stage as the CLI's ``run --explain`` does -- its
title, what it is for, each kernel call beside the equivalent shell command --
in the language asked for, so the app can word the next stage in the language
the learner switched to. No Textual here.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time

from .docker import EngineCommand, run_config
from .runner import RunResult, utf8_decoder


class Gate:
    """The learner's go-ahead between stages: opened from the app's thread,
    waited on by the worker's."""

    def __init__(self, pace: float | None = None) -> None:
        self._cond = threading.Condition()
        self._steps = 0            # go-aheads given and not yet used
        self.finishing = False     # every remaining stage without stopping
        self.stopped = False       # the learner (or leaving) ended the start
        self.pace = pace           # go on by itself after this many seconds (show me); keys still work

    def next(self) -> None:
        """One more stage."""
        with self._cond:
            self._steps += 1
            self._cond.notify_all()

    def finish(self) -> None:
        """Every remaining stage, without stopping."""
        with self._cond:
            self.finishing = True
            self._cond.notify_all()

    def stop(self) -> None:
        """End the start: the half-built container goes."""
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def wait(self, cancel: threading.Event | None = None, poll: float = 0.1) -> bool:
        """Block until the learner says go on (True) or the start is to end (False);
        with a ``pace``, go on by itself once that long has passed."""
        deadline = None if self.pace is None else time.monotonic() + self.pace
        with self._cond:
            while True:
                if self.stopped or (cancel is not None and cancel.is_set()):
                    return False
                if self.finishing:
                    return True
                if self._steps:
                    self._steps -= 1
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return True
                self._cond.wait(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))


def _short(stage: dict, cid: str) -> dict:
    """The stage with the container's id shortened to 12 characters (as ``run --explain`` prints it)."""
    return json.loads(json.dumps(stage).replace(cid, cid[:12]))


def _pull_first(image: str, on_output) -> None:
    """The image, pulled first when it is not here, as the CLI's ``run`` does
    (the client starts containers of the store's images only), its pull's
    lines said as output."""
    from engine import paths
    from engine.images.pull import Report, ensure_image
    from engine.images.store import ImageStore

    def line(text: str) -> None:
        if on_output:
            on_output(text + "\n")

    ensure_image(ImageStore(paths.data_dir() / "images"), image, "missing", Report(image, line))


def start_explained(cmd: EngineCommand, *, gate: Gate, cancel: threading.Event | None = None,
                    on_begin=None, on_stage=None, on_output=None, client=None,
                    timeout: float = 120) -> RunResult:
    """Start translated ``run --explain`` command ``cmd`` one stage at a time.

    ``on_begin(id, name)`` once the container exists (half-built, status
    ``starting``); ``on_stage(number, stage, paused)`` for each stage done,
    after which it waits on ``gate``; ``on_output(text)`` for the container's
    output. Returns what running it did (cancelled: the container removed)."""
    from engine import errors

    if client is None:
        from engine.client import Client
        client = Client()
    config = run_config(cmd)
    _pull_first(config.image, on_output)
    stdio, ours = [], []
    if not config.detach:
        read_end, write_end = os.pipe()
        ours = [read_end]
        stdio = [write_end, write_end]
        if config.interactive:                 # nothing to type into a start shown stage by stage
            null = os.open(os.devnull, os.O_RDONLY)
            stdio = [null, write_end, write_end]
    try:
        try:
            start = client.run_stepwise(config, stdio=stdio, attach=not config.detach)
        finally:
            for fd in dict.fromkeys(stdio):      # the supervisor holds its own copies now
                os.close(fd)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    output: list[str] = []

    def say(text: str) -> None:
        if text:
            output.append(text)
            if on_output:
                on_output(text)

    try:
        if on_begin:
            on_begin(start.id, start.name)
        number = 0
        try:
            while (report := start.next_stage()) is not None:
                number += 1
                if on_stage:
                    on_stage(number, _short(report["stage"], start.id), report["paused"])
                if not gate.wait(cancel):
                    _abandon(client, start)
                    return RunResult(cmd.source, 130, "".join(output), cmd.notices, cancelled=True)
                if report["paused"]:
                    start.proceed()
        except errors.EngineError as e:
            return RunResult(cmd.source, getattr(e, "exit_code", 125), "".join(output) + f"{e}\n", cmd.notices)
        if config.detach:
            say(start.id + "\n")
            return RunResult(cmd.source, 0, "".join(output), cmd.notices)
        decoder = utf8_decoder()              # the container's output is one stream, read in chunks
        code, cancelled, timed_out = _follow(client, start, ours[0], lambda data: say(decoder.decode(data)),
                                             cancel, timeout)
        say(decoder.decode(b"", True))
        return RunResult(cmd.source, code, "".join(output), cmd.notices, cancelled=cancelled, timed_out=timed_out)
    finally:
        start.close()
        for fd in ours:
            os.close(fd)


def _abandon(client, start) -> None:
    """End a half-built start: removed by force while its client is still there
    (the supervisor kills it and, once its start has failed, removes it)."""
    from engine import errors

    try:
        client.remove(start.id, force=True)
    except errors.EngineError:
        pass


def _follow(client, start, fd: int, feed, cancel, timeout: float) -> tuple[int, bool, bool]:
    """The running container's output (its bytes to ``feed``) until it exits;
    (exit code, cancelled, timed out)."""
    from engine import errors

    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout
    cancelled = timed_out = False
    while True:
        ready, _, _ = select.select([fd, start], [], [], 0.1)
        if fd in ready and _drain(fd, feed) is None:
            break                                       # every writer gone: it has exited
        if start in ready or _exit_buffered(start):
            _drain_to_end(fd, feed)
            break
        if (cancel is not None and cancel.is_set() and not cancelled) or \
                (time.monotonic() > deadline and not timed_out):
            cancelled = cancel is not None and cancel.is_set()
            timed_out = not cancelled
            try:
                client.kill(start.id, 9)
            except errors.EngineError:
                pass
    try:
        result = start.wait()
    except errors.EngineError:
        return 125, cancelled, timed_out
    return int(result.get("exit_code") or 0), cancelled, timed_out


def _exit_buffered(start) -> bool:
    """Whether the exit event already came with the one before it (a select does not see it then)."""
    return start.pending()


def _drain_to_end(fd: int, feed, timeout: float = 5.0) -> None:
    """After the exit: the rest of the output, up to the pipe's end. The supervisor
    may still be copying the container's last bytes into the pipe when its exit
    event arrives (it flushes a client's pipe as the pipe takes it), and reading
    only what is there would cut a character in two."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _drain(fd, feed) is None:
            return
        select.select([fd], [], [], max(0.0, min(0.1, deadline - time.monotonic())))


def _drain(fd: int, feed) -> bool | None:
    """Read what the pipe holds now (its bytes to ``feed``): True if something came, None at its end."""
    got = False
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return got
        if not data:
            return None
        got = True
        feed(data)


def stage_lines(stage: dict, lang: str, *, number: int | None = None,
                width: int = 76) -> tuple[str, list[str], list[str]]:
    """One stage, worded in ``lang`` as ``run --explain`` words it: its title
    (with ``number`` and the time it took), what it does (wrapped to ``width``
    cells), and each kernel call followed by its equivalent shell command."""
    from engine import explain

    head = f"[{number}] " if number is not None else ""
    title = f"{head}{stage.get('id', '?')}: {explain.stage_title(stage, lang)}  ({stage.get('ms', 0):.1f} ms)"
    text = explain.wrap(explain.stage_text(stage.get("id", ""), lang), max(20, width))
    ops = []
    for op in stage.get("ops", []):
        ops.append(f"{explain.ui('kernel', lang)}: {explain.kernel_call(op)}")
        ops.append(f"{explain.ui('shell', lang)}:  {op.get('shell', '')}")
    return title, text, ops
