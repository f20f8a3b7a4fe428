"""A learner's progress: where they are, what they have done, in which language.

One JSON file, ``progress.json`` in the learner's XDG state dir
(:func:`engine.paths.learner_state_dir`: under ``sudo`` that is the invoking
user's, and the file is given back to them). Schema, version 1::

    {"version": 1, "language": "zh",
     "current": {"course": "container-lab", "lesson": "first-container", "step": "hello"},
     "courses": {"container-lab": {"first-container": {
         "hello": {"done": true, "checks": ["container-ran"], "hints": 1,
                   "quiz": ["process"], "time": "2026-..."}}}}}

Written atomically -- a temporary file in the same directory, flushed and
fsync'ed, then renamed over the old one -- so a crash mid-write leaves the
previous file whole. A file that cannot be read, or that a newer version
wrote, is moved aside (``progress.json.corrupt-<time>``) with a notice for
the learner; it never crashes the course. :class:`ProgressStore` serialises
its own threads with a lock and other processes with ``flock``.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import threading
import time
from pathlib import Path

from .i18n import LANGS, msg

VERSION = 1
FILENAME = "progress.json"


def empty() -> dict:
    return {"version": VERSION, "language": None, "current": None, "courses": {}}


def _valid(data) -> str | None:
    """Why ``data`` is not a usable progress record (None when it is)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("language") not in (None, *LANGS):
        return f"unknown language {data.get('language')!r}"
    current = data.get("current")
    if current is not None and not (isinstance(current, dict)
                                    and all(isinstance(current.get(k), str) for k in ("course", "lesson", "step"))):
        return "'current' is malformed"
    courses = data.get("courses")
    if not isinstance(courses, dict):
        return "'courses' is malformed"
    for lessons in courses.values():
        if not isinstance(lessons, dict) or not all(
                isinstance(steps, dict) and all(isinstance(s, dict) for s in steps.values())
                for steps in lessons.values()):
            return "'courses' is malformed"
    return None


class ProgressStore:
    """Load, change and save one learner's progress; thread-safe."""

    def __init__(self, directory: Path | str | None = None):
        if directory is None:
            from engine.paths import learner_state_dir
            directory = learner_state_dir()
        self.dir = Path(directory)
        self.path = self.dir / FILENAME
        self._lock = threading.RLock()
        self._data: dict | None = None
        self.notices: list[tuple[str, dict]] = []     # (message key, values), for the learner

    # -- reading -------------------------------------------------------------------
    def load(self) -> dict:
        """The progress record (a copy); a bad file is moved aside, never raised."""
        with self._lock:
            self._data = self._read()
            return copy.deepcopy(self._data)

    def _read(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty()
        except OSError as e:
            return self._set_aside("progress.corrupt", error=e.strerror or str(e))
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return self._set_aside("progress.corrupt", error=f"invalid JSON: {e}")
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, int) and version > VERSION:
            return self._set_aside("progress.future", version=version)
        if version != VERSION:
            return self._set_aside("progress.corrupt", error=f"unknown format {version!r}")
        if (why := _valid(data)) is not None:
            return self._set_aside("progress.corrupt", error=why)
        return data

    def _set_aside(self, key: str, **values) -> dict:
        aside = self.path.with_name(f"{FILENAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except OSError:
            aside = self.path
        self.notices.append((key, {**values, "path": str(aside)}))
        return empty()

    def notice_texts(self, lang: str) -> list[str]:
        """The notices (a file moved aside ...) in ``lang``; cleared once read."""
        with self._lock:
            out = [msg(lang, key, **values) for key, values in self.notices]
            self.notices.clear()
            return out

    def _current(self) -> dict:
        if self._data is None:
            self._data = self._read()
        return self._data

    # -- changing ------------------------------------------------------------------
    def update(self, change) -> dict:
        """Apply ``change(record)`` under both locks, then save; returns a copy.
        Re-reads the file first, so two processes never undo each other."""
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / f".{FILENAME}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                for stale in self.dir.glob(f".{FILENAME}.*.tmp"):     # a writer that crashed
                    stale.unlink(missing_ok=True)
                self._data = self._read()
                change(self._data)
                self._write(self._data)
            self._chown(self.dir / f".{FILENAME}.lock")
            return copy.deepcopy(self._data)

    def _write(self, data: dict) -> None:
        tmp = self.path.with_name(f".{FILENAME}.{os.getpid()}.{threading.get_ident()}.tmp")
        payload = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._chown(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _chown(self, path: Path) -> None:
        """Under sudo, the file belongs to the learner, not to root."""
        from engine.paths import learner_owner

        owner = learner_owner()
        if owner is not None:
            try:
                os.chown(path, *owner)
                os.chown(self.dir, *owner)
            except OSError:
                pass

    # -- the learner's vocabulary -----------------------------------------------------
    def set_language(self, lang: str) -> dict:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}")
        return self.update(lambda d: d.__setitem__("language", lang))

    def set_current(self, course: str, lesson: str, step: str) -> dict:
        return self.update(lambda d: d.__setitem__("current", {"course": course, "lesson": lesson, "step": step}))

    def step(self, course: str, lesson: str, step: str) -> dict:
        """What is recorded for one step (empty when nothing is)."""
        with self._lock:
            return copy.deepcopy(self._current()["courses"].get(course, {}).get(lesson, {}).get(step, {}))

    def record_step(self, course: str, lesson: str, step: str, **fields) -> dict:
        """Merge ``fields`` (done, checks, hints, quiz) into a step's record."""
        def change(d):
            rec = d["courses"].setdefault(course, {}).setdefault(lesson, {}).setdefault(step, {})
            rec.update(fields)
            rec["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return self.update(change)

    def completed(self, course: str, lesson: str) -> set[str]:
        """Ids of the steps of a lesson that are done."""
        with self._lock:
            steps = self._current()["courses"].get(course, {}).get(lesson, {})
            return {sid for sid, rec in steps.items() if rec.get("done")}


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
