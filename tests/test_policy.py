"""Who may ask for what, decided from the socket's peer, never from the client.

- The client trusts a supervisor socket only in a directory of its own (or
  root's) and only when the process listening runs as itself or root: a fake
  /tmp/container-lab-UID made by another user gets nothing, not one byte.
- The supervisor holds each connection to a policy from SO_PEERCRED: root
  and its own uid are owners (what Docker allows); the uids it was started
  with as seats get the strict seat policy (each refusal one line); anyone
  else is refused.
- A seat's volume source may hold no symlink: the shared-volume attack
  (A plants ``sub -> /etc``, B mounts ``shared/sub``) is refused.

Users are created for these tests (useradd) and removed after; their
commands run with the system Python (the test's venv lives under /root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest

from engine import policy
from engine.spec import ContainerConfig

from conftest import REPO, ROOT, cl, needs_root

pytestmark = needs_root
SYSTEM_PYTHON = "/usr/bin/python3"


# -- users ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def users():
    """Two unprivileged users made for this module: (victim or seat, other)."""
    if not shutil.which("useradd") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs useradd and /usr/bin/python3")
    names = [f"clpol{os.getpid() % 100000}{tag}" for tag in "ab"]
    made = []
    try:
        for name in names:
            subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
                            "/usr/sbin/nologin", name], check=True, capture_output=True)
            made.append(name)
        yield [pwd.getpwnam(n) for n in names]
    finally:
        for name in made:
            uid = pwd.getpwnam(name).pw_uid
            shutil.rmtree(f"/tmp/container-lab-{uid}", ignore_errors=True)
            subprocess.run(["userdel", name], check=True, capture_output=True)


def as_user(user, *args, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """``container-lab ARGS`` as ``user``: no XDG_RUNTIME_DIR, so its state dir is under /tmp."""
    return subprocess.run(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
         SYSTEM_PYTHON, "-m", "engine.cli", *args],
        env={"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": str(REPO), **(env or {})},
        cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


def one_line(proc, *words: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 125, (proc.returncode, proc.stdout, proc.stderr)
    assert "\n" not in err and all(w in err for w in words), err
    assert "Traceback" not in err and "Error:" not in err, err
    return err


# -- a fake supervisor in /tmp ---------------------------------------------------------

FAKE_SERVER = r"""
import os, select, socket, sys
path, make = sys.argv[1], sys.argv[2] == "make"
if make:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for d in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
        os.chmod(d, 0o777)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen()
print("ready", flush=True)
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if s in ready:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            data, fds, _, _ = socket.recv_fds(c, 65536, 16)
        except OSError:
            data, fds = b"", []
        print(f"got {len(data)} bytes and {len(fds)} fds", flush=True)
        c.close()
    if sys.stdin in ready:
        break
"""


class FakeServer:
    """A socket served by ``user`` at ``path``; ``received()`` says what reached it."""

    def __init__(self, user, path: str, make: bool):
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
             SYSTEM_PYTHON, "-c", FAKE_SERVER, path, "make" if make else "as-is"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", self.proc.stderr.read()

    def received(self) -> str:
        out, _err = self.proc.communicate(input="", timeout=10)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_a_fake_directory_made_by_another_user_in_tmp_is_refused(users):
    victim, attacker = users
    base = f"/tmp/container-lab-{victim.pw_uid}"
    server = FakeServer(attacker, f"{base}/container-lab/supervisor.sock", make=True)
    try:
        assert os.stat(base).st_uid == attacker.pw_uid
        # `run` would hand the supervisor its stdin, stdout and stderr (the victim's terminal).
        proc = as_user(victim, "run", "--rm", "-i", "lab", "true", stdin=subprocess.DEVNULL)
        one_line(proc, base, f"belongs to uid {attacker.pw_uid}", f"not to you (uid {victim.pw_uid}) or root")
        assert "got" not in server.received(), "the client connected to the fake supervisor"
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_world_writable_directory_of_ones_own_is_refused(users):
    victim, _attacker = users
    base = f"/tmp/container-lab-{victim.pw_uid}"
    os.makedirs(f"{base}/container-lab")
    try:
        for d in (base, f"{base}/container-lab"):
            os.chown(d, victim.pw_uid, victim.pw_gid)
        os.chmod(f"{base}/container-lab", 0o777)
        one_line(as_user(victim, "ps"), f"{base}/container-lab is writable by group and others (mode 0777)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_socket_served_by_another_user_in_ones_own_directory_is_refused(users):
    """The directory passes (the victim's own, 0700), but the process listening
    is another user's: SO_PEERCRED says so before anything is sent."""
    victim, attacker = users
    base = f"/tmp/container-lab-{victim.pw_uid}"
    state = f"{base}/container-lab"
    os.makedirs(state)
    for d in (base, state):
        os.chown(d, attacker.pw_uid, attacker.pw_gid)
    server = FakeServer(attacker, f"{state}/supervisor.sock", make=False)
    try:
        for d in (base, state):
            os.chown(d, victim.pw_uid, victim.pw_gid)
        os.chmod(base, 0o755)
        os.chmod(state, 0o700)
        one_line(as_user(victim, "ps"), f"it runs as uid {attacker.pw_uid}", f"not as you (uid {victim.pw_uid})")
        # It connected (the peer's credentials come with a connection), and sent nothing.
        assert server.received().split("\n")[0] in ("", "got 0 bytes and 0 fds"), "something was sent"
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_the_directory_check_itself():
    from engine.paths import untrusted_reason

    assert untrusted_reason("/run/container-lab") is None
    assert untrusted_reason(str(ROOT / "run")) is None
    assert untrusted_reason("/tmp/no/such/dir/yet") is None       # made later, by the client
    assert "writable by group and others (mode 1777)" in untrusted_reason("/tmp")


# -- the supervisor's side: seats and strangers -------------------------------------------

SOCK = ROOT / "run" / "supervisor.sock"


@pytest.fixture(scope="module")
def seat(users, lab_image):
    """The session's supervisor, restarted with the first user as a seat and
    a directory seats may bind volumes from; its socket reachable by them."""
    from engine.client import Client

    seat_user, _other = users
    volumes = ROOT / "seatvol"
    (volumes / "shared").mkdir(parents=True)
    os.chmod(volumes / "shared", 0o777)     # a seat's container root is an unprivileged uid on the host
    Client(autostart=False).shutdown()
    cl("ps", env={policy.SEAT_UIDS_ENV: str(seat_user.pw_uid), policy.SEAT_VOLUMES_ENV: str(volumes)}, check=True)
    for path, mode in ((ROOT, 0o711), (ROOT / "run", 0o711), (SOCK, 0o666)):
        os.chmod(path, mode)
    yield seat_user
    cl("network", "rm", f"seat-uid{seat_user.pw_uid}")     # the seat's own network, made by its first container
    Client(autostart=False).shutdown()        # the next command starts one with no seats
    for path in (ROOT, ROOT / "run"):
        os.chmod(path, 0o700)
    shutil.rmtree(volumes, ignore_errors=True)


def seat_cl(user, *args):
    return as_user(user, *args, env={"CONTAINER_LAB_ROOT": str(ROOT)})


@pytest.mark.parametrize("flags, words", [
    (["--pid", "host"], "--pid host is not allowed for a classroom seat"),
    (["--ipc", "host"], "--ipc host is not allowed for a classroom seat"),
    (["--network", "host"], "--network host is not allowed for a classroom seat"),
    (["--uts", "host"], "--uts host is not allowed for a classroom seat"),
    (["--network", "container:somebody"], "sharing another container's namespace"),
    (["--pid", "container:somebody"], "--pid container:somebody is not allowed"),
    (["--security-opt", "seccomp=unconfined"], "seccomp=unconfined is not allowed for a classroom seat"),
    (["-v", "/etc:/x:ro"], "-v /etc: host paths are not allowed for a classroom seat"),
    (["-m", "0"], "-m 0 or -1 (no memory limit) is not allowed"),
    (["-m", "-1"], "-m 0 or -1 (no memory limit) is not allowed"),
    (["-m", "2g"], "-m 2048m is more than a classroom seat's budget of 1024m"),
    (["--memory-swap", "-1"], "--memory-swap -1 (unlimited swap) is not allowed"),
    (["--pids-limit", "0"], "--pids-limit 0 or -1 (no process limit) is not allowed"),
    (["--pids-limit", "-1"], "--pids-limit 0 or -1 (no process limit) is not allowed"),
    (["--pids-limit", "5000"], "--pids-limit 5000 is more than a classroom seat's budget of 1024"),
    (["--cpus", "0"], "--cpus 0 (no CPU limit) is not allowed for a classroom seat"),
    (["--cpus", "2"], "--cpus 2 is more than a classroom seat's budget of 1"),
    (["-p", "80:80"], "-p 80:80: a classroom seat may publish host ports from 1024 up only"),
    (["-p", "127.0.0.1:22:80/tcp"], "-p 127.0.0.1:22:80/tcp: a classroom seat may publish host ports from 1024 up"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_seat_is_refused_with_one_line_each(seat, flags, words):
    one_line(seat_cl(seat, "run", "--rm", *flags, "lab", "true"), words)


def test_a_seat_runs_a_container_within_its_budget(seat):
    proc = seat_cl(seat, "run", "--name", "seated", "-m", "64m", "--pids-limit", "100", "lab", "echo", "hi")
    try:
        assert proc.returncode == 0 and proc.stdout.strip() == "hi", proc.stderr
        import json
        ref = f"uid{seat.pw_uid}/seated"           # the owner names a seat's container SEAT/NAME
        config = json.loads(cl("inspect", ref, check=True).stdout)[0]["config"]
        assert (config["memory"], config["pids_limit"], config["cpus"]) == (64 << 20, 100, 1.0)
        assert (config["userns_mode"], config["network"]) == ("private", f"seat-uid{seat.pw_uid}")
        # Starting it again is checked against the seat's policy too.
        assert seat_cl(seat, "start", "seated").returncode == 0
    finally:
        cl("rm", "-f", f"uid{seat.pw_uid}/seated")


def test_a_seat_may_not_stop_the_supervisor(seat):
    import json
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        pid = os.fork()
        if pid == 0:                      # the request, from a process running as the seat
            try:
                os.setgid(seat.pw_gid)
                os.setuid(seat.pw_uid)
                s.connect(str(SOCK))
                s.sendall(b'{"op": "shutdown"}\n')
                reply = json.loads(s.makefile().readline())
                os._exit(0 if "may not stop the supervisor" in reply["error"] else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cl("ps").returncode == 0


def test_the_owner_may_still_do_what_docker_allows(seat):
    proc = cl("run", "--rm", "--pid", "host", "--cpus", "0", "-m", "0", "--pids-limit", "-1", "lab", "true")
    assert proc.returncode == 0, proc.stderr


def test_a_user_who_is_neither_owner_nor_seat_is_refused(seat, users):
    _seat, other = users
    one_line(as_user(other, "ps", env={"CONTAINER_LAB_ROOT": str(ROOT)}),
             f"uid {other.pw_uid} may not use it")


def test_a_client_cannot_claim_to_be_the_owner(seat):
    """Whatever a client says about itself (fields, environment), the kernel's word counts."""
    proc = as_user(seat, "run", "--rm", "--pid", "host", "lab", "true",
                   env={"CONTAINER_LAB_ROOT": str(ROOT), policy.SEAT_UIDS_ENV: "", "SUDO_USER": "root",
                        "USER": "root"})
    one_line(proc, "--pid host is not allowed for a classroom seat")


def test_the_shared_volume_symlink_attack_is_refused_for_a_seat(seat):
    shared = ROOT / "seatvol" / "shared"
    planted = seat_cl(seat, "run", "--rm", "-v", f"{shared}:/shared", "lab", "ln", "-s", "/etc", "/shared/sub")
    assert planted.returncode == 0, planted.stderr
    assert os.readlink(shared / "sub") == "/etc"
    proc = seat_cl(seat, "run", "--rm", "-v", f"{shared}/sub:/x", "lab", "cat", "/x/shadow")
    one_line(proc, f"-v {shared}/sub", "a symlink is on its path")
    assert proc.stdout == ""
    # The owner names a host path as Docker's users do: symlinks followed.
    assert cl("run", "--rm", "-v", f"{shared}/sub:/x:ro", "lab", "test", "-f", "/x/shadow").returncode == 0


def test_a_seat_cannot_climb_out_of_its_volume_directory(seat):
    up = "../" * (str(ROOT).count("/") + 1)              # from ROOT/seatvol up to /
    assert os.path.isdir(f"{ROOT}/seatvol/{up}etc")
    for source in (f"{ROOT}/seatvol/{up}etc", f"{ROOT}/seatvol/shared/./../{up}/etc", f"/{ROOT}/seatvol"):
        one_line(seat_cl(seat, "run", "--rm", "-v", f"{source}:/x", "lab", "true"),
                 f"-v {source}: a classroom seat's volume path must be plain")


def test_a_volume_source_is_opened_once_and_a_seats_may_hold_no_symlink(tmp_path):
    real = tmp_path / "real"
    (real / "d").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    seat_policy = policy.SeatPolicy(volume_roots=(str(tmp_path),))
    with pytest.raises(OSError) as e:
        policy.open_volume_source(str(tmp_path / "link" / "d"), seat_policy.volume_resolve())
    assert "a symlink is on its path" in policy.volume_error(e.value, seat_policy.volume_resolve())
    with pytest.raises(policy.PolicyRefused, match="a symlink is on its path"):
        seat_policy.admit(ContainerConfig("lab", volumes=[policy_volume(tmp_path / "link" / "d")]))
    seat_policy.admit(ContainerConfig("lab", volumes=[policy_volume(real / "d")]))
    # What was opened is what is bound: a swap of the path afterwards changes nothing.
    fd = policy.open_volume_source(str(real / "d"), seat_policy.volume_resolve())
    try:
        inode = os.fstat(fd).st_ino
        os.rename(real / "d", real / "moved")
        (real / "d").symlink_to("/etc")
        assert os.fstat(fd).st_ino == inode == os.stat(real / "moved").st_ino
    finally:
        os.close(fd)


def policy_volume(path):
    from engine.spec import Volume
    return Volume(str(path), "/x")


def test_peer_decisions():
    seats = {1234: policy.SeatPolicy(seat="a", uid=1234)}
    assert policy.for_peer(0, own_uid=0, seats=seats) is policy.OWNER
    assert policy.for_peer(1000, own_uid=1000, seats=seats) is policy.OWNER
    assert isinstance(policy.for_peer(1234, own_uid=0, seats=seats), policy.SeatPolicy)
    assert policy.for_peer(4321, own_uid=0, seats=seats) is None
    assert policy.seat_uids_from_env({policy.SEAT_UIDS_ENV: "12, 34,x"}) == {12, 34}


def test_a_seat_cannot_name_the_owners_containers(seat):
    """A seat sees only its own containers: the owner's (here one with the
    host's PID namespace, and one within a seat's policy) are "No such
    container" to every verb that names one, and absent from its ps."""
    cl("run", "-d", "--name", "owners", "--pid", "host", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "owners2", "-m", "64m", "lab", "sleep", "300", check=True)
    try:
        for name in ("owners", "owners2"):
            for verb in (["exec", name, "cat", "/proc/1/cmdline"], ["inspect", name], ["stop", name],
                         ["kill", name], ["rm", name], ["logs", name]):
                proc = seat_cl(seat, *verb)
                assert proc.returncode != 0 and f"No such container: {name}" in proc.stderr, (verb, proc.stderr)
                assert proc.stdout.strip() in ("", "[]"), proc.stdout
            assert seat_cl(seat, "rm", "-f", name).returncode == 0      # docker's rm -f of no such name: silent
        assert "owners" not in seat_cl(seat, "ps", "-a").stdout
        running = [line.split()[-1] for line in cl("ps").stdout.splitlines()[1:]]
        assert sorted(running) == ["owners", "owners2"], running
    finally:
        cl("rm", "-f", "owners", "owners2")


@pytest.mark.parametrize("args, words", [
    (["gc"], "a classroom seat may not run gc"),
    (["container", "prune", "-f"], "a classroom seat may not remove every stopped container"),
    (["rmi", "lab"], "a classroom seat may not remove images"),
    (["image", "prune", "-a", "-f"], "a classroom seat may not remove images"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_seat_may_not_remove_what_the_whole_room_shares(seat, args, words):
    """Until seats own their containers and images, what removes the room's
    (another seat's stopped containers, the images every seat runs) or
    sweeps the engine's own state is refused for a seat, as shutdown is."""
    cl("run", "--name", "someone-elses", "lab", "true", check=True)          # stopped, kept
    try:
        proc = seat_cl(seat, *args)
        err = proc.stderr.strip()
        assert proc.returncode in (1, 125) and "\n" not in err and words in err, (proc.returncode, err)  # rmi: 1
        assert "Traceback" not in err and proc.stdout == "", proc.stdout
        assert cl("inspect", "someone-elses").returncode == 0
        assert "lab" in cl("images").stdout
    finally:
        cl("rm", "-f", "someone-elses")
