"""Checks that test what a step teaches, and steps safe to do twice.

- ``course check`` flags a step whose checks never look at what its commands
  teach (``--explain``, ``docker diff``, ``docker stats``, ``docker rm``, a ``--timens`` or
  ``--userns private`` run without its ``requires``) and a middle hint that
  gives a whole command: each case of ``tests/fixtures/untaught`` is caught,
  the same course fixed passes, and so does the shipped course;
- the engine records a ``run --explain`` start (``explained``) and a
  ``docker diff`` (a ``diff`` event), and the checks built on them
  (``container-ran`` with ``explained``, ``diff-read``, ``container-removed``)
  pass and fail on real containers;
- a step whose commands name their containers (``run -d --name``, no
  ``--rm``) or create a network can be begun, shown and checked twice:
  the second time finds no "name in use".
"""

from __future__ import annotations

import shutil

import pytest

from lessons.checks import evaluate
from lessons.lab import Lab
from lessons.loader import load_course
from lessons.model import CheckSpec
from lessons.validate import check_course
from lessons.view import EngineView

from conftest import REPO, cl, needs_root

UNTAUGHT = REPO / "tests" / "fixtures" / "untaught"
FIXTURE = REPO / "tests" / "fixtures" / "course"
LESSON = "01-untaught"


def problems(root) -> list[str]:
    return [str(p) for p in check_course(root)[1]]


def edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


# -- course check ------------------------------------------------------------------------------

def test_course_check_flags_each_step_whose_checks_miss_what_it_teaches():
    toml = UNTAUGHT / LESSON / "lesson.toml"
    rel = f"untaught/{LESSON}/lesson.toml"
    at = {sid: line_of(toml, f'id = "{sid}"') for sid in ("explain", "diff", "remove", "young", "mapped")}
    found = problems(UNTAUGHT)
    assert f"{rel}:{at['explain'] + 1}: step 'explain': 'docker run --explain lab echo hello' teaches --explain, " \
           f"but no check requires it: add explained = true to a container-ran check" in found
    assert f"{rel}:{at['diff'] + 2}: step 'diff': 'docker diff box' teaches docker diff, but no check looks " \
           f"for it: add a diff-read check" in found
    assert f"{rel}:{at['diff'] + 2}: step 'diff': 'docker stats --no-stream box' teaches docker stats, but no " \
           f"check looks for it: add a stats-read check" in found
    assert f"{rel}:{at['remove'] + 2}: step 'remove': 'docker rm -f box' removes box, but no check requires it " \
           f"gone: add {{ kind = \"container-removed\", container = \"box\" }}" in found
    assert any(p.startswith(f"{rel}:{at['young'] + 1}: step 'young': 'docker run --rm --timens lab uptime' needs "
                            f"what 'container-lab doctor' calls ns.time: add requires = [\"ns.time\"]") for p in found)
    assert any(p.startswith(f"{rel}:{at['mapped'] + 1}: step 'mapped': 'docker run --rm --userns private lab id' "
                            f"needs what 'container-lab doctor' calls userns.private") for p in found)


def test_course_check_flags_a_middle_hint_that_gives_the_command_in_each_language():
    found = problems(UNTAUGHT)
    for lang in ("en", "zh"):
        md = UNTAUGHT / LESSON / f"{lang}.md"
        assert f"untaught/{LESSON}/{lang}.md:{line_of(md, '{#told}')}: step 'told': hint 'given' gives the command " \
               f"'docker run -d --name web lab sleep 600' whole: a hint before the last leads the learner to it; " \
               f"the last hint (or show me) gives it" in found
    # The last hint gives it, as it should; a two-word command ("docker ps") gives nothing away.
    assert not any("hint 'answer'" in p or "'docker ps'" in p for p in found)
    assert len(found) == 8, "\n".join(found)


def test_the_untaught_course_fixed_passes(tmp_path):
    root = tmp_path / "untaught"
    shutil.copytree(UNTAUGHT, root)
    toml = root / LESSON / "lesson.toml"
    edit(toml, 'argv = ["echo", "hello"], exit_code = 0 }', 'argv = ["echo", "hello"], exit_code = 0, explained = true }')
    edit(toml, 'checks = [{ kind = "file-deleted", path = "/etc/os-release", container = "box" }]',
         'checks = [{ kind = "file-deleted", path = "/etc/os-release", container = "box" },\n'
         '          { kind = "diff-read", container = "box" },\n'
         '          { kind = "stats-read", container = "box" }]')
    edit(toml, '{ kind = "container-running", container = "box", running = false }',
         '{ kind = "container-removed", container = "box" }')
    edit(toml, 'commands = ["docker run --rm --timens lab uptime"]',
         'requires = ["ns.time"]\ncommands = ["docker run --rm --timens lab uptime"]')
    edit(toml, 'commands = ["docker run --rm --userns private lab id"]',
         'requires = ["userns.private"]\ncommands = ["docker run --rm --userns private lab id"]')
    edit(root / LESSON / "en.md", "Type `docker run -d --name web lab sleep 600`.", "Name it `web`; it only sleeps.")
    edit(root / LESSON / "zh.md", "输入 `docker run -d --name web lab sleep 600`。", "把它命名为 `web`，它只运行 sleep。")
    assert problems(root) == []


def test_the_shipped_course_checks_what_it_teaches():
    course, found = check_course(REPO / "content")
    assert found == [], "\n".join(map(str, found))
    kinds = {(lesson.id, step.id): {c.kind for c in step.checks} for lesson in course.lessons for step in lesson.steps}
    assert "container-removed" in kinds[("what-is-docker", "remove")]
    assert "container-removed" in kinds[("cgroups", "clean-up")]
    assert "diff-read" in kinds[("shell-in-a-container", "untouched")]
    explained = [c for c in course.lesson("first-container").step("stages").checks if c.args.get("explained")]
    assert explained and course.lesson("vm-vs-container").step("no-boot").requires == ("ns.time",)


# -- the engine's records and the checks on them ------------------------------------------------

@pytest.fixture(scope="module")
def view() -> EngineView:
    return EngineView()


def check(view, kind: str, cursor: int, lang: str = "en", **args):
    return evaluate(CheckSpec(kind, args), view, cursor, lang)


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_a_start_stage_by_stage_is_recorded_as_explained(view):
    cursor = view.cursor()
    cl("run", "--rm", "lab", "echo", "plain", check=True)
    plain = check(view, "container-ran", cursor, argv=["echo", "plain"], exit_code=0, explained=True)
    assert not plain.passed and "started stage by stage (run --explain)" in plain.expected
    assert check(view, "container-ran", cursor, argv=["echo", "plain"], exit_code=0).passed
    out = cl("run", "--rm", "--explain", "lab", "echo", "slow", check=True).stdout
    assert "slow" in out
    started = [e for e in view.events(cursor) if e["kind"] == "started"]
    assert [e.get("explained", False) for e in started] == [False, True]
    ok = check(view, "container-ran", cursor, "zh", argv=["echo", "slow"], exit_code=0, explained=True)
    assert ok.passed and ok.saw.endswith("，逐个阶段启动"), ok


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_docker_diff_is_recorded_and_a_checks_own_look_is_not(view):
    cl("run", "-d", "--name", "differ", "lab", "sleep", "300", check=True)
    cl("exec", "differ", "rm", "/etc/os-release", check=True)
    cursor = view.cursor()
    assert ("D", "/etc/os-release") in view.diff("differ")          # what a check reads: no event
    assert check(view, "file-deleted", cursor, path="/etc/os-release", container="differ").passed
    idle = check(view, "diff-read", cursor, container="differ")
    assert not idle.passed and idle.saw == "no docker diff since this step began"
    assert [e for e in view.events(cursor) if e["kind"] == "diff"] == []
    out = cl("diff", "differ", check=True).stdout
    assert "D /etc/os-release" in out.splitlines()
    (event,) = [e for e in view.events(cursor) if e["kind"] == "diff"]
    assert event["name"] == "differ"
    ok = check(view, "diff-read", cursor, container="differ")
    assert ok.passed and ok.saw == "docker diff differ" and ok.expected == "docker diff was run on container differ"
    assert check(view, "diff-read", cursor).passed
    assert not check(view, "diff-read", cursor, container="other").passed
    events = cl("events", "--filter", "name=differ", "--filter", "kind=diff", check=True).stdout
    assert " container diff " in events


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_container_removed_needs_the_container_gone_in_this_step(view):
    cl("run", "-d", "--name", "goner", "lab", "sleep", "300", check=True)
    cursor = view.cursor()
    cl("stop", "-t", "0", "goner", check=True)
    stopped = check(view, "container-removed", cursor, container="goner")
    assert not stopped.passed and "goner" in stopped.saw
    assert check(view, "container-running", cursor, container="goner", running=False).passed   # the old way: fooled
    cl("rm", "goner", check=True)
    ok = check(view, "container-removed", cursor, container="goner")
    assert ok.passed and ok.saw == "container goner was removed"
    assert ok.expected == "container goner has been removed (not only stopped)"
    later = check(view, "container-removed", view.cursor(), "zh", container="goner")
    assert not later.passed and later.saw == "没有名为 goner 的容器，但它不是在本步骤中删除的"


# -- every step safe to retry ----------------------------------------------------------------------

def _do_twice(lab, step) -> None:
    """Begin, show and check ``step``, then all of it again (a learner's second try)."""
    for attempt in (1, 2):
        cursor, setup = lab.begin_step(step)
        assert all(r.ok for r in setup), (attempt, setup)
        ran = lab.show_me(step)
        assert all(not r.error for r in ran), (attempt, [r for r in ran if r.error])
        results = lab.check(step, cursor, wait=10)
        assert all(r.passed for r in results), (attempt, [r for r in results if not r.passed])


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_a_step_that_names_its_containers_can_be_done_twice(view):
    course = load_course(REPO / "content")
    lesson = course.lesson("what-is-a-container")
    lab = Lab(course, lesson, view=view)
    try:
        step = lesson.step("start")                     # docker run -d --name first
        _do_twice(lab, step)
        # A show me after the learner's own half-done try: it starts afresh.
        cursor, _ = lab.begin_step(step)
        assert lab.run("docker run -d --name first lab sleep 3600", step).ok
        assert all(r.ok for r in lab.show_me(step))
        assert all(r.passed for r in lab.check(step, cursor, wait=10))
        # The name of a container that is not the lesson's is never taken over.
        lab.cleanup()
        cl("run", "-d", "--name", "first", "lab", "sleep", "300", check=True)
        mine = view.container("first")["id"]
        lab.begin_step(step)
        assert view.container("first")["id"] == mine
        assert "first" in lab.run("docker run -d --name first lab sleep 3600", step).output
    finally:
        lab.cleanup()


@needs_root
@pytest.mark.usefixtures("lab_image", "own_containers")
def test_a_step_whose_containers_stay_after_they_exit_can_be_done_twice(view):
    course = load_course(FIXTURE)
    lesson = course.lesson("isolation")
    lab = Lab(course, lesson, view=view)
    step = lesson.step("limits")                        # --name bomb, --name hog, no --rm
    try:
        assert lab.made_by(step) == ({"bomb", "hog"}, set())
        _do_twice(lab, step)
    finally:
        lab.cleanup()


def test_what_a_step_makes_excludes_what_its_setup_ensures():
    course = load_course(REPO / "content")
    networks = course.lesson("networks")
    lab = Lab(course, networks, view=object())
    assert lab.made_by(networks.step("by-name")) == ({"web", "client"}, {"lab-net"})
    assert lab.made_by(networks.step("none")) == (set(), set())        # lab-net and web come from its setup
    cgroups = course.lesson("cgroups")
    assert Lab(course, cgroups, view=object()).made_by(cgroups.step("clean-up")) == (set(), set())
