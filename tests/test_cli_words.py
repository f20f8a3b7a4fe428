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
