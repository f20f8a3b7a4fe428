"""A damaged container record is set aside, never fatal: the supervisor
starts, every command works, the supervisor's log says what was set aside in
one line, and ``gc`` reclaims it -- processes, cgroup and files."""

from __future__ import annotations

import json
import os
import signal

import pytest

from engine.container import Container, DamagedRecord, check_record

from conftest import ROOT, cgroup_dirs, cl, needs_root
from waiting import gone, wait_until

CONTAINERS = ROOT / "lib" / "containers"
DAMAGED = ROOT / "lib" / "damaged"
LOG = ROOT / "run" / "supervisor.log"


def _stop_supervisor(kill: bool = False) -> None:
    from engine.client import Client

    if kill:                     # as a crash would: the running containers stay
        pid = Client().ping()["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gone(pid), message="the killed supervisor to exit")
    else:
        Client().shutdown()


def _log_size() -> int:
    try:
        return LOG.stat().st_size
    except FileNotFoundError:
        return 0


def _damage(cid: str, change) -> None:
    record = CONTAINERS / cid / "container.json"
    if callable(change):
        change(record)
    else:
        record.write_text(json.dumps(json.loads(record.read_text()) | change))


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("change, why", [
    ({"id": "../../x"}, "is not its directory's name"),
    ({"id": "f" * 64}, "is not its directory's name"),
    ({"status": "zombie"}, "'status'"),
    ({"name": "../etc"}, "'name'"),
    ({"process": {"argv": "sh"}}, "'process.argv'"),
    ({"config": {"image": "lab", "bogus": 1}}, "its config is damaged"),
    (lambda p: p.write_text('{"version": 1, "id": '), "not JSON"),
    (lambda p: p.write_text("[]"), "not a JSON object"),
    (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file"),
], ids=["dotdot-id", "other-id", "status", "name", "argv", "config", "torn-json", "array", "fifo"])
def test_a_damaged_record_is_set_aside_and_gc_reclaims_it(change, why):
    cid = cl("run", "--name", "damaged", "lab", "true", check=True).stdout.strip() or \
        json.loads(cl("inspect", "damaged", check=True).stdout)[0]["id"]
    _stop_supervisor()
    _damage(cid, change)
    before = _log_size()
    proc = cl("ps", "-a")                         # a new supervisor starts, and answers
    assert proc.returncode == 0, proc.stderr
    assert "damaged" not in proc.stdout
    notice = LOG.read_text()[before:].strip().splitlines()
    assert len(notice) == 1 and cid in notice[0] and why in notice[0] and "set aside" in notice[0], notice
    assert not (CONTAINERS / cid).exists() and len(list(DAMAGED.iterdir())) == 1
    assert cl("run", "--rm", "--name", "damaged", "lab", "true").returncode == 0    # its name is free
    swept = cl("gc", check=True).stdout
    assert f"damaged record {cid}" in swept, swept
    assert list(DAMAGED.iterdir()) == []


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_running_record_with_a_bad_pid_does_not_stop_every_command():
    """"pid": "x" on a running record: the container cannot be adopted (its
    record says nothing trustworthy), so what its cgroup holds is ended."""
    cid = cl("run", "-d", "--name", "badpid", "lab", "sleep", "300", check=True).stdout.strip()
    host_pid = json.loads(cl("inspect", cid, check=True).stdout)[0]["pid"]
    _stop_supervisor(kill=True)
    assert os.path.exists(f"/proc/{host_pid}")
    _damage(cid, {"pid": "x"})
    for args in (["ps", "-a"], ["inspect", "badpid"], ["run", "--rm", "lab", "true"]):
        proc = cl(*args)
        assert "TypeError" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert cl("ps", "-a").returncode == 0
    wait_until(lambda: gone(host_pid), message=f"the container {host_pid} of the damaged record to end")
    assert cgroup_dirs() == []
    assert f"damaged record {cid}" in cl("gc", check=True).stdout


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_record_damaged_while_the_supervisor_runs_is_reclaimed_by_gc():
    """A directory with a record the supervisor never loaded (written while it
    ran) and that is damaged: gc sets it aside and reclaims it."""
    stray = CONTAINERS / ("e" * 64)
    stray.mkdir(parents=True)
    (stray / "container.json").write_text("{not json")
    (stray / "upper").mkdir()
    assert cl("ps").returncode == 0
    assert f"damaged record {'e' * 64}" in cl("gc", check=True).stdout
    assert not stray.exists() and list(DAMAGED.iterdir()) == []


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_directory_no_cgroup_could_be_named_after_does_not_stop_the_supervisor():
    junk = CONTAINERS / "not-a-container..x"
    junk.mkdir(parents=True)
    _stop_supervisor()
    assert cl("ps").returncode == 0
    assert not junk.exists()


# -- the checks, one field at a time ----------------------------------------------

GOOD = {
    "version": 1, "id": "a" * 64, "name": "brave_turing", "status": "running", "pid": 42, "pid_start": 7,
    "exit_code": None, "oom_killed": False, "error": "", "created": "t", "started": "t", "finished": "",
    "image": {"requested": "lab", "layers": ["/x"]}, "cgroup": {},
    "process": {"argv": ["sh"], "env": ["A=1"], "cwd": "/", "user": "", "hostname": "h", "lowerdir": "/x",
                "userns": None},
    "config": {"image": "lab"},
}


def test_a_good_record_passes():
    check_record(GOOD, "a" * 64)


@pytest.mark.parametrize("change", [
    {"version": 2}, {"id": "A" * 64}, {"id": None}, {"name": 7}, {"name": ""}, {"status": None},
    {"pid": "x"}, {"pid": -1}, {"pid": True}, {"pid": 1 << 40}, {"pid_start": "x"}, {"exit_code": "0"},
    {"oom_killed": 1}, {"error": None}, {"image": []}, {"image": {"layers": [1]}}, {"process": None},
    {"process": {**GOOD["process"], "argv": []}}, {"process": {**GOOD["process"], "env": [1]}},
    {"process": {**GOOD["process"], "cwd": "relative"}},
    {"process": {**GOOD["process"], "userns": {"base": "x", "size": 1}}},
    {"status": "running", "pid": 0},
])
def test_each_malformed_field_is_named(change):
    with pytest.raises(DamagedRecord):
        check_record(GOOD | change, "a" * 64)


def test_a_record_that_is_a_fifo_does_not_block(tmp_path):
    cdir = tmp_path / ("b" * 64)
    cdir.mkdir()
    os.mkfifo(cdir / "container.json")
    with pytest.raises(DamagedRecord, match="not a regular file"):
        Container.load(cdir)
