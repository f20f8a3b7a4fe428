"""The learner's session in the app: progress, position, and the lab's containers -- no Textual.

- :class:`Learner` reads and records one learner's progress in one course
  (:mod:`lessons.progress`: atomic, a corrupt file moved aside with a notice).
- :func:`course_containers` and :func:`remove` find and remove what the
  course started (its containers carry the ``course`` labels), for leaving a
  lesson and for quitting; :func:`learners_own` picks out those a learner
  started in the background themselves, which the app asks about first.
- :class:`SessionMark` notices a session that ended without quitting (a
  crash, a closed terminal): the next start removes the containers it left.

Everything here is plain Python, safe from a worker thread.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from lessons.docker import LABEL_COURSE, LABEL_LESSON, LABEL_ORIGIN
from lessons.model import Course, Lesson
from lessons.progress import ProgressStore

MARK = "app-session.json"


class Learner:
    """One learner's progress through ``course``."""

    def __init__(self, course: Course, store: ProgressStore):
        self.course, self.store = course, store
        self.record = store.load()

    # -- reading --------------------------------------------------------------------
    @property
    def language(self) -> str | None:
        return self.record.get("language")

    def position(self) -> tuple[str, str] | None:
        """(lesson id, step id) where the learner left this course, if it still exists."""
        cur = self.record.get("current")
        if not cur or cur.get("course") != self.course.id:
            return None
        try:
            lesson = self.course.lesson(cur["lesson"])
        except KeyError:
            return None
        steps = [s.id for s in lesson.steps]
        return lesson.id, cur["step"] if cur["step"] in steps else (steps[0] if steps else "")

    def step_record(self, lesson: Lesson, step_id: str) -> dict:
        return self.record["courses"].get(self.course.id, {}).get(lesson.id, {}).get(step_id, {})

    def done(self, lesson: Lesson) -> set[str]:
        """The ids of the steps of ``lesson`` that are done."""
        steps = self.record["courses"].get(self.course.id, {}).get(lesson.id, {})
        return {sid for sid, rec in steps.items() if rec.get("done")} & {s.id for s in lesson.steps}

    def complete(self, lesson: Lesson) -> bool:
        return bool(lesson.steps) and self.done(lesson) == {s.id for s in lesson.steps}

    def first_open_step(self, lesson: Lesson) -> str:
        """The first step not done yet (the last one when all are)."""
        done = self.done(lesson)
        for step in lesson.steps:
            if step.id not in done:
                return step.id
        return lesson.steps[-1].id if lesson.steps else ""

    # -- recording ------------------------------------------------------------------
    # Each is one small atomic write (about a millisecond); the app makes them
    # from the UI thread, in order, so the file always says the latest.
    def set_language(self, lang: str) -> None:
        self.record = self.store.set_language(lang)

    def set_position(self, lesson: Lesson, step_id: str) -> None:
        if self.record.get("current") != {"course": self.course.id, "lesson": lesson.id, "step": step_id}:
            self.record = self.store.set_current(self.course.id, lesson.id, step_id)

    def record_step(self, lesson: Lesson, step_id: str, **fields) -> None:
        """Merge ``fields`` (done, checks, hints, quiz, skipped) into the step's record."""
        self.record = self.store.record_step(self.course.id, lesson.id, step_id, **fields)


# -- the course's containers --------------------------------------------------------

def course_containers(containers: list[dict], course_id: str, lesson_id: str | None = None, *,
                      session: str | None = None) -> list[dict]:
    """Those of ``containers`` (``ps -a`` records) that ``course_id`` (and ``lesson_id``) started
    -- in app session ``session`` when given (another app of the same user has its own)."""
    from lessons.lab import LABEL_SESSION

    out = []
    for c in containers:
        labels = c.get("labels") or {}
        if labels.get(LABEL_COURSE) == course_id and (lesson_id is None or labels.get(LABEL_LESSON) == lesson_id) \
                and (session is None or labels.get(LABEL_SESSION) == session):
            out.append(c)
    return out


def new_session_id() -> str:
    """An id for one app session: its process id (which the learner's messages name), then a random part."""
    import secrets
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def learners_own(containers: list[dict]) -> list[dict]:
    """The ones the learner started themselves that still run (``docker run -d``):
    the app asks before removing these."""
    return [c for c in containers
            if (c.get("labels") or {}).get(LABEL_ORIGIN) == "learner" and c.get("status") == "running"]


def remove(client, containers: list[dict], cancel=None) -> list[str]:
    """Remove ``containers`` (force: running ones are killed); their names.
    One already gone is not an error."""
    from engine.errors import ContainerNotFound

    removed = []
    for c in containers:
        if cancel is not None and cancel.is_set():
            break
        try:
            client.remove(c["id"], force=True)
            removed.append(c.get("name", c["id"][:12]))
        except ContainerNotFound:
            pass
    return removed


def remove_networks(client, course, lesson_id: str | None = None) -> list[str]:
    """The networks the course's lessons (or one lesson's) create, removed once its
    containers are gone; one another container still uses is kept (the engine
    refuses). Their names."""
    from lessons.lab import Lab
    from lessons.view import EngineView

    view = EngineView(client)
    removed: list[str] = []
    for lesson in course.lessons:
        if lesson_id is None or lesson.id == lesson_id:
            removed += Lab(course, lesson, view=view).remove_networks()
    return removed


def engine_client(*, autostart: bool):
    """A client of this user's engine; ``autostart=False`` when there is
    nothing to do unless a supervisor is already running."""
    from engine.client import Client
    return Client(autostart=autostart)


def running_containers(*, autostart: bool = False) -> list[dict]:
    """``ps -a`` of the engine, or [] when no supervisor runs (then no container does)."""
    from engine.errors import SupervisorError

    try:
        return engine_client(autostart=autostart).ps(all=True)
    except SupervisorError:
        return []


# -- a session that did not end ------------------------------------------------------

def _now() -> str:
    """Now, as the engine writes ``created`` (ISO 8601, UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionMark:
    """``app-session.json`` in the learner's state dir: present while an app runs.

    :meth:`begin` returns the record of a previous session that never reached
    :meth:`end` and whose process is gone -- it crashed -- so its containers
    (those created since it began) can go. A session still running (a second
    app of the same learner) is left alone.
    """

    def __init__(self, directory: Path | str):
        self.path = Path(directory) / MARK
        self.started = ""

    def begin(self, course_id: str, session: str | None = None) -> dict | None:
        stale = None
        try:
            previous = json.loads(self.path.read_text())
            if isinstance(previous, dict) and isinstance(previous.get("pid"), int) \
                    and previous.get("pid") != os.getpid() and not _alive(previous["pid"]):
                stale = previous
        except (OSError, ValueError):
            pass
        self.started = _now()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{MARK}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "started": self.started, "course": course_id,
                                       "session": session, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}))
            os.replace(tmp, self.path)
        except OSError:
            pass
        return stale

    def end(self) -> None:
        try:
            current = json.loads(self.path.read_text())
            if current.get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def left_by(stale: dict, containers: list[dict]) -> list[dict]:
    """The containers a crashed session (``stale``: its mark) left behind: its course's,
    labelled with its session id (or, from a mark without one, created after it began)."""
    if stale.get("session"):
        return course_containers(containers, stale.get("course", ""), session=stale["session"])
    since = stale.get("started", "")
    return [c for c in course_containers(containers, stale.get("course", ""))
            if since and (c.get("created") or "") >= since]


def orphans(containers: list[dict], course_id: str) -> list[dict]:
    """The containers of ``course_id`` whose app session's process is gone: it crashed or
    was killed -- found by their session label (its process id first), whoever's mark file
    another app of the same learner wrote over since. Those without a session label
    (``course solve``, an older app) and those of a running app are not."""
    from lessons.lab import LABEL_SESSION

    out = []
    for c in course_containers(containers, course_id):
        pid = ((c.get("labels") or {}).get(LABEL_SESSION) or "").split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            out.append(c)
    return out


# -- a lesson's lab, made when first needed ---------------------------------------------

class LazyLab:
    """A lesson's :class:`lessons.lab.Lab`, made on first use (from a worker thread,
    after the lesson's first frame: importing the checks and the engine's client is
    not free), while whether a step can run here is answered from the step's
    ``requires`` and doctor's diagnosis alone, as the Lab itself answers it."""

    def __init__(self, make, doctor):
        import threading

        self._make, self._doctor = make, doctor
        self._lab = None
        self._lock = threading.Lock()
        self._lang = "en"

    @property
    def lang(self) -> str:
        return self._lang

    @lang.setter
    def lang(self, lang: str) -> None:
        self._lang = lang
        if self._lab is not None:
            self._lab.lang = lang

    def real(self):
        """The Lab itself (made now if it is not yet)."""
        with self._lock:
            if self._lab is None:
                self._lab = self._make()
                self._lab.lang = self._lang
            return self._lab

    def unavailable(self, step) -> str | None:
        """Why ``step`` is not run here, in the learner's language (None: it runs)."""
        if self._lab is not None:
            return getattr(self._lab, "unavailable", lambda _step: None)(step)
        requires = getattr(step, "requires", ())
        if not requires:
            return None
        from lessons import requirements

        missing = requirements.lacking(requires, self._doctor())
        return requirements.explain(self._lang, missing) if missing else None

    def __getattr__(self, name):
        return getattr(self.real(), name)
