"""What ``container-lab`` says, read the way a learner reads it: an unknown verb
named as such with the nearest one, the course's options and the version in
the top-level help, the host named where a namespace is the host's, and no
complaint from Python when the reader of its output goes away.

Every command runs as a learner's shell would run it: a fresh interpreter,
without PYTHONUNBUFFERED or PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, cl, needs_root


def learner_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def container_lab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.launcher", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=learner_env())


# -- a word that is no verb ----------------------------------------------------------

def test_a_word_that_is_no_verb_is_called_so_with_the_nearest_verb():
    proc = container_lab("exce", "web", "ls")
    assert proc.returncode == 125
    assert proc.stderr == ("container-lab: 'exce' is not a container-lab command. Did you mean "
                           "'container-lab exec'?\nSee 'container-lab --help'.\n")
    proc = container_lab("xyzzy")
    assert proc.returncode == 125 and proc.stderr.splitlines()[0] == \
        "container-lab: 'xyzzy' is not a container-lab command."


# -- the top-level help and the version --------------------------------------------------

def test_help_names_the_courses_options_and_the_version():
    proc = container_lab("--help")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "usage: container-lab [--lang en|zh] [--lesson ID] [--course DIR]"
    for option in ("--lang en|zh", "--lesson ID", "--course DIR"):
        assert any(line.lstrip().startswith(option) for line in lines), option   # each explained
    assert "container-lab course check|solve" in proc.stdout
    assert any(line.lstrip().startswith("--version") for line in lines)
    # the verbs' own usage lines stay theirs
    assert container_lab("run", "--help").stdout.startswith("usage: container-lab run [-i]")


def test_version_comes_from_the_installed_metadata():
    proc = container_lab("--version")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"container-lab version {importlib.metadata.version('container-lab')}\n"


def test_the_version_is_not_looked_up_for_other_commands():
    """importlib.metadata costs some 25 ms to import: only --version pays it."""
    code = ("import sys, engine.cli\n"
            "engine.cli.build_parser('run').parse_args(['run', 'lab', 'true'])\n"
            "print('importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env=learner_env(), check=True).stdout
    assert out.strip() == "False"


# -- inspect --namespaces names the host ----------------------------------------------

@needs_root
@pytest.mark.usefixtures("lab_image")
def test_inspect_namespaces_names_the_host_among_those_it_shares_with():
    cl("run", "-d", "--name", "words-a", "--network", "host", "lab", "sleep", "60", check=True)
    try:
        cl("run", "-d", "--name", "words-b", "--pid", "container:words-a", "lab", "sleep", "60", check=True)
        table = cl("inspect", "--namespaces", "words-a", check=True).stdout
        rows = {line.split()[0]: line.split(None, 4)[3:] for line in table.splitlines()[2:]}
        assert rows["net"] == ["shared", "host"], table            # the host's own network namespace
        assert rows["pid"] == ["shared", "words-b"], table         # another container's, not the host's
        assert rows["mnt"] == ["isolated", "-"], table
        assert rows["user"] == ["shared", "host, words-b"], table  # the host's, and so words-b's too
    finally:
        cl("rm", "-f", "words-a", "words-b")


# -- the reader of the output goes away -------------------------------------------------

def into_a_closed_pipe(*args: str) -> tuple[int, str]:
    """``container-lab ARGS | (exec 0<&-; ...)``: the reader is gone before the first line."""
    proc = subprocess.Popen([sys.executable, "-m", "tui.launcher", *args], cwd=REPO, env=learner_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_every_verb_that_prints_is_quiet_when_its_reader_has_gone():
    cl("run", "-d", "--name", "words-pipe", "lab", "sh", "-c", "echo hello; sleep 60", check=True)
    try:
        for args in (["ps", "-a"], ["images"], ["logs", "words-pipe"], ["events", "--follow"],
                     ["inspect", "words-pipe"], ["inspect", "--namespaces", "words-pipe"], ["top", "words-pipe"],
                     ["course", "solve", "--lesson", "hello", str(REPO / "tests" / "fixtures" / "course")]):
            code, err = into_a_closed_pipe(*args)
            assert (code, err) == (0, ""), (args, err)
        # The verb's own exit code stays: here the error is on stderr, and only the [] was lost.
        code, err = into_a_closed_pipe("inspect", "words-pipe", "no-such-container")
        assert code == 1 and err == "container-lab: No such container: no-such-container\n", err
    finally:
        cl("rm", "-f", "words-pipe")


def test_a_closed_pipe_keeps_the_commands_own_exit_code(tmp_path):
    """`container-lab course check BROKEN | (exec 0<&-; ...)`: the problems were for
    a reader that has gone, but the course is still broken: exit status 1."""
    course = tmp_path / "course"
    shutil.copytree(REPO / "tests" / "fixtures" / "course", course)
    (course / "01-hello" / "zh.md").unlink()
    code, err = into_a_closed_pipe("course", "check", str(course))
    assert (code, err) == (1, "1 problem found\n")
