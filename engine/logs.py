"""Container logs: the output of containers (attached or not), kept on disk with a cap.

Format (version 1, like docker's json-file driver): one JSON object per chunk
of output in ``<container dir>/container.log``::

    {"stream": "stdout", "time": "2026-11-28T07:44:01.123456Z", "log": "hello\\n"}

The file rotates at :data:`ROTATE_AT` bytes into ``container.log.1``, and only
one old file is kept, so ``run -d lab yes`` costs at most twice that on disk
and nothing in memory. It lives in the data dir, not on a tmpfs.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from .events import now
from .records import append_jsonl, read_jsonl

ROTATE_AT = 8 * 1024 * 1024
NAME = "container.log"


class LogWriter:
    """Appends chunks of a container's output (the supervisor's side).

    Each stream has its own incremental UTF-8 decoder, so a character split
    between two reads is stored whole; :meth:`flush` at the end writes what an
    unfinished character left (as U+FFFD)."""

    def __init__(self, directory: Path):
        self.path = directory / NAME
        self.decoders: dict[str, codecs.IncrementalDecoder] = {}

    def write(self, stream: str, data: bytes) -> None:
        decoder = self.decoders.get(stream)
        if decoder is None:
            decoder = self.decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        self._append(stream, decoder.decode(data))

    def flush(self) -> None:
        for stream, decoder in self.decoders.items():
            self._append(stream, decoder.decode(b"", True))
        self.decoders.clear()

    def _append(self, stream: str, text: str) -> None:
        if text:
            append_jsonl(self.path, {"stream": stream, "time": now(), "log": text}, rotate_at=ROTATE_AT)


def read(directory: Path) -> Iterator[dict]:
    """Every record, oldest first (the rotated file, then the current one)."""
    return (r for r in read_jsonl(directory / NAME) if isinstance(r.get("log"), str))


def text(directory: Path, stream: str | None = None) -> str:
    """All the output as one string (tests and the app use this)."""
    return "".join(r["log"] for r in read(directory) if stream is None or r.get("stream") == stream)
