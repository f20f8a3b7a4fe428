"""The supervisor: its socket, its protocol, signals, and what it does after a crash."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

from conftest import REPO, ROOT, cgroup_dirs, cl, needs_root
from waiting import gone, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


def supervisor_pid() -> int:
    from engine.client import Client
    return Client().ping()["pid"]


def test_socket_and_dirs_are_private():
    supervisor_pid()
    sock = ROOT / "run" / "supervisor.sock"
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    for d in (ROOT / "run", ROOT / "lib", ROOT / "lib" / "containers", ROOT / "lib" / "images"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d


@pytest.mark.parametrize("payload", [
    b"this is not json\n",
    b"[1, 2, 3]\n",
    b'{"op": "no_such_op"}\n',
    b'{"op": "run", "config": {"image": "lab", "bogus": 1}}\n',
    b'{"op": "run", "config": {"image": "lab", "cmd": "not a list", "memory": "lots"}}\n',
    b'{"op": "kill", "id": "nobody-here"}\n',
    b'{"op": "__init__"}\n',
])
def test_bad_requests_get_an_error_reply_and_the_supervisor_lives_on(payload):
    pid = supervisor_pid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(ROOT / "run" / "supervisor.sock"))
        s.sendall(payload)
        reply = json.loads(s.makefile().readline())
    assert reply["ok"] is False and reply["error"] and reply["exit_code"] == 125
    assert supervisor_pid() == pid


def test_a_client_that_vanishes_mid_request_does_no_harm():
    pid = supervisor_pid()
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(ROOT / "run" / "supervisor.sock"))
            s.sendall(b'{"op": "ps", "al')
    assert supervisor_pid() == pid
    assert cl("ps").returncode == 0


def test_signals_to_the_cli_reach_the_container():
    """Without -t, `run` forwards SIGTERM to the container (docker's --sig-proxy)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--rm", "lab", "sh", "-c",
         'trap "echo caught TERM; exit 5" TERM; echo ready; while :; do sleep 0.1; done'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 5, err
    assert out == "caught TERM\n"


def test_cpu_limit_is_written_and_readable_inside():
    from engine.cgroups import detect

    if detect().name == "v2":
        files, expect = ["/sys/fs/cgroup/cpu.max"], ["50000", "100000"]
    else:
        files, expect = ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"], ["50000", "100000"]
    proc = cl("run", "--rm", "--cpus", "0.5", "lab", "cat", *files)
    assert proc.stdout.split() == expect, proc.stderr


def test_transcript_is_recorded_for_every_container():
    cl("run", "--name", "told", "lab", "true", check=True)
    info = json.loads(cl("inspect", "told", check=True).stdout)[0]
    transcript = json.loads((ROOT / "lib" / "containers" / info["id"] / "transcript.json").read_text())
    ids = [s["id"] for s in transcript["stages"]]
    assert ids[:3] == ["limits", "network", "fork"] and ids[-1] == "exec" and "pivot_root" in ids
    shells = [op["shell"] for s in transcript["stages"] for op in s["ops"]]
    assert "unshare --pid --fork" in shells and "mount --make-rprivate /" in shells
    assert any(sh.startswith("echo ") and "pids.max" in sh for sh in shells)
    cl("rm", "told", check=True)


def test_a_crashed_supervisor_is_replaced_and_its_running_container_adopted():
    """After the supervisor dies, the next command starts a new one, which finds
    the running container (same pid AND start time), so ps, exec, rm -f work."""
    cid = cl("run", "-d", "--name", "orphan", "lab", "sleep", "300", check=True).stdout.strip()
    host_pid = json.loads(cl("inspect", cid, check=True).stdout)[0]["pid"]
    crashed = supervisor_pid()
    os.kill(crashed, signal.SIGKILL)
    wait_until(lambda: gone(crashed), message=f"the killed supervisor {crashed} to be gone")
    info = json.loads(cl("inspect", "orphan", check=True).stdout)[0]
    assert info["status"] == "running" and info["pid"] == host_pid and info["adopted"] is True
    assert cl("exec", "orphan", "hostname").stdout.strip() == cid[:12]
    assert "orphan" in cl("ps").stdout
    assert cl("rm", "-f", "orphan").returncode == 0
    wait_until(lambda: gone(host_pid), timeout=5, message=f"the adopted container process {host_pid} to end")
    assert cgroup_dirs() == []


def test_a_reused_pid_is_not_mistaken_for_the_container():
    """A record whose pid now belongs to another process (other start time) is
    recorded as exited, and that process is left alone."""
    cid = cl("run", "-d", "--name", "ghost", "lab", "sleep", "300", check=True).stdout.strip()
    from engine.client import Client
    Client().shutdown()                     # stops (kills) the container and records it exited
    record = ROOT / "lib" / "containers" / cid / "container.json"
    rec = json.loads(record.read_text())
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        rec.update(status="running", pid=bystander.pid, pid_start=1)   # a start time that cannot match
        record.write_text(json.dumps(rec))
        info = json.loads(cl("inspect", "ghost", check=True).stdout)[0]
        assert info["status"] == "exited" and info["exit_code"] == 255
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    cl("rm", "ghost", check=True)


def test_debris_of_an_interrupted_create_is_swept_on_start():
    from engine.client import Client

    debris = ROOT / "lib" / "containers" / ("d" * 64)
    (debris / "upper").mkdir(parents=True)
    Client().shutdown()
    assert cl("ps", "-a").returncode == 0          # a new supervisor starts and sweeps
    assert not debris.exists()


def test_exited_containers_are_tidied_while_the_next_one_starts_and_when_idle():
    """The exit reaches the client first; the mounts, the cgroup and the files of
    a --rm container are released right after (while the next container is
    built, or after a short quiet spell), and before any request that looks."""
    from engine.client import Client
    from engine.spec import ContainerConfig

    client = Client()
    containers = ROOT / "lib" / "containers"

    def run_rm() -> str:
        with open(os.devnull, "w") as null:
            attached = client.run(ContainerConfig(image="lab", cmd=["true"], remove=True),
                                  stdio=[null.fileno(), null.fileno()])
            info = attached.wait()
            attached.close()
        assert info["exit_code"] == 0
        return info["id"]

    # Back to back: the first one's tidying is done by the time the second has started.
    first = run_rm()
    second = run_rm()
    assert not (containers / first).exists()
    # Nobody asks anything: the supervisor tidies after a quiet spell by itself.
    wait_until(lambda: not (containers / second).exists(), timeout=5, interval=0.01,
               message="a --rm container's files to go after a quiet spell")
    assert cgroup_dirs() == []


@pytest.mark.parametrize("make", ["too-long", "not-a-directory"])
def test_a_socket_path_that_cannot_be_connected_to_is_one_line(tmp_path, make):
    """A state dir whose socket path is too long for a Unix socket, or that
    is a file: the CLI says so in one line, no traceback."""
    if make == "too-long":
        root = tmp_path / ("x" * 110)
        root.mkdir()
    else:
        root = tmp_path / "root"
        root.mkdir()
        (root / "run").write_text("")
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "ps"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "CONTAINER_LAB_ROOT": str(root)}, timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 125 and "\n" not in err and "Traceback" not in err, err
    assert "supervisor" in err and str(root) in err, err
