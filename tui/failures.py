"""A failure the app meets while it works: its traceback to a log, one line to the learner.

The app's workers catch what goes wrong (the engine refusing something, a bug) and
turn it into a message on screen. A message made from the exception alone can say
nothing (a ``KeyError`` is just ``'exit_code'``) and the traceback is gone. So:
:func:`record` appends the traceback, with the time and what the app was doing, to
``app-errors.log`` in the learner's state dir (kept under :data:`LIMIT` bytes, the
older half dropped), and :func:`one_line` words it for the learner -- the error's own
words when they are meant for a reader (the engine's errors, a refused command, an OS
error), else its type and text and where the details are.

Plain Python, safe from a worker thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

LOG = "app-errors.log"
LIMIT = 256 * 1024
_lock = threading.Lock()


def record(directory: Path | str | None, error: BaseException, doing: str = "") -> Path | None:
    """Append ``error``'s traceback to the log in ``directory``; the log's path (None: not written)."""
    if directory is None:
        return None
    path = Path(directory) / LOG
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    entry = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {doing}\n{text}\n"
    try:
        with _lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > LIMIT:
                old = path.read_text(errors="replace")
                path.write_text(old[len(old) // 2:])
            with path.open("a") as f:
                f.write(entry)
    except OSError:
        return None
    return path


def for_readers(error: BaseException) -> bool:
    """Whether ``error``'s own words are meant for the learner."""
    from lessons.docker import CommandError

    try:
        from engine.errors import EngineError
    except ImportError:                     # pragma: no cover - the engine is part of the package
        EngineError = ()                    # noqa: N806
    return isinstance(error, (EngineError, CommandError, OSError)) and bool(str(error))


def one_line(error: BaseException, log: Path | None, lang: str) -> str:
    """What the learner reads: one line, never a traceback."""
    from tui.i18n import t

    words = " ".join(str(error).split())
    if for_readers(error):
        return words
    what = f"{type(error).__name__}: {words}" if words else type(error).__name__
    return t(lang, "failure.logged", error=what, log=str(log)) if log is not None else what
