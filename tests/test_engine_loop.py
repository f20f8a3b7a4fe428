"""The supervisor's loop never waits on one container or one client.

Each test has a container or a client misbehave -- a FIFO where /etc/passwd
should be, a PID 1 that cannot finish dying, a subscriber that stops reading,
huge lists, huge requests, a flood of output -- while another client's
requests must still be answered at once. And an attached container gets
pipes, never the client's own terminal or files.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import REPO, ROOT, cl, needs_root
from waiting import gone, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

SOCK = ROOT / "run" / "supervisor.sock"
FAST = 1.5          # seconds: an answer slower than this means the loop was held up


def timed_ps(timeout: float = 20) -> float:
    """Seconds a `ps -a` from a client of its own takes (it must succeed)."""
    from engine.client import Client

    t0 = time.monotonic()
    Client(timeout=timeout).ps(all=True)
    return time.monotonic() - t0


def failing_while_ps_stays_fast(*args: str) -> tuple[int, str]:
    """Run ``container-lab ARGS`` in the background; another client's ps must be
    answered fast meanwhile. The command's exit code and stderr."""
    slow = subprocess.Popen([sys.executable, "-m", "engine.cli", *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert timed_ps() < FAST
        _out, err = slow.communicate(timeout=10)
    finally:
        slow.kill()
        slow.wait()
    return slow.returncode, err


def test_a_fifo_passwd_in_a_running_container_holds_up_nobody():
    """`rm /etc/passwd; mkfifo /etc/passwd` inside, then exec: the exec is
    answered at once (as root: no lookup needed; as a named user: a one-line
    error), and another client's ps meanwhile too."""
    cl("run", "-d", "--name", "fifo-inside", "lab", "sleep", "300", check=True)
    try:
        cl("exec", "fifo-inside", "sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd", check=True)
        code, err = failing_while_ps_stays_fast("exec", "-u", "nobody", "fifo-inside", "id")
        assert code != 0
        assert err.strip() == ("container-lab: unable to find user nobody: /etc/passwd is not a regular file"), err
        t0 = time.monotonic()
        proc = cl("exec", "fifo-inside", "id", "-u", timeout=20)
        assert proc.returncode == 0 and proc.stdout == "0\n", proc.stderr
        assert time.monotonic() - t0 < 10
    finally:
        cl("rm", "-f", "fifo-inside")


def _fifo_image(tmp_path: Path) -> str:
    """An image whose /etc/passwd is a FIFO, with one static binary (tini)."""
    from test_image_io import docker_archive, layer_tar

    tini = Path("/usr/bin/tini-static")
    if not tini.exists():
        pytest.skip("needs tini-static")
    layer = layer_tar(("bin", "d"), ("bin/tini", "f", tini.read_bytes(), {"mode": 0o755}),
                      ("etc", "d"), ("etc/passwd", "p"))
    archive = docker_archive(tmp_path / "fifo.tar", [layer], tags=("fifo-passwd:1",))
    cl("load", "-i", str(archive), check=True)
    return "fifo-passwd:1"


def test_an_image_with_a_fifo_passwd_starts_without_holding_up_the_engine(tmp_path):
    image = _fifo_image(tmp_path)
    try:
        code, err = failing_while_ps_stays_fast("run", "--rm", "-u", "nobody", image, "/bin/tini", "--version")
        assert code == 125
        assert err.strip() == "container-lab: unable to find user nobody: /etc/passwd is not a regular file", err
        proc = cl("run", "--rm", image, "/bin/tini", "--version", timeout=20)      # root: no lookup needed
        assert proc.returncode == 0 and "tini version" in proc.stdout, proc.stderr
    finally:
        cl("rmi", image)


def test_rm_f_of_a_pid_1_that_cannot_finish_dying_holds_up_nobody():
    """A PID 1 ends only once every process of its namespace is reaped. Here
    one of them is a child of this test (forked into the container's PID
    namespace), so its exit waits for us: rm -f answers only once the exit
    has happened, while other clients' ps and rm -f are answered at once."""
    from engine import syscalls as sc
    from engine.client import Client

    cid = cl("run", "-d", "--name", "stuck", "lab", "sleep", "300", check=True).stdout.strip()
    cl("run", "-d", "--name", "bystander", "lab", "sleep", "300", check=True)
    pid1 = Client().inspect(cid)["pid"]
    kernel = sc.Syscalls()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid1}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    kernel.setns(theirs, sc.CLONE_NEWPID)
    try:
        guest = os.fork()
        if guest == 0:
            os.execv("/bin/sleep", ["sleep", "300"])
    finally:
        kernel.setns(own, sc.CLONE_NEWPID)
        os.close(own)
        os.close(theirs)
    reaped = False
    remover = subprocess.Popen([sys.executable, "-m", "engine.cli", "rm", "-f", "stuck"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Our guest is killed with the rest, and stays a zombie until we reap it.
        wait_until(lambda: gone(guest), message="the guest to be killed")
        assert timed_ps() < FAST
        t0 = time.monotonic()
        assert cl("rm", "-f", "bystander", timeout=20).returncode == 0
        assert time.monotonic() - t0 < 10
        assert remover.poll() is None, "rm -f answered before the container's exit happened"
        assert Client().inspect("stuck")["status"] == "running"
        os.waitpid(guest, 0)
        reaped = True
        out, err = remover.communicate(timeout=20)
        assert remover.returncode == 0, err
        assert out.strip() == "stuck"
        assert "stuck" not in cl("ps", "-a").stdout
    finally:
        if not reaped:
            os.kill(guest, signal.SIGKILL)
            os.waitpid(guest, 0)
        remover.kill()
        remover.wait()
        cl("rm", "-f", "stuck")
        cl("rm", "-f", "bystander")


def test_a_subscriber_that_never_reads_holds_up_nobody():
    """Events pile up for a client that does not read: requests go on being
    answered at once, and past a bound the subscriber is cut off -- and told so."""
    from engine.client import Client
    from engine.spec import ContainerConfig

    labels = {f"k{i}": "v" * 4000 for i in range(8)}        # ~32 KiB per event
    cid = Client().run(ContainerConfig(image="lab", cmd=["sleep", "300"], labels=labels), attach=False)["id"]
    lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(str(SOCK))
    lazy.sendall(b'{"op": "subscribe"}\n')
    try:
        client = Client(timeout=20)
        slowest = 0.0
        for _ in range(200):
            t0 = time.monotonic()
            client.kill(cid, signal.SIGCONT)   # one "kill" event each (sleep carries on), carrying the labels
            slowest = max(slowest, time.monotonic() - t0)
        assert slowest < FAST, f"a request took {slowest:.2f} s while a subscriber did not read"
        assert timed_ps() < FAST
        # Now read: the backlog, then a notice that it was cut off, then the end.
        lazy.settimeout(10)
        data = b""
        while chunk := lazy.recv(1 << 20):
            data += chunk
        last = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        assert last["event"] == "dropped" and "cut off" in last["error"], last
    finally:
        lazy.close()
        cl("rm", "-f", cid)


def test_ps_lists_a_thousand_containers():
    """A list longer than a request may be (1 MiB) is still a reply."""
    from engine.client import Client
    from engine.spec import ContainerConfig

    client = Client()
    made = []
    try:
        for i in range(1100):
            made.append(client.create(ContainerConfig(image="lab", cmd=["true"], name=f"many-{i}",
                                                      labels={"lot": "many", "pad": "p" * 1024}))["id"])
        listing = cl("ps", "-a", "--format", "json", timeout=60)
        assert listing.returncode == 0, listing.stderr
        assert len(listing.stdout.encode()) > 1 << 20
        names = {json.loads(line)["name"] for line in listing.stdout.splitlines()}
        assert {f"many-{i}" for i in range(1100)} <= names
        filtered = cl("ps", "-a", "--filter", "label=lot=many", "-q", timeout=60)
        assert filtered.returncode == 0, filtered.stderr
        assert len(filtered.stdout.split()) == 1100
    finally:
        for cid in made:
            client.remove(cid)


def test_oversize_labels_and_env_are_refused_in_one_line():
    big = [f"l{i}={'x' * 100_000}" for i in range(3)]
    proc = cl("run", "--rm", *[a for label in big for a in ("--label", label)], "lab", "true")
    assert proc.returncode == 125
    assert proc.stderr.strip().splitlines() == [
        "container-lab: labels too large: 293 KiB in all (at most 64 KiB)"], proc.stderr
    env = [f"E{i}={'x' * 100_000}" for i in range(3)]
    proc = cl("run", "--rm", *[a for item in env for a in ("-e", item)], "lab", "true")
    assert proc.returncode == 125
    assert proc.stderr.strip().splitlines() == [
        "container-lab: environment too large: 293 KiB in all (at most 256 KiB)"], proc.stderr


def test_a_request_over_the_limit_is_answered_at_once():
    from engine.client import Client
    from engine.errors import InvalidArgument

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(SOCK))
        t0 = time.monotonic()
        try:
            s.sendall(b'{"op": "ps", "pad": "' + b"x" * (2 << 20) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass                            # the supervisor hung up once it had answered
        reply = json.loads(s.makefile("rb").readline())
        assert time.monotonic() - t0 < FAST
    assert reply["ok"] is False and reply["error"] == "bad request: message too large (the limit is 1024 KiB)"
    # The client refuses before sending.
    t0 = time.monotonic()
    with pytest.raises(InvalidArgument, match=r"^request too large: 2048 KiB \(the supervisor accepts at most 1024 KiB\)$"):
        Client().call("ps", pad="x" * (2 << 20))
    assert time.monotonic() - t0 < FAST
    assert timed_ps() < FAST


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_an_attached_container_gets_pipes_not_the_clients_terminal_or_files(verb, tmp_path):
    """Under a terminal, with stdout appended (>>) to a file: the container (or
    a process exec'd in one) can neither change the terminal's modes nor
    truncate the file."""
    master, slave = pty.openpty()
    target = tmp_path / "out.txt"
    target.write_text("kept\n")
    script = ["sh", "-c", "stty -echo; stty -echo <&2; : > /proc/self/fd/1; echo done"]
    if verb == "run":
        argv = ["run", "--rm", "-i", "lab", *script]
    else:
        cl("run", "-d", "--name", "host-of-exec", "lab", "sleep", "300", check=True)
        argv = ["exec", "-i", "host-of-exec", *script]
    try:
        with open(target, "a") as out:
            proc = subprocess.run([sys.executable, "-m", "engine.cli", *argv],
                                  stdin=slave, stdout=out, stderr=slave, cwd=REPO, timeout=60)
        assert proc.returncode == 0
        assert termios.tcgetattr(slave)[3] & termios.ECHO, "the container turned the client's echo off"
        assert target.read_text() == "kept\ndone\n"
    finally:
        os.close(master)
        os.close(slave)
        if verb == "exec":
            cl("rm", "-f", "host-of-exec")


def test_attached_output_is_relayed_and_logged():
    """Output of an attached run reaches the client through the relay (large
    and in order) and is in the log, as a detached run's is."""
    proc = cl("run", "--name", "chatty", "lab", "sh", "-c", "seq 1 200000; echo err >&2", timeout=60)
    try:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "".join(f"{i}\n" for i in range(1, 200001))
        assert proc.stderr == "err\n"
        logged = cl("logs", "chatty")
        assert logged.stdout == proc.stdout and logged.stderr == "err\n"
    finally:
        cl("rm", "-f", "chatty")


def test_a_flood_of_output_is_paced_and_the_supervisor_keeps_up():
    """Four `yes` containers: their output is read at most OUTPUT_RATE a
    second each (what their logs hold says how fast), and ps is answered at once."""
    from datetime import datetime

    from engine import logs, supervisor
    from engine.client import Client

    client = Client()
    ids = [cl("run", "-d", "lab", "yes", check=True).stdout.strip() for _ in range(4)]
    try:
        t0 = time.monotonic()
        slowest = 0.0
        while time.monotonic() - t0 < 3.0:
            slowest = max(slowest, timed_ps())
            time.sleep(0.1)
        assert slowest < FAST
        for cid in ids:
            records = list(logs.read(client.container_dir(cid)))      # the last 8-16 MiB at most
            span = (datetime.fromisoformat(records[-1]["time"].rstrip("Z")) -
                    datetime.fromisoformat(records[0]["time"].rstrip("Z"))).total_seconds()
            read = sum(len(r["log"]) for r in records)
            bound = supervisor.OUTPUT_BURST + supervisor.OUTPUT_RATE * (span + 2 * supervisor.OUTPUT_TICK) + 65536
            assert read < bound, f"{read} bytes read in {span:.2f} s (bound {bound:.0f})"
    finally:
        for cid in ids:
            cl("rm", "-f", cid)


def test_utf8_split_across_reads_is_logged_intact():
    # Written 4093 bytes at a time: every write ends inside a character.
    cid = cl("run", "-d", "lab", "sh", "-c", "yes 中中中中 | head -n 20000 | dd bs=4093 iflag=fullblock 2>/dev/null",
             check=True).stdout.strip()
    try:
        assert cl("wait", cid, timeout=60).stdout.strip() == "0"
        from engine import logs
        from engine.client import Client

        text = logs.text(Client().container_dir(cid))
        assert "\ufffd" not in text
        assert text == "中中中中\n" * 20000
    finally:
        cl("rm", "-f", cid)


def test_bad_requests_are_named_and_bugs_are_logged_not_leaked():
    """A request with wrong types gets an error naming the field; an engine
    bug is logged with its traceback in <state>/supervisor.log, and the
    client gets one line without Python's exception names."""
    from engine.client import Client

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(SOCK))
        s.sendall(b'{"op": "run", "config": {"image": "lab", "cmd": "not a list", "memory": "lots"}}\n'
                  b'{"op": "kill", "id": "x", "signal": "TERM"}\n')
        f = s.makefile("rb")
        first, second = json.loads(f.readline()), json.loads(f.readline())
    assert first["error"].startswith("invalid ") and first["kind"] == "InvalidArgument", first
    assert "cmd" in first["error"] or "memory" in first["error"], first      # the field is named
    assert second["error"] == "invalid signal: TERM", second

    Client().shutdown()
    proc = cl("run", "--name", "buggy-loop", "lab", "sleep", "306", env={"CONTAINER_LAB_CRASH_AT": "raise-after-fork"})
    try:
        assert proc.returncode == 125
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "internal error while starting" in lines[0], proc.stderr
        assert "RuntimeError" not in proc.stderr and "Traceback" not in proc.stderr
        log = (ROOT / "run" / "supervisor.log").read_text()
        assert "Traceback (most recent call last)" in log and "RuntimeError: injected failure at after-fork" in log
    finally:
        cl("rm", "-f", "buggy-loop")
        Client().shutdown()            # the next test gets a supervisor without the injection


def test_fds_that_no_request_claims_are_not_kept():
    """File descriptors sent beside requests that do not claim them (``nfds``
    0) are closed, not kept for the connection's life: a client cannot make
    the supervisor hold thousands of its fds (and run out of its own)."""
    from engine.client import Client

    sup = Client().ping()["pid"]
    r, w = os.pipe()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(SOCK))
            f = s.makefile("rb")
            s.sendall(b'{"op": "ping"}\n')
            assert json.loads(f.readline())["ok"]
            before = len(os.listdir(f"/proc/{sup}/fd"))
            for _ in range(50):
                socket.send_fds(s, [b'{"op": "ping"}\n'], [r, w])
                assert json.loads(f.readline())["ok"]
            wait_until(lambda: len(os.listdir(f"/proc/{sup}/fd")) <= before, message="the unclaimed fds closed")
            # Many at once, more than any request may carry: refused, and hung up on.
            try:
                for _ in range(8):
                    socket.send_fds(s, [b" "], [r] * 16)
            except (BrokenPipeError, ConnectionResetError):
                pass                            # hung up on already
            reply = f.readline()
            assert "file descriptors" in json.loads(reply)["error"], reply
            try:
                assert f.readline() == b""
            except ConnectionResetError:        # closed with what it never read: a reset
                pass
    finally:
        os.close(r)
        os.close(w)
    wait_until(lambda: len(os.listdir(f"/proc/{sup}/fd")) <= before - 1, message="the connection's fds closed")


def test_a_client_right_after_a_shutdown_gets_a_new_supervisor():
    """The supervisor that is shutting down holds its lock until it exits; the
    one a client starts right then waits for it rather than failing."""
    from engine.client import Client

    Client().shutdown()
    os.environ["CONTAINER_LAB_EXIT_LINGER"] = "1.0"     # the next supervisor exits slowly
    try:
        first = Client().ping()["pid"]
    finally:
        del os.environ["CONTAINER_LAB_EXIT_LINGER"]
    Client().shutdown()                                # returns once its socket is gone: it still lingers
    assert not gone(first)
    second = Client().ping()["pid"]                    # waits for the lock instead of failing
    assert second != first and gone(first)
