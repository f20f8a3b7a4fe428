"""The app's session (tui.session, no Textual): the learner's progress through a course, the
course's containers (which go when, which are the learner's own), and noticing a session that
crashed so the next start can remove what it left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lessons.loader import load_course
from lessons.progress import ProgressStore
from tui.session import Learner, SessionMark, course_containers, learners_own, left_by, remove

from app_support import FIXTURE

COURSE = load_course(FIXTURE)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def container(name, *, course="fixture", lesson="hello", origin="setup", status="exited",
              created="2026-01-01T00:00:00.000000Z") -> dict:
    return {"id": f"{name}-id", "name": name, "status": status, "created": created,
            "labels": {"course": course, "course.lesson": lesson, "course.origin": origin}}


# -- progress ----------------------------------------------------------------------------------

def test_a_new_learner_has_no_position_and_nothing_done(tmp_path):
    learner = Learner(COURSE, ProgressStore(tmp_path))
    hello = COURSE.lesson("hello")
    assert learner.position() is None and learner.language is None
    assert learner.done(hello) == set() and not learner.complete(hello)
    assert learner.first_open_step(hello) == "hello"


def test_progress_is_recorded_and_read_back(tmp_path):
    learner = Learner(COURSE, ProgressStore(tmp_path))
    hello = COURSE.lesson("hello")
    learner.set_language("zh")
    learner.set_position(hello, "shell")
    learner.record_step(hello, "hello", done=True, checks=["container-ran"])
    again = Learner(COURSE, ProgressStore(tmp_path))
    assert again.language == "zh" and again.position() == ("hello", "shell")
    assert again.done(hello) == {"hello"} and again.first_open_step(hello) == "shell"
    for step in ("shell", "why"):
        again.record_step(hello, step, done=True)
    assert again.complete(hello) and again.first_open_step(hello) == "why"


def test_a_position_in_another_course_or_a_removed_lesson_is_ignored(tmp_path):
    store = ProgressStore(tmp_path)
    store.set_current("another-course", "hello", "hello")
    assert Learner(COURSE, store).position() is None
    store.set_current("fixture", "gone", "hello")
    assert Learner(COURSE, store).position() is None
    store.set_current("fixture", "hello", "renamed-step")
    assert Learner(COURSE, store).position() == ("hello", "hello")


def test_steps_recorded_for_a_lesson_that_no_longer_has_them_do_not_count(tmp_path):
    learner = Learner(COURSE, ProgressStore(tmp_path))
    hello = COURSE.lesson("hello")
    for step in ("hello", "shell", "old-step"):
        learner.record_step(hello, step, done=True)
    assert learner.done(hello) == {"hello", "shell"} and not learner.complete(hello)


# -- the course's containers ----------------------------------------------------------------------

def test_course_containers_by_course_and_lesson():
    cs = [container("a"), container("b", lesson="isolation"), container("c", course="other"),
          {"id": "d", "name": "d", "labels": {}}, {"id": "e", "name": "e", "labels": None}]
    assert [c["name"] for c in course_containers(cs, "fixture")] == ["a", "b"]
    assert [c["name"] for c in course_containers(cs, "fixture", "isolation")] == ["b"]


def test_the_learners_own_are_those_they_started_that_still_run():
    cs = [container("setup", status="running"), container("mine", origin="learner", status="running"),
          container("mine-done", origin="learner"), container("shown", origin="show", status="running")]
    assert [c["name"] for c in learners_own(cs)] == ["mine"]


def test_remove_takes_them_all_and_tolerates_one_already_gone():
    from engine.errors import ContainerNotFound

    class Client:
        def __init__(self):
            self.removed = []

        def remove(self, ref, force=False):
            assert force
            if ref == "gone-id":
                raise ContainerNotFound("gone")
            self.removed.append(ref)
            return ref
    client = Client()
    assert remove(client, [container("a"), container("gone"), container("b")]) == ["a", "b"]
    assert client.removed == ["a-id", "b-id"]


# -- a session that crashed ----------------------------------------------------------------------------

def test_a_session_that_ended_properly_leaves_no_mark(tmp_path):
    mark = SessionMark(tmp_path)
    assert mark.begin("fixture") is None
    assert json.loads(mark.path.read_text())["pid"] == os.getpid()
    mark.end()
    assert not mark.path.exists()
    assert SessionMark(tmp_path).begin("fixture") is None


def test_a_crashed_session_is_found_by_the_next_one(tmp_path):
    (tmp_path / "app-session.json").write_text(json.dumps(
        {"pid": dead_pid(), "started": "2026-05-01T10:00:00.000000Z", "course": "fixture"}))
    stale = SessionMark(tmp_path).begin("fixture")
    assert stale is not None and stale["started"] == "2026-05-01T10:00:00.000000Z"
    left = left_by(stale, [container("before", created="2026-05-01T09:59:59.000000Z"),
                           container("during", created="2026-05-01T10:00:01.000000Z", origin="learner"),
                           container("other-course", course="x", created="2026-05-01T10:00:02.000000Z")])
    assert [c["name"] for c in left] == ["during"]


def test_a_crashed_session_leaves_behind_only_what_it_labelled(tmp_path):
    """Another app of the same user ran at the same time: its containers, made after the crashed
    one began, are not the crashed one's (each app labels what it starts with its session)."""
    (tmp_path / "app-session.json").write_text(json.dumps(
        {"pid": dead_pid(), "started": "2026-05-01T10:00:00.000000Z", "course": "fixture", "session": "1-a"}))
    stale = SessionMark(tmp_path).begin("fixture", "2-b")
    assert json.loads((tmp_path / "app-session.json").read_text())["session"] == "2-b"
    crashed, alive = container("crashed"), container("alive", created="2026-05-01T10:00:01.000000Z")
    crashed["labels"]["course.session"], alive["labels"]["course.session"] = "1-a", "3-c"
    assert left_by(stale, [crashed, alive]) == [crashed]
    assert course_containers([crashed, alive], "fixture", session="3-c") == [alive]


def test_a_session_still_running_is_not_taken_for_a_crash(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "app-session.json").write_text(json.dumps(
            {"pid": other.pid, "started": "2026-05-01T10:00:00.000000Z", "course": "fixture"}))
        assert SessionMark(tmp_path).begin("fixture") is None
    finally:
        other.kill()
        other.wait()


def test_a_garbled_mark_is_not_a_crash_and_is_replaced(tmp_path):
    (tmp_path / "app-session.json").write_text("{garbled")
    mark = SessionMark(tmp_path)
    assert mark.begin("fixture") is None
    assert json.loads(mark.path.read_text())["pid"] == os.getpid()


# -- a lesson's lab, made when first needed -------------------------------------------------

def test_the_lazy_lab_answers_like_the_lab_and_is_made_on_first_use():
    from lessons.content import content_dir
    from lessons.lab import Lab
    from tui.machine import Machine
    from tui.session import LazyLab

    course = load_course(content_dir())
    lesson = next(lesson for lesson in course.lessons if any(s.requires for s in lesson.steps))
    machine = Machine.pinned(limits=("cpu",), reason="no controller")
    made = []
    lazy = LazyLab(lambda: made.append(1) or Lab(course, lesson, doctor=machine.doctor), machine.doctor)
    for lang in ("en", "zh"):
        lazy.lang = lang
        real = Lab(course, lesson, lang=lang, doctor=machine.doctor)
        verdicts = [lazy.unavailable(s) for s in lesson.steps]
        assert verdicts == [real.unavailable(s) for s in lesson.steps]
        assert any(verdicts) and not all(verdicts)
    assert made == []                                   # not made for that
    lazy.translate("docker ps", lesson.steps[0])
    assert made == [1] and lazy.real().lang == "zh"     # made once, in the learner's language
    lazy.lang = "en"
    assert lazy.real().lang == "en" and made == [1]
