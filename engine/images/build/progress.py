"""What a build prints as it goes, in the style of BuildKit's plain
progress: each step a numbered vertex (``#4 [2/5] RUN make``), its output
with the seconds since it began (``#4 0.512 gcc -c main.c``), and how it
ended (``#4 CACHED``, ``#4 DONE 0.8s``, ``#4 ERROR: ...``); a blank line
between vertices. ``-q`` prints none of it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Vertices written to ``stream`` (stderr, as BuildKit does), or nowhere when ``quiet``."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.count = 0
        self.started: dict[int, float] = {}

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.quiet = True

    def vertex(self, title: str) -> int:
        """Begin a vertex; its number."""
        self.count += 1
        self.started[self.count] = time.monotonic()
        self._write(("\n" if self.count > 1 else "") + f"#{self.count} {title}")
        return self.count

    def log(self, n: int, text: str) -> None:
        self._write(f"#{n} {text}")

    def output(self, n: int, line: str) -> None:
        """A line the step's command printed, stamped with its time into the step."""
        self._write(f"#{n} {time.monotonic() - self.started.get(n, time.monotonic()):.3f} {line}")

    def cached(self, n: int) -> None:
        self._write(f"#{n} CACHED")

    def done(self, n: int) -> None:
        self._write(f"#{n} DONE {time.monotonic() - self.started.get(n, time.monotonic()):.1f}s")

    def error(self, n: int, message: str) -> None:
        self._write(f"#{n} ERROR: {message}")
