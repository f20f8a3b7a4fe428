"""Reading /proc and /sys files the way every part of a snapshot needs:
one read when the file fits, and None -- never an exception -- when the
process it describes has gone meanwhile."""

from __future__ import annotations

import os


def _read_bytes(path: str, size: int = 4096) -> bytes | None:
    """A /proc or /sys file's bytes (one read when it fits in ``size``), or
    None when it is gone -- a process that exits between open and read gives
    ESRCH -- or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, size)
        if len(data) < size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    data = _read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")
