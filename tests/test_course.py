"""The course framework without containers: the model and loader on a fixture
course, ``course check`` on broken copies of it (every mistake named
file:line), docker-command mapping, the learner's progress file, messages in
both languages, and the layering (no Textual in ``lessons``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import string
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lessons import checks, docker
from lessons.docker import CommandError, Context, translate
from lessons.i18n import CATALOG, LANGS, count, msg
from lessons.loader import CourseError, load_course
from lessons.model import Quiz
from lessons.progress import VERSION, ProgressStore
from lessons.validate import check_course

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course"
HELLO = "01-hello"


@pytest.fixture
def course(tmp_path) -> Path:
    """A copy of the fixture course, to break."""
    dst = tmp_path / "course"
    shutil.copytree(FIXTURE, dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[nth]


def problems(root: Path) -> list[str]:
    return [str(p) for p in check_course(root)[1]]


def course_cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.launcher", "course", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# -- layering -----------------------------------------------------------------------

def test_importing_lessons_does_not_load_textual():
    code = ("import lessons, lessons.model, lessons.loader, lessons.docker, lessons.checks, lessons.view, "
            "lessons.runner, lessons.lab, lessons.progress, lessons.validate, lessons.solve, lessons.cli, "
            "lessons.i18n, lessons.content\n"
            "from lessons.loader import load_course\n"
            f"load_course({str(FIXTURE)!r})\n"
            "import sys; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual', 'rich', 'pyroute2'))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_the_course_verb_does_not_load_textual():
    code = ("import contextlib, io, sys\n"
            "from tui.launcher import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    main(['course', 'check', {str(FIXTURE)!r}])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'pyroute2')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# -- the model, loaded ------------------------------------------------------------------

def test_fixture_course_loads_in_both_languages():
    c = load_course(FIXTURE)
    assert c.id == "fixture" and c.languages == ("en", "zh")
    assert [lesson.id for lesson in c.lessons] == ["hello", "isolation"]
    hello = c.lesson("hello")
    assert hello.image == "ubuntu" and hello.fallback == "lab"
    assert [s.id for s in hello.steps] == ["hello", "shell", "why"]
    assert hello.title == {"en": "Hello, container", "zh": "你好，容器"}
    step = hello.step("hello")
    assert [c.text for c in step.commands] == ["docker run ubuntu echo Hello World"]
    assert step.show_me == step.commands
    assert step.hints == ("shape", "words")
    assert step.hint("en", 0).startswith("`docker run` takes an image name")
    assert step.hint("zh", 1) == "镜像是 `ubuntu`，命令是 `echo Hello World`。"
    assert step.hint("en", 2) is None
    assert step.text["zh"].title == "打个招呼" and step.text["en"].glossary == ("image",)
    assert "::: hint" not in step.text["en"].body and "Run a command" in step.text["en"].body
    assert step.checks[0].kind == "container-ran" and step.checks[0].args["argv"] == ["echo", "Hello", "World"]
    shell = hello.step("shell")
    assert shell.commands[0].type == ("hostname", "rm /etc/passwd", "exit")
    why = hello.step("why")
    assert why.quiz == Quiz(("vm", "process", "copy"), frozenset({"process"}), False, why.quiz.line)
    option = why.text["zh"].options["vm"]
    assert option.text == "一台小型虚拟机。" and option.explanation.startswith("不对")
    assert why.text["en"].question == "What did `docker run` start?"
    assert c.glossary["namespace"].term == {"en": "namespace", "zh": "命名空间"}
    assert "A [container](glossary:container)" in hello.intro["en"]


def test_quiz_grading_single_and_multiple():
    c = load_course(FIXTURE)
    single = c.lesson("hello").step("why").quiz
    assert single.grade({"process"}) and not single.grade({"vm"}) and not single.grade({"process", "vm"})
    multiple = c.lesson("isolation").step("recap").quiz
    assert multiple.multiple
    assert multiple.grade(["pid", "uts"]) and not multiple.grade(["pid"]) and not multiple.grade(["pid", "uts", "disk"])


def test_model_is_immutable_plain_data():
    step = load_course(FIXTURE).lessons[0].steps[0]
    with pytest.raises(AttributeError):
        step.id = "other"


def test_shipped_course_is_valid():
    course, found = check_course(REPO / "content")
    assert found == [], "\n".join(map(str, found))
    assert course.id == "container-lab" and course.lessons
    assert len(course.glossary) >= 20


# Values in a lesson's sample output that come from the run that made it: a
# container's id (and hostname), a host PID, where a private user namespace
# starts outside. The learner's own run shows others.
_RUN_VALUES = [
    re.compile(r"\b[0-9a-f]{12}\b"),                                     # ids, hostnames
    re.compile(r"^\d+\s+(\d{3,})\s", re.M),                              # docker top: HOST PID
    re.compile(r"host PID (\d{3,})|PID (\d{3,}) on the host"),            # inspect --namespaces, --explain
    re.compile(r"^\s+0\s+([1-9]\d{3,})\s+\d+$", re.M),                    # a private uid map's base
]
_HEDGES = {"en": ("example", "yours", "your own", "will differ", "you saw"),
           "zh": ("示例", "你的", "看到的", "会不同")}


def _paragraphs(markdown: str) -> tuple[str, list[str]]:
    """A lesson's sample output (its fenced blocks, joined) and its prose, one paragraph each."""
    samples, prose, block, inside = [], [], [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = not inside
            prose.append("")
            continue
        (samples if inside else block).append(line)
        if not inside and not line.strip():
            prose.append(" ".join(block))
            block = []
    prose.append(" ".join(block))
    return "\n".join(samples), [p for p in prose if p.strip()]


@pytest.mark.parametrize("lang", LANGS)
def test_lessons_quote_a_sample_runs_numbers_only_as_an_example(lang):
    """A lesson shows sample output from one run; prose that quotes its PIDs, ids
    or uid ranges says so ("in the example", "the number you saw"), never as if
    they were what the learner's own screen shows."""
    found = []
    for md in sorted((REPO / "content").glob(f"*/{lang}.md")):
        samples, prose = _paragraphs(md.read_text(encoding="utf-8"))
        values = {v for pattern in _RUN_VALUES for m in pattern.finditer(samples)
                  for v in (m.groups() or (m.group(0),)) if v}
        for paragraph in prose:
            quoted = sorted(v for v in values if re.search(rf"(?<![\w.]){v}(?!\w)", paragraph))
            if quoted and not any(h in paragraph for h in _HEDGES[lang]):
                found.append(f"{md.parent.name}/{md.name}: {quoted}: {paragraph[:100]}")
    assert not found, "\n".join(found)


def test_load_course_raises_with_every_problem(course):
    (course / HELLO / "zh.md").unlink()
    edit(course / HELLO / "lesson.toml", 'kind = "container-ran"', 'kind = "container-runs"')
    with pytest.raises(CourseError) as info:
        load_course(course)
    assert len(info.value.problems) == 2
    assert "and 1 more" in str(info.value)


# -- course check: every mistake, file:line ---------------------------------------------

def test_check_passes_the_fixture_and_exits_0():
    proc = course_cli("check", str(FIXTURE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK -- 2 lessons, 7 steps" in proc.stdout


def test_check_default_is_the_shipped_course():
    proc = course_cli("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(REPO / "content") in proc.stdout


def test_missing_language(course):
    (course / HELLO / "zh.md").unlink()
    assert problems(course) == [f"course/{HELLO}/zh.md: file is missing (every lesson needs every language "
                                f"of the course)"]


def test_mismatched_step_ids(course):
    zh = course / HELLO / "zh.md"
    edit(zh, "{#shell}", "{#shel}")
    line = line_of(zh, "{#shel}")
    found = problems(course)
    assert f"course/{HELLO}/zh.md:{line}: step 'shel' is not in course/{HELLO}/lesson.toml " \
           f"(its steps: hello, shell, why)" in found
    assert f"course/{HELLO}/zh.md:1: step 'shell' of course/{HELLO}/lesson.toml has no " \
           f"'## Title {{#shell}}' section here" in found
    assert len(found) == 2


def test_steps_in_another_order(course):
    en = course / HELLO / "en.md"
    text = en.read_text()
    hello = text[text.index("## Say hello"):text.index("## A shell inside")]
    shell = text[text.index("## A shell inside"):text.index("## Why so fast?")]
    en.write_text(text.replace(hello + shell, shell + hello))
    assert any("different order" in p and p.startswith(f"course/{HELLO}/en.md:1:") for p in problems(course))


def test_unknown_check(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, 'kind = "container-ran"', 'kind = "container-runs"')
    line = line_of(toml, "[[steps.checks]]")
    (found,) = problems(course)
    assert found.startswith(f"course/{HELLO}/lesson.toml:{line}: step 'hello': unknown check kind 'container-runs'")
    assert "container-ran" in found                     # the known kinds are listed


def test_bad_check_arguments(course):
    toml = course / "02-isolation" / "lesson.toml"
    edit(toml, "exit_code = 0", 'exit_code = "zero"')
    edit(toml, 'namespace = "uts"', 'namespace = "disk"')
    edit(toml, 'limit = "pids"', 'limits = "pids"')
    found = problems(course)
    rel = "course/02-isolation/lesson.toml"
    assert f"{rel}:{line_of(toml, '[[steps.checks]]', 0)}: step 'look': check 'exec-ran': " \
           f"'exit_code' must be a number" in found
    assert f"{rel}:{line_of(toml, '[[steps.checks]]', 3)}: step 'look': check 'namespace': " \
           f"'namespace' must be one of: pid, mnt, net, uts, ipc, user, cgroup, time" in found
    limit_line = line_of(toml, '[[steps.checks]]', 4)
    assert f"{rel}:{limit_line}: step 'limits': check 'limit-hit': unknown argument 'limits' " \
           f"(it takes: limit, container)" in found
    assert f"{rel}:{limit_line}: step 'limits': check 'limit-hit': 'limit' is required" in found
    assert len(found) == 4


def test_inline_checks_are_located_by_their_kind(course):
    toml = course / "02-isolation" / "lesson.toml"
    edit(toml, '{ kind = "container-running", container = "other" }', '{ kind = "container-running" }')
    (found,) = problems(course)
    line = line_of(toml, 'kind = "container-running"')
    assert found == f"course/02-isolation/lesson.toml:{line}: " \
                    f"step 'neighbours': check 'container-running': 'container' is required"


def test_bad_toml(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, 'id = "shell"', 'id = "shell')
    found = problems(course)
    line = line_of(toml, 'id = "shell')
    assert found[0].startswith(f"course/{HELLO}/lesson.toml:{line}: invalid TOML:")
    assert len(found) == 1          # the prose is still read, and has no mistakes of its own


def test_invalid_quizzes(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, 'answer = ["process"]', 'answer = ["process", "vm"]')
    iso = course / "02-isolation" / "lesson.toml"
    edit(iso, 'answer = ["pid", "uts"]', 'answer = ["pid", "net"]')
    found = problems(course)
    assert f"course/{HELLO}/lesson.toml:{line_of(toml, '[steps.quiz]')}: quiz: a single-choice quiz has exactly " \
           f"one answer (or set multiple = true)" in found
    assert f"course/02-isolation/lesson.toml:{line_of(iso, '[steps.quiz]')}: quiz answer 'net' is not one of " \
           f"the options (pid, uts, disk)" in found


def test_quiz_options_must_match_and_explain(course):
    zh = course / HELLO / "zh.md"
    edit(zh, "::: option copy", "::: option kopie")
    en = course / HELLO / "en.md"
    edit(en, "A small virtual machine.\n\nNo: nothing booted. A VM brings its own kernel; a container uses the host's.\n",
         "A small virtual machine.\n")
    found = problems(course)
    assert f"course/{HELLO}/en.md:{line_of(en, '::: option vm')}: option 'vm' needs an explanation: a paragraph " \
           f"after the choice saying why it is right or wrong" in found
    assert f"course/{HELLO}/zh.md:{line_of(zh, '{#why}')}: step 'why': quiz options differ from lesson.toml " \
           f"(missing: copy; not in lesson.toml: kopie)" in found


def test_hints_must_match_and_start_gently(course):
    en = course / HELLO / "en.md"
    edit(en, "::: hint words", "::: hint wrds")
    zh = course / HELLO / "zh.md"
    edit(zh, "`docker run` 后面先写镜像名，再写要在容器里运行的命令。", "直接运行 docker run ubuntu echo Hello World 即可。")
    found = problems(course)
    sec = line_of(en, "{#hello}")
    assert f"course/{HELLO}/en.md:{sec}: step 'hello': hint 'words' has no '::: hint words' block" in found
    assert f"course/{HELLO}/en.md:{sec}: step 'hello': hint 'wrds' is not listed in the step's hints " \
           f"in lesson.toml" in found
    assert f"course/{HELLO}/zh.md:{line_of(zh, '{#hello}')}: step 'hello': the first hint gives the whole " \
           f"command away; start with a nudge" in found


def test_glossary_links_must_resolve(course):
    en = course / HELLO / "en.md"
    edit(en, "(glossary:image)", "(glossary:imag)")
    edit(en, "(glossary:container)", "(glossary:containr)")
    found = problems(course)
    assert f"course/{HELLO}/en.md:{line_of(en, 'glossary:imag)')}: glossary term 'imag' is not in glossary.toml" in found
    assert f"course/{HELLO}/en.md:{line_of(en, 'glossary:containr')}: glossary term 'containr' is not in " \
           f"glossary.toml" in found


def test_glossary_entries_need_both_languages(course):
    gl = course / "glossary.toml"
    edit(gl, 'zh = { term = "镜像", definition = "由只读镜像层组成的根文件系统，外加运行它所需的配置。" }\n', "")
    assert problems(course) == [f"course/glossary.toml:{line_of(gl, '[image]')}: glossary 'image': zh needs "
                                f"{{ term = \"...\", definition = \"...\" }}"]


def test_markdown_structure_mistakes(course):
    en = course / HELLO / "en.md"
    edit(en, "## Say hello {#hello}", "## Say hello")
    edit(en, "::: hint flags", "::: hnit flags")
    zh = course / "02-isolation" / "zh.md"
    text = zh.read_text()
    zh.write_text(text.rstrip().removesuffix(":::") + "\n")        # the last option never closed
    found = problems(course)
    assert f"course/{HELLO}/en.md:{line_of(en, '## Say hello')}: step heading 'Say hello' needs an id: " \
           f"## Say hello {{#step-id}}" in found
    assert f"course/{HELLO}/en.md:{line_of(en, '::: hnit flags')}: unknown block '::: hnit flags' (blocks are " \
           f"::: hint ID, ::: quiz, ::: option ID, each closed by a line :::)" in found
    assert f"course/02-isolation/zh.md:{line_of(zh, '::: option disk')}: '::: option' is not closed: end it " \
           f"with a line holding only :::" in found


def test_bold_that_commonmark_would_not_close_is_named(course):
    zh = course / HELLO / "zh.md"
    edit(zh, "用 `ubuntu` [镜像]", "**提示：**用 `ubuntu` [镜像]")
    found = problems(course)
    assert any(p.startswith(f"course/{HELLO}/zh.md:{line_of(zh, '**提示：**')}: bold markers that will show as "
                            "they are") for p in found), found
    edit(zh, "**提示：**", "**提示**：")                     # the punctuation outside: it renders
    assert not any("bold markers" in p for p in problems(course))


def test_titles_and_blocks_in_the_wrong_place(course):
    en = course / HELLO / "en.md"
    edit(en, "This lesson runs your first ones.\n", "This lesson runs your first ones.\n\n::: hint early\nToo soon.\n:::\n")
    edit(en, "## Why so fast? {#why}", "# Another title\n\n## Why so fast? {#why}")
    found = problems(course)
    assert f"course/{HELLO}/en.md:{line_of(en, '::: hint early')}: hints and quizzes belong in a ## step " \
           f"section" in found
    assert f"course/{HELLO}/en.md:{line_of(en, '# Another title')}: only one # title per lesson; steps are " \
           f"## sections" in found
    assert len(found) == 2


def test_unparseable_commands(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, '"docker run ubuntu echo Hello World"', '"docker run --privileged ubuntu echo Hello World"')
    iso = course / "02-isolation" / "lesson.toml"
    edit(iso, '"docker exec web ps -ef"', '"docker exec web \'ps -ef"')
    edit(iso, '"docker run -d --name other lab sleep 1002"', '"ls -l /"')
    found = problems(course)
    assert f"course/{HELLO}/lesson.toml:{line_of(toml, '--privileged')}: command 'docker run --privileged ubuntu " \
           f"echo Hello World': 'docker run --privileged' is not supported by container-lab: a privileged container " \
           f"would not be isolated, and this course is about isolation" in found
    assert f"course/02-isolation/lesson.toml:{line_of(iso, 'docker exec web')}: command 'docker exec web " \
           f"'ps -ef': cannot read this command: No closing quotation" in found
    assert any(p.startswith(f"course/02-isolation/lesson.toml:{line_of(iso, 'ls -l /')}: command 'ls -l /': "
                            f"only docker commands run here") for p in found)


def test_setup_and_container_names(course):
    iso = course / "02-isolation" / "lesson.toml"
    edit(iso, 'setup = ["docker run -d --name web lab sleep 1000"]', 'setup = ["docker run -d lab sleep 1000"]')
    found = problems(course)
    rel = "course/02-isolation/lesson.toml"
    assert f"{rel}:{line_of(iso, 'setup = [')}: setup 'docker run -d lab sleep 1000': setup commands are " \
           f"'docker run --name NAME ...', 'docker network create NAME' or 'docker build -t NAME ...', so " \
           f"the state they make has a name" in found
    # Every check naming web now names a container the step cannot count on.
    unknown = [p for p in found if "names container 'web'" in p]
    assert len(unknown) == 6 and all(p.startswith(f"{rel}:") for p in unknown)


def test_setup_may_create_a_network_and_checks_name_networks_the_step_can_count_on(course):
    iso = course / "02-isolation" / "lesson.toml"
    rel = "course/02-isolation/lesson.toml"
    edit(iso, 'commands = ["docker run -d --name other lab sleep 1002"]',
         'setup = ["docker network create lab-net"]\n'
         'commands = ["docker run -d --name other --network lab-net lab sleep 1002"]')
    edit(iso, '{ kind = "container-running", container = "other" },',
         '{ kind = "container-running", container = "other" },\n'
         '    { kind = "same-network", container = "web", other = "other", network = "lab-net", shared = false },\n'
         '    { kind = "address-assigned", container = "other", network = "elsewhere" },\n'
         '    { kind = "address-assigned", container = "web" },')
    edit(iso, 'kind = "pid1"', 'kind = "address-assigned"\ncontainer = "web"\nnetwork = "lab-net"\n\n'
                               '[[steps.checks]]\nkind = "pid1"')
    look, neighbours = line_of(iso, 'kind = "address-assigned"') - 1, line_of(iso, 'network = "elsewhere"')
    assert problems(course) == [
        f"{rel}:{look}: step 'look': check 'address-assigned' names network "
        f"'lab-net', but neither the lesson's setup, the step's setup nor its commands create it "
        f"(network create lab-net)",
        f"{rel}:{neighbours}: step 'neighbours': check 'address-assigned' names "
        f"network 'elsewhere', but neither the lesson's setup, the step's setup nor its commands create it "
        f"(network create elsewhere)"]
    edit(iso, 'network = "elsewhere"', 'network = "bridge"')
    edit(iso, 'commands = ["docker exec web ps -ef"]',
         'commands = ["docker exec web ps -ef", "docker network create lab-net"]')
    assert problems(course) == []


def test_interactive_show_me_needs_typing_that_ends(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, 'type = ["hostname", "rm /etc/passwd", "exit"]', 'type = ["hostname"]')
    line = line_of(toml, "docker run -it --name shell")
    assert problems(course) == [f"course/{HELLO}/lesson.toml:{line}: command 'docker run -it --name shell "
                                f"ubuntu bash': end the typed lines with exit, so the session ends"]
    edit(toml, ', type = ["hostname"] }', " }")
    assert problems(course) == [f"course/{HELLO}/lesson.toml:{line}: command 'docker run -it --name shell "
                                f"ubuntu bash' opens an interactive session: say what to type, e.g. "
                                f"{{ command = \"...\", type = [\"ls\", \"exit\"] }}"]


def test_unknown_keys_are_typos(course):
    toml = course / HELLO / "lesson.toml"
    edit(toml, 'hints = ["shape", "words"]', 'hint = ["shape", "words"]')
    found = problems(course)
    line = line_of(toml, "hint = [")
    assert f"course/{HELLO}/lesson.toml:{line}: step: unknown key 'hint' (a step has: checks, commands, hints, " \
           f"id, quiz, requires, setup, show)" in found


def test_check_cli_prints_every_problem_and_exits_1(course):
    (course / HELLO / "zh.md").unlink()
    edit(course / "02-isolation" / "lesson.toml", 'kind = "pid1"', 'kind = "pid-1"')
    proc = course_cli("check", str(course))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("course/01-hello/zh.md: file is missing")
    assert lines[1].startswith("course/02-isolation/lesson.toml:") and "unknown check kind 'pid-1'" in lines[1]
    assert "2 problems found" in proc.stderr and "Traceback" not in proc.stderr


def test_check_cli_on_a_missing_folder_is_one_line(tmp_path):
    proc = course_cli("check", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"{tmp_path / 'nope'}: not a folder"


def test_an_empty_folder_explains_what_a_course_is(tmp_path):
    found = problems(tmp_path)
    assert any("course.toml: file is missing" in p for p in found)
    assert any("no lessons: add folders named like 01-first-lesson" in p for p in found)


def test_every_check_kind_validates_its_arguments():
    assert checks.validate("nope", {}) == [f"unknown check kind 'nope' (known: {', '.join(sorted(checks.CHECKS))})"]
    assert checks.validate("pid1", {"command": "bash"}) == []
    assert checks.validate("pid1", {"command": ["bash", "-l"], "container": "web"}) == []
    assert checks.validate("pid1", {"command": []}) == ["check 'pid1': 'command' must be a non-empty list of strings"]
    assert checks.validate("container-ran", {"exit_code": True}) == ["check 'container-ran': 'exit_code' must be a number"]
    assert checks.validate("namespace", {"namespace": "pid", "container": "a", "shared": 1}) == \
        ["check 'namespace': 'shared' must be true or false"]
    assert checks.validate("file-deleted", {}) == ["check 'file-deleted': 'path' is required"]
    assert checks.validate("address-assigned", {"container": "box"}) == []
    assert checks.validate("address-assigned", {"network": "lab-net"}) == \
        ["check 'address-assigned': 'container' is required"]
    assert checks.validate("same-network", {"container": "web", "other": "client", "network": "lab-net",
                                            "shared": True}) == []
    assert checks.validate("same-network", {"container": "web"}) == ["check 'same-network': 'other' is required"]
    assert checks.validate("port-published", {"container": "site", "port": 80, "proto": "tcp",
                                              "reachable": False}) == []
    assert checks.validate("port-published", {"container": "site", "port": "80", "proto": "sctp"}) == \
        ["check 'port-published': 'port' must be a number", "check 'port-published': 'proto' must be one of: tcp, udp"]
    expected = {"container-ran", "exec-ran", "interactive-session", "container-running", "pid1", "hostname-differs",
                "file-deleted", "limit-hit", "namespace", "process-visible", "address-assigned", "same-network",
                "port-published", "container-removed", "diff-read", "image-built", "image-pushed", "image-pulled",
                "image-saved"}
    assert set(checks.CHECKS) == expected


# -- docker commands onto the engine ----------------------------------------------------------

LESSON = Context(course="c", lesson="l", step="s", origin="show", images=("ubuntu",))


OFFLINE = lambda ref: ("unreachable", "docker.io")        # noqa: E731 - no registry answers


def test_run_falls_back_to_lab_and_labels_the_container():
    cmd = translate("docker run --rm ubuntu echo Hello World", LESSON, has_image=lambda ref: False,
                    can_pull=OFFLINE)
    assert cmd.argv == ("run", "--rm", "--label", "course=c", "--label", "course.lesson=l", "--label",
                        "course.step=s", "--label", "course.origin=show", "--label",
                        "course.image-requested=ubuntu", "lab", "echo", "Hello", "World")
    assert cmd.image == "ubuntu" and cmd.image_used == "lab"
    assert cmd.notices == (msg("en", "notice.fallback.unreachable", image="ubuntu", fallback="lab",
                               registry="docker.io"),)
    assert "the registry docker.io cannot be reached" in cmd.notices[0]
    zh = translate("docker run ubuntu true", Context(images=("ubuntu",), lang="zh"), has_image=lambda ref: False,
                   can_pull=OFFLINE)
    assert "本地镜像存储中没有镜像 ubuntu，又无法连接注册服务器 docker.io" in zh.notices[0]


@pytest.mark.parametrize("answer, words", [
    (("absent", "10.0.0.5:5000, docker.io"), "the registry 10.0.0.5:5000, docker.io does not have it"),
    (("settings", "/etc/container-lab/registries.toml:2: Unclosed array (TOML)"),
     "the registry settings cannot be read (/etc/container-lab/registries.toml:2: Unclosed array (TOML))"),
])
def test_the_fallback_says_why_the_image_cannot_be_pulled(answer, words):
    cmd = translate("docker run ubuntu true", LESSON, has_image=lambda ref: False, can_pull=lambda ref: answer)
    assert cmd.image_used == "lab" and words in cmd.notices[0]


def test_a_registry_that_has_the_image_means_no_fallback():
    """Where a registry can give it (a classroom's mirror), the engine pulls it, as docker would."""
    asked = []
    cmd = translate("docker run ubuntu true", LESSON, has_image=lambda ref: False,
                    can_pull=lambda ref: asked.append(ref) or ("available", "10.0.0.5:5000"))
    assert asked == ["ubuntu"] and cmd.image_used == "ubuntu" and not cmd.notices
    assert cmd.argv[-2:] == ("ubuntu", "true") and docker.LABEL_IMAGE not in cmd.labels
    here = translate("docker run ubuntu true", LESSON, has_image=lambda ref: True,
                     can_pull=lambda ref: pytest.fail("a registry asked about an image that is here"))
    assert here.image_used == "ubuntu"


def test_run_keeps_an_image_that_is_there_and_does_not_rescue_typos():
    cmd = translate("docker run ubuntu:latest true", LESSON, has_image=lambda ref: True)
    assert cmd.argv[-2:] == ("ubuntu:latest", "true") and not cmd.notices
    typo = translate("docker run ubuntt true", LESSON, has_image=lambda ref: False, can_pull=OFFLINE)
    assert typo.image_used == "ubuntt" and not typo.notices          # the engine will say it is not found


def test_flags_pass_through_unchanged_in_order():
    cmd = translate("docker run -d --name web -h box --pids-limit 20 -m 32m --init --network none lab sleep 9",
                    Context(), check_only=True)
    assert cmd.argv == ("run", "-d", "--name", "web", "-h", "box", "--pids-limit", "20", "-m", "32m", "--init",
                        "--network", "none", "lab", "sleep", "9")
    assert cmd.detach and cmd.name == "web" and not cmd.terminal


def test_flags_the_engine_gains_pass_through():
    """Namespace-sharing flags are the engine's to validate; whichever it has, we pass on as written."""
    from engine.cli import build_parser

    run = build_parser("run")._subparsers._group_actions[0].choices["run"]
    known = {s for a in run._actions for s in a.option_strings}
    examples = {"--pid": "host", "--ipc": "host", "--uts": "host", "--network": "none", "--userns": "private"}
    tried = 0
    for flag, value in examples.items():
        if flag in known:
            tried += 1
            cmd = translate(f"docker run {flag} {value} lab true", Context(), check_only=True)
            assert cmd.argv == ("run", flag, value, "lab", "true")
    assert tried >= 1


def test_terminals_are_recognised():
    assert translate("docker run -ti lab bash", check_only=True).terminal
    assert translate("docker run -it lab bash", check_only=True).interactive
    assert translate("docker exec -it web sh", check_only=True).terminal
    assert not translate("docker exec web ps", check_only=True).terminal
    assert translate("docker start -a web", check_only=True).terminal


def test_docker_verbs_and_groups_map_onto_the_engine():
    assert translate("docker ps -a").argv == ("ps", "-a")
    assert translate("docker container ls").argv == ("ps",)
    assert translate("docker container rm -f web").argv == ("rm", "-f", "web")
    assert translate("docker image ls").argv == ("images",)
    assert translate("container-lab top web").argv == ("top", "web")
    assert translate("docker logs -f web").argv == ("logs", "-f", "web")
    assert translate("docker --help").argv == ("--help",)
    assert translate("docker build -t app:1 .").argv == ("build", "-t", "app:1", ".")
    assert translate("docker image build --no-cache .").argv == ("build", "--no-cache", ".")
    assert translate("docker commit web app:2").argv == ("commit", "web", "app:2")
    assert translate("docker container commit -m note web").argv == ("commit", "-m", "note", "web")


@pytest.mark.parametrize("lang", LANGS)
def test_unsupported_docker_features_get_one_clear_line(lang):
    for text in ("docker rename a b", "docker run --expose 80 lab true", "docker run --privileged lab true",
                 "docker -H tcp://x ps", "docker swarm init", "docker run --bogus lab true", "echo hi", "docker"):
        with pytest.raises(CommandError) as info:
            translate(text, Context(lang=lang), check_only=True)
        message = str(info.value)
        assert message and "\n" not in message and "usage:" not in message, (text, message)
    with pytest.raises(CommandError, match="发布端口" if lang == "zh" else "publish a port with -p"):
        translate("docker run --expose 80 lab true", Context(lang=lang), check_only=True)
    with pytest.raises(CommandError, match="用名字互相访问" if lang == "zh" else "reach each other by name"):
        translate("docker run --link db lab true", Context(lang=lang), check_only=True)
    # Ports and networks are the engine's now: they pass through as written.
    assert translate("docker run -p 8080:80 lab true", Context(lang=lang), check_only=True).argv == \
        ("run", "-p", "8080:80", "lab", "true")
    made = translate("docker network create lab-net", Context(lang=lang), check_only=True)
    assert made.argv == ("network", "create", "lab-net") and made.network == "lab-net"
    assert translate("docker network ls", Context(lang=lang), check_only=True).network is None
    assert translate("docker run -d -p 8080:80 --network lab-net lab true", Context(lang=lang)).argv[:5] == \
        ("run", "-d", "-p", "8080:80", "--network")


@pytest.mark.parametrize("lang,exce,cp", [
    ("en", "docker: 'exce' is not a docker command. Did you mean 'docker exec'?",
     "'docker cp' is not available in container-lab yet"),
    ("zh", "docker：'exce' 不是 docker 命令。你是想输入 'docker exec' 吗？", "container-lab 暂不支持 'docker cp'")])
def test_a_word_that_is_no_docker_command_is_called_so_with_the_nearest_verb(lang, exce, cp):
    def error(text: str) -> str:
        with pytest.raises(CommandError) as info:
            translate(text, Context(lang=lang), check_only=True)
        return str(info.value)
    assert error("docker exce web ls") == exce
    assert error("docker cp web:/etc/hosts .") == cp              # docker's, only not here yet
    assert "'docker run'" in error("docker rum lab true")          # a key hit in its place, not rm
    assert "'docker container exec'" in error("docker container exce web ls")
    assert "'docker image ls'" in error("docker image lss")
    nothing_near = error("docker xyzzy")
    assert "'xyzzy'" in nothing_near and "docker xyzzy" not in nothing_near.replace("'xyzzy'", "")
    assert ("Did you mean" not in nothing_near) and ("你是想" not in nothing_near)


def test_sharing_commands_are_the_engines_own():
    assert translate("docker pull ubuntu").argv == ("pull", "ubuntu")
    assert translate("docker image tag lab me/lab:v1", check_only=True).argv == ("tag", "lab", "me/lab:v1")
    assert translate("docker image push me/lab:v1", check_only=True).argv == ("push", "me/lab:v1")
    assert translate("docker container export -o /tmp/x.tar web", check_only=True).argv == \
        ("export", "-o", "/tmp/x.tar", "web")
    assert translate("docker import /tmp/x.tar me/x", check_only=True).argv == ("import", "/tmp/x.tar", "me/x")
    assert translate("docker run --pull never lab true", check_only=True).argv[:3] == ("run", "--pull", "never")
    with pytest.raises(CommandError, match="-o FILE"):
        translate("docker export web", check_only=True)           # its bytes cannot be shown here
    with pytest.raises(CommandError, match="instead of -"):
        translate("docker import - me/x", check_only=True)       # nothing can be typed into it


# -- messages ---------------------------------------------------------------------------

def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_messages_exist_in_both_languages_with_the_same_placeholders():
    assert set(CATALOG) == set(LANGS)
    assert set(CATALOG["en"]) == set(CATALOG["zh"])
    for key, en in CATALOG["en"].items():
        assert _placeholders(en) == _placeholders(CATALOG["zh"][key]), key


def test_counted_nouns_agree_with_their_number():
    assert [count("en", n, "quiz") for n in (0, 1, 2)] == ["0 quizzes", "1 quiz", "2 quizzes"]
    assert [count("en", n, "process") for n in (1, 3)] == ["1 process", "3 processes"]
    assert [count("zh", n, "process") for n in (1, 3)] == ["1 个进程", "3 个进程"]
    for lang in LANGS:                        # no "lesson(s)", "quiz(zes)": each message counts its nouns
        assert not [k for k, v in CATALOG[lang].items() if re.search(r"\w\((s|es|zes)\)", v)], lang


def test_chinese_messages_space_latin_from_chinese():
    """A space between Chinese and Latin text, as the style guide asks (placeholders count as Latin)."""
    import re
    han = r"[\u4e00-\u9fff]"
    for key, text in CATALOG["zh"].items():
        bare = re.sub(r"\{(where|state|why)\}", "中", text)        # these hold Chinese phrases
        # and these a number and its Chinese noun (count(): "3 个进程")
        bare = re.sub(r"\{(count|periods|lessons|steps|checks|quizzes|skipped|failures)\}", "9 中", bare)
        bare = re.sub(r"\{[a-z_]+\}", "X", bare)
        assert not re.search(rf"{han}[A-Za-z0-9`]|[A-Za-z0-9`]{han}", bare), (key, text)


# -- progress -----------------------------------------------------------------------------

def test_progress_round_trip(tmp_path):
    store = ProgressStore(tmp_path / "state")
    assert store.load()["courses"] == {}
    store.set_language("zh")
    store.set_current("fixture", "hello", "shell")
    store.record_step("fixture", "hello", "hello", done=True, checks=["container-ran"], hints=1)
    again = ProgressStore(tmp_path / "state")
    data = again.load()
    assert data["version"] == VERSION and data["language"] == "zh"
    assert data["current"] == {"course": "fixture", "lesson": "hello", "step": "shell"}
    assert again.step("fixture", "hello", "hello")["checks"] == ["container-ran"]
    assert again.completed("fixture", "hello") == {"hello"}
    assert (tmp_path / "state" / "progress.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content,key", [
    (b"{not json", "progress.corrupt"),
    (b"\xff\xfe", "progress.corrupt"),
    (json.dumps({"version": 1, "courses": []}).encode(), "progress.corrupt"),
    (json.dumps([1, 2]).encode(), "progress.corrupt"),
    (json.dumps({"version": 99, "courses": {}}).encode(), "progress.future"),
])
def test_a_bad_progress_file_is_moved_aside_with_a_notice(tmp_path, content, key):
    (tmp_path / "progress.json").write_bytes(content)
    store = ProgressStore(tmp_path)
    assert store.load()["courses"] == {}                        # a fresh start, no exception
    (aside,) = tmp_path.glob("progress.json.corrupt-*")
    assert aside.read_bytes() == content                         # kept, not destroyed
    (en,) = store.notice_texts("en")
    assert str(aside) in en
    assert ("newer container-lab" in en) == (key == "progress.future")
    store.record_step("c", "l", "s", done=True)
    assert json.loads((tmp_path / "progress.json").read_text())["courses"] == {"c": {"l": {"s": {
        "done": True, "time": store.step("c", "l", "s")["time"]}}}}


def test_progress_notice_in_chinese(tmp_path):
    (tmp_path / "progress.json").write_text("{")
    store = ProgressStore(tmp_path)
    store.load()
    (zh,) = store.notice_texts("zh")
    assert zh.startswith("无法读取你的学习进度文件")
    assert store.notice_texts("zh") == []                        # said once


_CRASH = """
import os, sys
sys.path.insert(0, {repo!r})
import lessons.progress as p
store = p.ProgressStore({dir!r})
where = sys.argv[1]
if where == "mid-write":
    real = p._write_all
    def half(fd, data):
        real(fd, data[: len(data) // 2])
        os._exit(9)
    p._write_all = half
else:
    def crash(*a, **k):
        os._exit(9)
    os.replace = crash
store.record_step("c", "l", "second", done=True)
"""


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_progress_survives_a_crash_mid_write(tmp_path, where):
    store = ProgressStore(tmp_path)
    store.record_step("c", "l", "first", done=True)
    before = (tmp_path / "progress.json").read_bytes()
    proc = subprocess.run([sys.executable, "-c", _CRASH.format(repo=str(REPO), dir=str(tmp_path)), where],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert (tmp_path / "progress.json").read_bytes() == before          # the old file, whole
    assert list(tmp_path.glob(".progress.json.*.tmp"))                  # what the crash left
    fresh = ProgressStore(tmp_path)
    assert fresh.completed("c", "l") == {"first"} and not fresh.notices
    fresh.record_step("c", "l", "third", done=True)
    assert fresh.completed("c", "l") == {"first", "third"}
    assert not list(tmp_path.glob(".progress.json.*.tmp"))              # swept by the next write


def test_progress_from_many_threads_loses_nothing(tmp_path):
    store = ProgressStore(tmp_path)
    threads = [threading.Thread(target=store.record_step, args=("c", "l", f"s{i}"), kwargs={"done": True})
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ProgressStore(tmp_path).completed("c", "l") == {f"s{i}" for i in range(20)}


def test_progress_lives_in_the_learners_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINER_LAB_LEARNER_DIR", str(tmp_path / "learner"))
    store = ProgressStore()
    store.set_language("en")
    assert (tmp_path / "learner" / "progress.json").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_progress_under_sudo_belongs_to_the_learner(tmp_path, monkeypatch):
    import engine.paths
    monkeypatch.setattr(engine.paths, "learner_owner", lambda: (65534, 65534))
    store = ProgressStore(tmp_path / "state")
    store.set_language("zh")
    assert (tmp_path / "state" / "progress.json").stat().st_uid == 65534
    assert (tmp_path / "state").stat().st_uid == 65534


def test_the_readme_example_is_a_valid_lesson(tmp_path):
    """"Writing your own course" in the README: its lesson.toml and Markdown,
    put into a course, pass `course check` as written."""
    import re
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Writing your own course"):]
    section = section[:section.index("\n## ", 1)]
    toml = re.findall(r"```toml\n(.*?)```", section, re.S)[0]
    markdown = re.findall(r"```markdown\n(.*?)```", section, re.S)[0]
    hint, quiz = markdown.split("::: quiz", 1)
    root = tmp_path / "my-course"
    (root / "01-hello").mkdir(parents=True)
    (root / "course.toml").write_text('id = "my-course"\ntitle.en = "Mine"\ntitle.zh = "我的"\n')
    (root / "glossary.toml").write_text('[namespace]\nen = { term = "namespace", definition = "A view." }\n'
                                        'zh = { term = "命名空间", definition = "视图。" }\n')
    (root / "01-hello" / "lesson.toml").write_text(toml)
    quiz = "::: quiz" + quiz.replace("::: option process", "::: option vm\nA VM.\n\nNo.\n:::\n\n::: option process")
    for lang in LANGS:
        (root / "01-hello" / f"{lang}.md").write_text(
            "# Hello\n\nSee [namespaces](glossary:namespace).\n\n## Hello {#hello}\n\nSay it.\n\n" + hint +
            "\n::: hint words\nThe image is ubuntu.\n:::\n\n## Shell {#shell}\n\nOpen one.\n\n"
            "::: hint flags\nA terminal.\n:::\n\n## Why {#why}\n\n" + quiz)
    course, found = check_course(root)
    assert found == [], "\n".join(map(str, found))
    assert [s.id for s in course.lessons[0].steps] == ["hello", "shell", "why"]


# -- steps that need what a machine may lack (requires = doctor check ids) ----------------------

def _doctor(**ok: bool):
    """A diagnosis like engine.doctor.diagnose()'s, every check ok unless told otherwise."""
    from lessons.requirements import known_ids
    return lambda: {"version": 1, "ok": True,
                    "checks": [{"id": cid, "ok": ok.get(cid.replace(".", "_"), True),
                                "detail": f"{cid}: no controller" if not ok.get(cid.replace(".", "_"), True)
                                else f"{cid} works"} for cid in known_ids()]}


class _NoEngine:
    """A view for a lab whose steps must not reach the engine: it records what was asked."""

    def __init__(self):
        self.asked = []

    def containers(self):
        self.asked.append("containers")
        return []

    def container(self, ref):
        self.asked.append(f"container {ref}")
        return {"status": "running", "name": ref}

    def cursor(self):
        return 7

    def events(self, after):
        raise AssertionError("a skipped step's checks must not read events")


def _limits_course(tmp_path) -> Path:
    """A one-lesson course whose only hands-on step is a fork bomb that needs a pids limit."""
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    shutil.rmtree(root / HELLO)
    toml = root / "02-isolation" / "lesson.toml"
    edit(toml, 'id = "limits"\n', 'id = "limits"\nrequires = ["cgroup.pids", "cgroup.memory"]\n')
    return root


def test_requires_names_doctor_checks(course):
    toml = course / "02-isolation" / "lesson.toml"
    edit(toml, 'id = "limits"\n', 'id = "limits"\nrequires = ["cgroup.pids", "cgroup.memroy"]\n')
    found = problems(course)
    line = line_of(toml, "[[steps]]", 2)
    assert len(found) == 1 and found[0].startswith(
        f"course/02-isolation/lesson.toml:{line}: step 'limits': requires 'cgroup.memroy', which is not a "
        f"container-lab doctor check (they are: root, kernel, overlayfs, ns.pid")
    edit(toml, '"cgroup.memroy"]', '"cgroup.memory", "ns.time", "userns.private"]')
    assert problems(course) == []
    edit(toml, 'requires = ["cgroup.pids", "cgroup.memory", "ns.time", "userns.private"]', 'requires = "cgroup.pids"')
    assert problems(course) == [f"course/02-isolation/lesson.toml:{line_of(toml, 'requires =')}: "
                                f"requires must be a list of strings"]
    assert load_course(_limits_course(course.parent / "other")).lesson("isolation").step("limits").requires == \
        ("cgroup.pids", "cgroup.memory")


@pytest.mark.parametrize("lang", LANGS)
def test_a_step_this_machine_cannot_do_is_explained_not_run(tmp_path, lang):
    from lessons.lab import Lab

    course = load_course(_limits_course(tmp_path))
    lesson = course.lesson("isolation")
    step = lesson.step("limits")
    view = _NoEngine()
    lab = Lab(course, lesson, lang=lang, view=view, doctor=_doctor(cgroup_pids=False))
    why = lab.unavailable(step)
    words = {"en": ("This step is not run on this machine, because it lacks process-count limits "
                    "(doctor: cgroup.pids: cgroup.pids: no controller)"),
             "zh": "这台机器缺少：进程数限制（doctor：cgroup.pids，cgroup.pids: no controller）。因此本步骤不在这里运行"}
    assert why.startswith(words[lang]), why
    assert "cgroup.memory" not in why                          # only what is lacking is named
    cursor, setup = lab.begin_step(step)
    assert cursor == 7 and setup == []                         # the lesson's setup is there; nothing run
    shown = []
    results = lab.show_me(step, on_output=shown.append)
    assert [(r.skipped, r.ok, r.output) for r in results] == [(True, True, why)] and shown == [why + "\n"]
    checked = lab.check(step, cursor, wait=5)
    assert [(r.kind, r.passed, r.skipped, r.saw) for r in checked] == [("limit-hit", True, True, why)] * 2
    assert checked[0].to_dict()["skipped"] is True
    assert lab.unavailable(lesson.step("look")) is None        # a step that requires nothing


def test_solve_skips_and_explains_what_the_machine_lacks(tmp_path):
    from lessons.solve import solve

    course = load_course(_limits_course(tmp_path))
    asked = []

    def doctor():
        asked.append(1)
        return _doctor(cgroup_memory=False)()
    lines = []
    view = _NoEngine()
    # Only the step that requires something, and the quiz after it: no other step reaches the engine.
    lesson = course.lesson("isolation")
    lesson = dataclasses.replace(lesson, setup=(), steps=tuple(s for s in lesson.steps if s.id in ("limits", "recap")))
    course = dataclasses.replace(course, lessons=(lesson,))
    report = solve(course, lessons=["isolation"], out=lines.append, view=view, doctor=doctor)
    assert report.ok and report.skipped == 1 and report.steps == 2 and report.checks == 0 and report.quizzes == 1
    assert "    – skipped: This step is not run on this machine, because it lacks memory limits" in "\n".join(lines)
    assert not any(line.lstrip().startswith("$") for line in lines)     # no command was run
    assert asked == [1]                                                   # doctor asked once per lab
    counted = {lang: dict(lessons=count(lang, report.lessons, "lesson"), steps=count(lang, report.steps, "step"),
                          checks=count(lang, report.checks, "check"), quizzes=count(lang, report.quizzes, "quiz"),
                          skipped=count(lang, report.skipped, "step")) for lang in LANGS}
    assert msg("en", "solve.ok.skipped", **counted["en"]) == (
        "Solved: 1 lesson, 2 steps, 0 checks, 1 quiz, all passed; 1 step skipped, needing what this machine lacks.")
    assert msg("zh", "solve.ok.skipped", **counted["zh"]) == (
        "全部通过：1 课，2 个步骤，0 项检查，1 道测验；另有 1 个步骤因这台机器缺少所需条件而跳过。")


def test_a_step_the_machine_can_do_runs_its_own_setup(tmp_path):
    from lessons.lab import Lab

    course = load_course(_limits_course(tmp_path))
    lesson = course.lesson("isolation")
    step = dataclasses.replace(lesson.step("limits"), setup=lesson.setup)
    view = _NoEngine()
    lab = Lab(course, lesson, view=view, doctor=_doctor())
    assert lab.unavailable(step) is None and lab.lacking(step) == []
    lab.begin_step(step)
    # the lesson's setup, a look for what an earlier try of the step left (bomb, hog), then the step's setup
    assert view.asked == ["container web", "containers", "container web"]


def test_requirement_names_in_both_languages():
    from lessons.requirements import known_ids, name
    for lang in LANGS:
        for rid in known_ids():
            assert name(lang, rid) != rid, (lang, rid)        # every doctor check has words
    assert name("zh", "ns.time") == "time 命名空间" and name("en", "cgroup.cpu") == "CPU limits"
    assert name("en", "something.new") == "something.new"


def test_explain_runs_in_the_learners_language():
    assert translate("docker run --explain lab true", Context(lang="zh"), check_only=True).argv == \
        ("run", "--explain", "--lang", "zh", "lab", "true")
    assert translate("docker run --explain --lang en lab true", Context(lang="zh"), check_only=True).argv == \
        ("run", "--explain", "--lang", "en", "lab", "true")
    assert "--lang" not in translate("docker run lab true", Context(lang="zh"), check_only=True).argv


@pytest.mark.parametrize("lang", LANGS)
def test_archives_go_through_files_in_the_course(lang):
    """The course shows output as text and types nothing into commands: save needs -o, load needs -i."""
    for text, flag in (("docker save lab", "-o FILE"), ("docker load", "-i FILE")):
        with pytest.raises(CommandError, match=flag):
            translate(text, Context(lang=lang), check_only=True)
    assert translate("docker save -o /tmp/lab.tar lab", Context(lang=lang), check_only=True).argv == \
        ("save", "-o", "/tmp/lab.tar", "lab")
    assert translate("docker load -i /tmp/lab.tar", Context(lang=lang), check_only=True).argv == \
        ("load", "-i", "/tmp/lab.tar")


def test_solve_tries_a_failed_step_once_more_as_a_learner_would():
    """The first try's failure is said in one line; only the second try counts."""
    from types import SimpleNamespace

    from lessons.solve import Report, _solve_step

    def result(passed):
        return SimpleNamespace(passed=passed, expected="web answered", saw="wget exited 1", kind="exec-ran")

    class Lab:
        lesson = SimpleNamespace(id="networks")

        def __init__(self, outcomes):
            self.outcomes, self.begun = list(outcomes), 0

        def begin_step(self, step, cancel=None):
            self.begun += 1
            return 0, []

        def unavailable(self, step):
            return None

        def show_me(self, step, cancel=None, origin=""):
            return []

        def check(self, step, cursor, wait=0, cancel=None):
            return [result(self.outcomes.pop(0))]

    step = SimpleNamespace(id="by-name", title=lambda lang: "By name", show_me=(), quiz=None, checks=("one",))
    for outcomes, ok in (([False, True], True), ([False, False], False), ([True], True)):
        lab, lines, report = Lab(outcomes), [], Report()
        _solve_step(lab, step, "en", lines.append, report, None)
        assert lab.begun == len(outcomes) and report.checks == 1 and report.steps == 1
        assert report.ok is ok and len(report.failures) == (0 if ok else 1)
        retried = [line for line in lines if "first try failed (exec-ran: wget exited 1)" in line]
        assert len(retried) == (len(outcomes) - 1)
        assert any("✗" in line for line in lines) is not ok
