"""Bad values get a one-line error naming the problem, never the name of a
Python exception: through the CLI (``python -m engine.cli``), through the
socket (what a client other than ours may send), and from an image's config."""

from __future__ import annotations

import json
import socket

import pytest

from conftest import ROOT, cl, needs_root
from image_support import derived_image

PYTHON_NAMES = ("Error:", "Exception", "Traceback", "internal error")


def one_line(proc, words: str, code: int = 125) -> None:
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "\n" not in err and words in err, err
    assert not any(name in err for name in PYTHON_NAMES), err


@pytest.fixture
def sleeper(lab_image):
    cl("run", "-d", "--name", "badvalues", "lab", "sleep", "300", check=True)
    yield "badvalues"
    cl("rm", "-f", "badvalues")


@needs_root
@pytest.mark.parametrize("sig", ["999", "0", "65"])
def test_kill_with_a_signal_that_does_not_exist(sleeper, sig):
    one_line(cl("kill", "-s", sig, sleeper), f"invalid signal: {sig}", code=1)   # docker kill: 1
    assert json.loads(cl("inspect", sleeper).stdout)[0]["status"] == "running"


@needs_root
def test_kill_with_an_unknown_signal_name(sleeper):
    proc = cl("kill", "-s", "NOPE", sleeper)
    assert proc.returncode == 125 and "invalid signal: NOPE" in proc.stderr


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("user", ["99999999999999999999", "0:99999999999999999999", "2147483648"])
def test_a_uid_or_gid_out_of_range(user):
    one_line(cl("run", "--rm", "-u", user, "lab", "true"), "uids and gids must be in range 0-2147483647")


@needs_root
def test_exec_with_a_uid_out_of_range(sleeper):
    one_line(cl("exec", "-u", "99999999999999999999", sleeper, "true"),
             "uids and gids must be in range 0-2147483647")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_pids_limit_past_the_kernels_largest():
    one_line(cl("run", "--rm", "--pids-limit", "99999999999999999999", "lab", "true"),
             "invalid pids limit 99999999999999999999: at most 4194304")


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("field, value", [
    ("Env", ["PATH=/usr/bin:/bin", "A=x\0y"]),
    ("Cmd", ["echo", "a\0b"]),
    ("WorkingDir", "/tmp\0x"),
    ("User", "9999999999999"),
])
def test_an_image_config_with_a_bad_value(field, value):
    ref = derived_image("badconfig:1", config={field: value})
    try:
        proc = cl("run", "--rm", ref)
        assert proc.returncode == 125, proc.stdout
        err = proc.stderr.strip()
        assert "\n" not in err and "the image's" in err, err
        assert not any(name in err for name in PYTHON_NAMES), err
    finally:
        cl("rmi", ref)


def _request(message: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(ROOT / "run" / "supervisor.sock"))
        s.sendall((json.dumps(message) + "\n").encode())
        return json.loads(s.makefile().readline())


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("change, words", [
    ({"env": ["A=x\0y"]}, "contains a NUL byte"),
    ({"cmd": ["echo", "a\0b"]}, "NUL byte"),
    ({"workdir": "/a\0b"}, "contains a NUL byte"),
    ({"memory": "lots"}, "invalid memory 'lots': expected a number of bytes"),
    ({"pids_limit": 1.5}, "invalid pids_limit"),
    ({"tty": "yes"}, "invalid tty"),
    ({"cmd": "echo hi"}, "invalid cmd"),
    ({"volumes": [{"source": "/tmp", "target": "/x", "extra": 1}]}, "invalid volumes"),
    ({"volumes": [{"source": "/tmp\0", "target": "/x"}]}, "NUL byte"),
    ({"labels": {"a": 1}}, "invalid labels"),
])
def test_a_config_from_another_client_with_bad_types(change, words):
    from engine.spec import ContainerConfig

    config = ContainerConfig("lab", cmd=["true"], remove=True).to_dict() | change
    reply = _request({"op": "run", "config": config})
    assert reply["ok"] is False and words in reply["error"], reply
    assert "\n" not in reply["error"] and not any(n in reply["error"] for n in PYTHON_NAMES), reply


@needs_root
def test_exec_of_a_command_with_a_nul_byte_from_another_client(sleeper):
    reply = _request({"op": "exec", "id": sleeper, "exec": {"cmd": ["echo", "a\0b"], "detach": True}})
    assert reply["ok"] is False and "NUL byte" in reply["error"], reply
    assert not any(n in reply["error"] for n in PYTHON_NAMES), reply


@needs_root
def test_a_signal_of_the_wrong_type_from_another_client(sleeper):
    for sig in ("KILL", 1.5, None, True, 1 << 70):
        reply = _request({"op": "kill", "id": sleeper, "signal": sig})
        assert reply["ok"] is False and reply["error"] == f"invalid signal: {sig}", reply
