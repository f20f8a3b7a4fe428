"""Lesson 12 (images you build and share) and what it stands on.

- the engine's ``image`` events: a build says how many of its steps the
  build cache answered and which Dockerfile it read; push, pull and save
  are recorded; the supervisor takes only well-formed ones, and a client
  with no supervisor running records nothing and starts none;
- ``course-registry`` in registries.toml and doctor's ``registry.course``
  (a real registry answers; a port where nothing listens does not);
- the course's command line: ``$PWD`` and ``$REGISTRY`` in a command's words,
  a lesson's ``files`` written in the learner's folder, where its commands run;
- the image checks, each against what really happened;
- ``course solve`` of the lesson, in English and in Chinese, with a real
  registry on 127.0.0.1 as the course's registry (and as Docker Hub's mirror,
  so the first step really pulls ``alpine``), and without one: the push step
  is then explained and counted as skipped, never failed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.client import Client
from engine.images import config
from lessons.checks import evaluate
from lessons.docker import Context, expand, translate
from lessons.lab import Lab
from lessons.loader import load_course
from lessons.model import CheckSpec
from lessons.solve import solve
from lessons.validate import check_course
from lessons.view import EngineView

import registry_support
from conftest import REPO, ROOT, cl, needs_root, settle
from registry_support import RegistryServer, free_port

CONTENT = REPO / "content"
LESSON = "build-and-share"


@pytest.fixture(scope="module")
def course():
    return load_course(CONTENT)


@pytest.fixture(scope="module")
def view():
    return EngineView()


def _remove_images(*refs: str) -> None:
    """Take the images a test made out of the session's store (those missing are no error)."""
    Client().call("rmi", images=list(refs), force=True)


def _settings(tmp_path, monkeypatch, text: str) -> None:
    """This test's registries.toml (the learner's), read by the lab here and by every command it runs."""
    folder = tmp_path / "config" / "container-lab"
    folder.mkdir(parents=True)
    (folder / "registries.toml").write_text(text)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _context(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM lab\nRUN echo one > /one.txt\nCMD ["cat", "/one.txt"]\n')
    (ctx / "Dockerfile.two").write_text('FROM lab\nRUN echo two > /one.txt\nCMD ["cat", "/one.txt"]\n')
    return ctx


def _image_events(after: int) -> list[dict]:
    return [e for e in Client().events(after=after) if e.get("kind") == "image"]


# -- the course registry setting -------------------------------------------------------------------

def test_course_registry_defaults_to_localhost_5000_and_the_learners_file_wins(tmp_path):
    mine, machine = tmp_path / "mine.toml", tmp_path / "machine.toml"
    assert config.load([mine, machine]).course_registry == "localhost:5000"
    machine.write_text('course-registry = "10.0.0.5:5000"\ninsecure = ["10.0.0.5:5000"]\n')
    assert config.load([mine, machine]).course_registry == "10.0.0.5:5000"
    mine.write_text('course-registry = "127.0.0.1:5001"\n')
    assert config.load([mine, machine]).course_registry == "127.0.0.1:5001"


@pytest.mark.parametrize("value, words", [
    ('course-registry = 5000', "must be a string"),
    ('course-registry = "http://10.0.0.5:5000"', "without http://"),
    ('course-registry = "10.0.0.0/8"', "not a range"),
    ('course-registry = "bad host!"', "not host[:port]"),
])
def test_a_bad_course_registry_is_one_line_naming_the_file(tmp_path, value, words):
    path = tmp_path / "registries.toml"
    path.write_text(value + "\n")
    with pytest.raises(config.ConfigError) as e:
        config.load([path])
    assert str(path) in str(e.value) and "course-registry" in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


def test_doctor_says_whether_the_course_registry_answers(tmp_path, monkeypatch):
    from engine.doctor import course_registry

    dead = free_port()
    _settings(tmp_path, monkeypatch, f'course-registry = "127.0.0.1:{dead}"\n')
    ok, detail = course_registry()
    assert not ok and f"127.0.0.1:{dead}" in detail and "registries.toml" in detail
    registry = RegistryServer()
    try:
        (tmp_path / "config" / "container-lab" / "registries.toml").write_text(
            f'course-registry = "{registry.host}"\n')
        ok, detail = course_registry()
        assert ok and f"http://{registry.host}" in detail
        proc = cl("doctor", "--format", "json", env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
        by_id = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
        assert by_id["registry.course"]["ok"] is True
    finally:
        registry.close()


# -- the course's command line ---------------------------------------------------------------------

def test_variables_are_put_in_as_a_shell_would_and_others_left_alone():
    values = (("PWD", "/home/me/work"), ("REGISTRY", "10.0.0.5:5000"))
    assert expand(["$REGISTRY/hello", "${PWD}:/work", "$HOME", "a$PWD", "$$"], values) == \
        ["10.0.0.5:5000/hello", "/home/me/work:/work", "$HOME", "a/home/me/work", "$$"]
    context = Context(lang="en", cwd="/home/me/work", variables=values)
    cmd = translate("docker push $REGISTRY/hello", context, check_only=True)
    assert cmd.argv == ("push", "10.0.0.5:5000/hello") and cmd.cwd == "/home/me/work"
    assert translate("docker images", Context(), check_only=True).cwd is None


def test_lesson_files_must_stay_inside_the_lessons_folder(tmp_path):
    import shutil

    course = tmp_path / "course"
    shutil.copytree(REPO / "tests" / "fixtures" / "course", course)
    lesson = sorted(p for p in course.iterdir() if p.is_dir())[0]
    toml = lesson / "lesson.toml"
    toml.write_text(toml.read_text() + '\n[files]\n"../escape" = "x"\n"/etc/passwd" = "x"\n"ok" = 3\n')
    _, problems = check_course(course)
    text = "\n".join(map(str, problems))
    assert "file '../escape'" in text and "file '/etc/passwd'" in text and "file 'ok': its content" in text


@needs_root
def test_the_lab_writes_the_lessons_files_keeps_an_edit_and_restores_them_on_reset(course, view):
    lesson = course.lesson(LESSON)
    lab = Lab(course, lesson, view=view)
    folder = lab.workdir()
    assert folder == ROOT / "learner" / "work" / "12-build-and-share"
    dockerfile = folder / "Dockerfile"
    dockerfile.unlink(missing_ok=True)
    cursor, setup = lab.begin_step(lesson.step("first-pull"))
    assert dockerfile.read_text().startswith("FROM lab\nRUN ") and (folder / "Dockerfile.changed").exists()
    dockerfile.write_text("FROM lab\nCMD [\"true\"]\n")
    lab.begin_step(lesson.step("first-pull"))
    assert dockerfile.read_text() == "FROM lab\nCMD [\"true\"]\n"           # the learner's edit stays
    lab.reset(lesson.step("first-pull"))
    assert dockerfile.read_text() == dict(lesson.files)["Dockerfile"]        # reset: as the lesson gives it
    assert dict(lab.variables())["PWD"] == str(folder)
    assert translate("docker build -t hello .", lab.context(None, "learner"), check_only=True).cwd == str(folder)
    lab.cleanup()


# -- the engine's image events ---------------------------------------------------------------------

@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_build_event_counts_the_steps_the_cache_answered(tmp_path, view):
    ctx = _context(tmp_path)
    tag = f"evt-{tmp_path.name[-12:].lower().replace('_', '-')}"
    cursor = view.cursor()
    changed = CheckSpec("image-built", {"image": tag, "changed": True})
    try:
        for args in (["--no-cache"], []):
            proc = cl("build", "-t", tag, *args, str(ctx))
            assert proc.returncode == 0, proc.stderr
        assert not evaluate(changed, view, cursor).passed               # the same Dockerfile twice
        proc = cl("build", "-t", tag, "-f", str(ctx / "Dockerfile.two"), str(ctx))
        assert proc.returncode == 0, proc.stderr
        assert evaluate(changed, view, cursor).passed
        first, again, other = _image_events(cursor)
        assert first["action"] == "build" and first["ref"] == f"{tag}:latest" and first["names"] == [f"{tag}:latest"]
        assert (first["steps"], first["cached"]) == (2, 0)          # RUN and CMD, neither from the cache
        assert (again["steps"], again["cached"]) == (2, 2)
        assert (other["steps"], other["cached"]) == (2, 0) and other["image_id"] != first["image_id"]
        assert again["dockerfile"] == first["dockerfile"] != other["dockerfile"]
        assert first["image_id"] == again["image_id"]
        shown = cl("events", "--since", str(cursor), "--filter", "kind=image").stdout
        assert f"image build {tag}:latest" in shown and "steps=2, cached=2" in shown

        spec = CheckSpec("image-built", {"image": tag, "cached": "all"})
        assert evaluate(spec, view, cursor).passed
        assert not evaluate(spec, view, again["seq"]).passed                   # the other build: not all cached
        assert evaluate(CheckSpec("image-built", {"image": tag, "cached": "none"}), view, again["seq"]).passed
        assert not evaluate(CheckSpec("image-built", {"image": "other"}), view, cursor).passed
        assert not evaluate(spec, view, other["seq"]).passed                   # nothing since: the cursor counts
    finally:
        _remove_images(tag)


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_push_pull_and_save_are_recorded_and_checked(tmp_path, view):
    registry = RegistryServer()
    name = f"{registry.host}/shared"
    cursor = view.cursor()
    try:
        assert cl("tag", "lab", name).returncode == 0
        for args in (("push", name), ("rmi", name), ("pull", name), ("save", "-o", str(tmp_path / "s.tar"), name)):
            proc = cl(*args)
            assert proc.returncode == 0, proc.stderr
        push, pull, save = _image_events(cursor)
        assert (push["action"], push["ref"]) == ("push", f"{name}:latest") and push["digest"].startswith("sha256:")
        assert (pull["action"], pull["ref"], pull["digest"]) == ("pull", f"{name}:latest", push["digest"])
        assert (save["action"], save["names"]) == ("save", [name])
        for kind in ("image-pushed", "image-pulled", "image-saved"):
            assert evaluate(CheckSpec(kind, {"image": "shared"}), view, cursor).passed, kind
            assert not evaluate(CheckSpec(kind, {"image": "hello"}), view, cursor).passed, kind
            assert not evaluate(CheckSpec(kind, {"image": "shared"}), view, save["seq"]).passed, kind
            assert not evaluate(CheckSpec(kind, {"image": "shared:v2"}), view, cursor).passed, kind
    finally:
        registry.close()
        _remove_images(name)


@needs_root
def test_the_supervisor_takes_only_well_formed_image_events(view):
    from engine.errors import InvalidArgument

    client = Client()
    cursor = view.cursor()
    for bad in ({"action": "delete", "ref": "x"}, {"action": "build"}, {"action": "push", "ref": "x" * 600},
                {"action": "build", "ref": "x", "steps": 1, "cached": 2}, {"action": "pull", "ref": "x", "names": "x"},
                {"action": "build", "ref": "x", "steps": "2"}):
        with pytest.raises(InvalidArgument):
            client.call("image_event", **bad)
    assert _image_events(cursor) == []
    assert client.image_event("push", "x:latest", digest="sha256:" + "0" * 64)
    assert [e["ref"] for e in _image_events(cursor)] == ["x:latest"]


def test_with_no_supervisor_running_nothing_is_recorded_and_none_is_started(tmp_path):
    client = Client(state_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    assert client.image_event("build", "x:latest", steps=1, cached=1) is False
    assert not (tmp_path / "run" / "supervisor.sock").exists()


# -- the lesson, solved ----------------------------------------------------------------------------

def _hub_mirror(registry: RegistryServer) -> None:
    """``alpine`` on the test registry (the lab image's blobs under library/alpine), for a mirror of Docker Hub."""
    manifest, parsed, blobs = registry_support.lab_blobs(ROOT)
    registry.push("library/alpine", "latest", manifest, parsed["mediaType"], blobs)


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_solve_with_a_real_registry_pulls_builds_and_pushes(course, view, tmp_path, monkeypatch, lang):
    registry = RegistryServer()
    try:
        _hub_mirror(registry)
        _settings(tmp_path, monkeypatch, f'course-registry = "{registry.host}"\nmirrors = ["http://{registry.host}"]\n')
        cursor = view.cursor()
        lines: list[str] = []
        report = solve(course, lang=lang, lessons=[LESSON], out=lines.append, view=view)
        assert report.ok and report.skipped == 0, "\n".join(lines + report.failures)
        lesson = course.lesson(LESSON)
        assert report.steps == len(lesson.steps) and report.checks == sum(len(s.checks) for s in lesson.steps)
        events = list(view.events(cursor))
        ran = [e for e in events if e.get("kind") == "started" and (e.get("image") or {}).get("requested") == "alpine"]
        assert len(ran) == 2 and not any("course.image-requested" in (e.get("labels") or {}) for e in ran)
        assert [e["ref"] for e in events if e.get("kind") == "image" and e["action"] in ("push", "pull")] == \
            [f"{registry.host}/hello:latest"] * 2
        # The lesson's rmi took both names away; the pull gave the registry's one back.
        assert cl("image", "inspect", "hello").returncode != 0
        assert cl("image", "inspect", f"{registry.host}/hello").returncode == 0
    finally:
        registry.close()
        _remove_images("alpine", f"{registry.host}/hello", "hello")
        settle()


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_solve_without_a_registry_explains_the_push_step(course, view, tmp_path, monkeypatch, lang):
    dead = free_port()
    _settings(tmp_path, monkeypatch, f'course-registry = "127.0.0.1:{dead}"\n')
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", "--lesson", LESSON, "--lang", lang,
                           str(CONTENT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "registry.course" in out and f"127.0.0.1:{dead}" in out
    lacks = {"en": "lacks a registry for the course to push to", "zh": "一个供课程推送镜像的注册服务器"}[lang]
    assert lacks in out and "✗" not in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith({"en": "Solved:", "zh": "全部通过"}[lang]) and "1" in summary.split(";")[-1]
    lines: list[str] = []
    report = solve(course, lang=lang, lessons=[LESSON], out=lines.append, view=view)
    assert report.ok and report.skipped == 1, "\n".join(lines + report.failures)
    skipped = [s for s in course.lesson(LESSON).steps if s.requires]
    assert [s.id for s in skipped] == ["push-and-pull-back"]
    assert report.checks == sum(len(s.checks) for s in course.lesson(LESSON).steps if not s.requires)
    _remove_images("hello")


@needs_root
def test_the_registry_requirement_is_asked_when_a_step_needs_it_not_at_start(course, view, tmp_path, monkeypatch):
    """The app's diagnosis is taken once, at its start, without the registry; a registry the
    learner starts afterwards makes the push step runnable at once."""
    from engine.doctor import diagnose

    assert "registry.course" not in {c["id"] for c in diagnose()["checks"]}
    step = course.lesson(LESSON).step("push-and-pull-back")
    lab = Lab(course, course.lesson(LESSON), view=view, doctor=diagnose)
    _settings(tmp_path, monkeypatch, f'course-registry = "127.0.0.1:{free_port()}"\n')
    assert [c["id"] for c in lab.lacking(step)] == ["registry.course"]
    assert "registry.course" in lab.unavailable(step)
    registry = RegistryServer()
    try:
        (tmp_path / "config" / "container-lab" / "registries.toml").write_text(f'course-registry = "{registry.host}"\n')
        assert lab.lacking(step) == [] and lab.unavailable(step) is None
        assert translate("docker push $REGISTRY/hello", lab.context(step, "learner"), check_only=True).argv == \
            ("push", f"{registry.host}/hello")                          # $REGISTRY follows the settings too
    finally:
        registry.close()


def test_a_build_is_a_setup_command_only_with_a_name(tmp_path):
    import shutil

    course = tmp_path / "course"
    shutil.copytree(REPO / "tests" / "fixtures" / "course", course)
    lesson = sorted(p for p in course.iterdir() if p.is_dir())[0]
    toml = lesson / "lesson.toml"
    text = toml.read_text()
    toml.write_text(text.replace("[[steps]]", '[[steps]]\nsetup = ["docker build -t made .", "docker build ."]', 1))
    _, problems = check_course(course)
    text = "\n".join(map(str, problems))
    assert "setup 'docker build .': setup commands are" in text
    assert "setup 'docker build -t made .'" not in text
