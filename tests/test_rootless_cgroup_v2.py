"""Rootless limits on cgroup v2: a subtree delegated to the user, as systemd
delegates user@UID.service (the directory and its cgroup.procs,
cgroup.subtree_control and cgroup.threads chowned to the user; the user's
processes in a leaf below it). The rootless supervisor finds it from
/proc/self/cgroup and makes containers' cgroups in it: limits applied and
read back inside, a memory hog OOM-killed, a fork loop stopped at its pids
limit -- all as the unprivileged user. Runs in the CI's cgroup v2 VM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from rootless_support import PYTHON, Rootless, worker

from engine import userns

from conftest import needs_root

pytestmark = [needs_root, pytest.mark.cgroup_v2,
              pytest.mark.skipif(userns.restriction_reason() is not None, reason="user namespaces refused here")]

ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def delegated():
    rl = Rootless()
    u = rl.single
    top = ROOT / f"clt-delegated-{worker()}"
    leaf = top / "session"
    try:
        enabled = (ROOT / "cgroup.subtree_control").read_text().split()
        missing = [c for c in ("memory", "pids", "cpu") if c not in enabled]
        if missing:
            (ROOT / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))
        leaf.mkdir(parents=True)
        for d in (top, leaf):
            os.chown(d, u.uid, u.gid)
            for f in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
                os.chown(d / f, u.uid, u.gid)
        yield rl, u, top, leaf
    finally:
        subprocess.run(["pkill", "-9", "-u", u.name], capture_output=True)
        rl.close()
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
            try:
                d.rmdir()
            except OSError:
                pass
        assert not top.exists(), f"cgroups left under {top}"


def as_user_in_leaf(rl, u, leaf, *args, timeout=120):
    """The CLI as the user, started in the delegated leaf (root moves the
    shell there, then drops to the user: as systemd starts a user's session)."""
    script = f'echo $$ > {leaf}/cgroup.procs && exec setpriv --reuid {u.uid} --regid {u.gid} --clear-groups "$@"'
    return subprocess.run(["sh", "-c", script, "sh", PYTHON, "-m", "engine.cli", *args], text=True,
                          capture_output=True, timeout=timeout, cwd=u.home, env=u.env(rl.src))


def test_limits_apply_in_the_delegated_subtree(delegated):
    rl, u, top, leaf = delegated
    doctor = json.loads(as_user_in_leaf(rl, u, leaf, "doctor", "--format", "json").stdout)
    assert doctor["cgroup"] == "v2" and doctor["limits"]["memory"] and doctor["limits"]["pids"], doctor
    out = as_user_in_leaf(rl, u, leaf, "run", "--rm", "-m", "64m", "--pids-limit", "20", "--cpus", "0.5", "lab",
                          "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.max")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["67108864", "20", "50000", "100000"]
    assert "NOT applied" not in out.stderr
    as_user_in_leaf(rl, u, leaf, "ps", "-a")          # the supervisor tidies an exit before it answers
    made = [p for p in (top / "container-lab").iterdir() if p.is_dir()] if (top / "container-lab").exists() else []
    assert made == []                      # --rm: its cgroup went with it


def test_a_memory_hog_is_oom_killed_as_the_user(delegated):
    rl, u, top, leaf = delegated
    out = as_user_in_leaf(rl, u, leaf, "run", "--name", "hog", "-m", "32m", "lab", "tail", "/dev/zero")
    assert out.returncode == 137, out.stderr
    record = json.loads(as_user_in_leaf(rl, u, leaf, "inspect", "hog").stdout)[0]
    assert record["oom_killed"] is True and record["exit_code"] == 137
    assert as_user_in_leaf(rl, u, leaf, "rm", "hog").returncode == 0


def test_a_fork_loop_stops_at_its_pids_limit_as_the_user(delegated):
    rl, u, top, leaf = delegated
    out = as_user_in_leaf(rl, u, leaf, "run", "--rm", "--pids-limit", "10", "lab", "sh", "-c",
                          "for i in $(seq 30); do sleep 5 & done; wait")
    assert out.returncode != 0 and "fork" in out.stderr.lower(), out.stderr      # dash: "Cannot fork"
    assert shutil.which("setpriv")
