"""A ``RUN`` step's command, run in a real container of ours: created by
the supervisor like any ``run`` (same namespaces, cgroup limits, seccomp
filter, default network), its output merged into one pipe and handed back
line by line, its writable layer read once it has exited, and the
container removed -- on success, failure and Ctrl-C alike.

Build containers carry the label ``org.container-lab.build`` (the build's
id), by which ``ps`` leaves them out; they live only as long as the step.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

from engine.errors import ContainerNotFound, EngineError
from engine.spec import ContainerConfig

BUILD_LABEL = "org.container-lab.build"
QUIET_AFTER_EXIT = 1.0            # seconds of silence on the output after the exit that end the step


class RunResult:
    """How the command ended, and where its writable layer is."""

    def __init__(self, exit_code: int, error: str, upper: str, oom: bool):
        self.exit_code, self.error, self.upper, self.oom = exit_code, error, upper, oom


class StepContainer:
    """One RUN's container: ``with StepContainer(...) as c: result = c.run(on_line)``;
    leaving the block removes it, whatever happened."""

    def __init__(self, client, config: ContainerConfig):
        self.client, self.config = client, config
        self.id: str | None = None

    def __enter__(self) -> StepContainer:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        ref = self.id or self.config.name
        if not ref:
            return
        try:
            self.client.remove(ref, force=True)
        except ContainerNotFound:
            pass
        except EngineError:
            if self.id:
                raise
        self.id = None

    def run(self, on_line: Callable[[str], None]) -> RunResult:
        """Start the command, pass each line of its output to ``on_line``,
        and return once it has exited (the container stays until removed)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            try:
                attached = self.client.run(self.config, stdio=[w, w], attach=True, relay=False)
            finally:
                os.close(w)
            self.id = attached.id
            try:
                result = self._copy(r, attached, on_line)
            finally:
                attached.close()
        finally:
            os.close(r)
        record = self.client.inspect(self.id)
        return RunResult(int(result.get("exit_code") or 0), result.get("error") or "",
                         record["rootfs"]["upper"], bool(result.get("oom_killed")))

    @staticmethod
    def _copy(r: int, attached, on_line: Callable[[str], None]) -> dict:
        """Copy the output while a thread waits for the exit event; after
        the exit, until the pipe ends or stays quiet (a process that left a
        copy of it behind)."""
        box: list = []

        def wait() -> None:
            try:
                box.append(attached.wait())
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box.append(e)

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        pending = b""
        quiet_until = None
        while True:
            if quiet_until is None and box:
                quiet_until = time.monotonic() + QUIET_AFTER_EXIT
            timeout = 0.05 if quiet_until is None else max(0.0, quiet_until - time.monotonic())
            if not select.select([r], [], [], timeout)[0]:
                if quiet_until is not None and time.monotonic() >= quiet_until:
                    break
                continue
            data = os.read(r, 65536)
            if not data:
                if quiet_until is None:
                    waiter.join()
                break
            *done, pending = (pending + data).split(b"\n")
            for line in done:
                on_line(line.rstrip(b"\r").decode("utf-8", "replace"))
            if quiet_until is not None:
                quiet_until = time.monotonic() + QUIET_AFTER_EXIT
        if pending:
            on_line(pending.decode("utf-8", "replace"))
        waiter.join()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]
