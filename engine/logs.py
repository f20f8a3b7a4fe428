"""Container logs: the output of detached containers, kept on disk with a cap.

Format (version 1, like docker's json-file driver): one JSON object per chunk
of output in ``<container dir>/container.log``::

    {"stream": "stdout", "time": "2026-11-28T07:44:01.123456Z", "log": "hello\\n"}

The file rotates at :data:`ROTATE_AT` bytes into ``container.log.1``, and only
one old file is kept, so ``run -d lab yes`` costs at most twice that on disk
and nothing in memory. It lives in the data dir, not on a tmpfs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from .events import now

ROTATE_AT = 8 * 1024 * 1024
NAME = "container.log"


class LogWriter:
    """Appends chunks of a container's output (the supervisor's side)."""

    def __init__(self, directory: Path):
        self.path = directory / NAME

    def write(self, stream: str, data: bytes) -> None:
        line = json.dumps({"stream": stream, "time": now(), "log": data.decode("utf-8", "replace")},
                          separators=(",", ":")) + "\n"
        raw = line.encode()
        try:
            if self.path.stat().st_size + len(raw) > ROTATE_AT:
                os.replace(self.path, self.path.with_name(NAME + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, raw)
        finally:
            os.close(fd)


def read(directory: Path) -> Iterator[dict]:
    """Every record, oldest first (the rotated file, then the current one)."""
    for path in (directory / (NAME + ".1"), directory / NAME):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue                 # a line torn by a crash
                    if isinstance(rec, dict) and "log" in rec:
                        yield rec
        except FileNotFoundError:
            continue


def text(directory: Path, stream: str | None = None) -> str:
    """All the output as one string (tests and the app use this)."""
    return "".join(r["log"] for r in read(directory) if stream is None or r.get("stream") == stream)
