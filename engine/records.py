"""Small, careful file writing shared by the engine's records.

- :func:`write_json_atomic`: a whole JSON document, replaced atomically.
- :func:`atomic_file`: any file (an archive, credentials) written in full or
  not at all: a temp file beside it, renamed over it only once complete.
- :func:`json_object`: bytes that must be one JSON object, or a one-line error.
- :func:`append_jsonl` / :func:`read_jsonl`: a JSON-lines file that rotates
  into ``NAME.1`` past a size, so it can neither grow without bound nor be
  read half-written (a torn last line is skipped).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def json_object(data: bytes, what: str, error: type[Exception], limit: int | None = None) -> dict:
    """``data`` parsed as a JSON object, or ``error`` naming ``what`` in one line
    (too large for ``limit`` bytes, not JSON, or JSON but not an object)."""
    if limit is not None and len(data) > limit:
        raise error(f"the {what} is larger than {limit} bytes; refused")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise error(f"the {what} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise error(f"the {what} is not a JSON object")
    return value


def write_json_atomic(path: Path, data: dict, *, durable: bool = True) -> None:
    """Write JSON to ``path`` so a reader sees the old or the new file, never half.
    ``durable`` fsyncs first, so a power cut cannot leave an empty file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, separators=(",", ":")))   # compact: the C encoder, 10x faster
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


@contextmanager
def atomic_file(path: Path | str, mode: int = 0o644, *, text: bool = False, owner: tuple[int, int] | None = None,
                durable: bool = False) -> Iterator:
    """A file object for ``path``'s new contents: a temp file beside it, with
    ``mode`` less the umask (as a new file gets) and ``owner``, renamed over
    ``path`` when the ``with`` block ends -- or removed when it raises, so no
    half-written file is ever left. ``durable`` fsyncs before the rename.
    Errors are the OSError of the failing step; the caller names the file in
    its own words."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(f.fileno(), mode & ~mask)
            if owner:
                os.fchown(f.fileno(), *owner)
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def append_jsonl(path: Path, record: dict, *, rotate_at: int) -> None:
    """Append one record as a line; past ``rotate_at`` bytes the file becomes
    ``NAME.1`` (replacing the older one) and a new file starts."""
    raw = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    try:
        if path.stat().st_size + len(raw) > rotate_at:
            os.replace(path, _rotated(path))
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> Iterator[dict]:
    """Every record, oldest first (``NAME.1``, then ``NAME``); lines that are
    not a JSON object (torn by a crash, or foreign) are skipped."""
    for p in (_rotated(path), path):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        yield rec
        except FileNotFoundError:
            continue
