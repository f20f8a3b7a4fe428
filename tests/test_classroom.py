"""The classroom, for real: ``container-lab serve`` on 127.0.0.1 with ephemeral
ports, in front of this session's engine.

- SSH: an asyncssh client logs in with NAME and the room code, gets a pty,
  and reads the course's first screen (rendered with pyte), drawn by a
  process that runs as the seat's uid; a window change reaches the pty.
  A wrong code is refused; after 5 from one address, even the right code is.
- Seats: two seats both run ``web`` (each through its own connection, a
  process running as the seat's uid); neither sees, inspects, stops or
  removes the other's; the owner names them SEAT/web. A seat's container
  is in a private user namespace (root inside is uid 100000+ outside), on
  the seat's network, in the seat's cgroup with the seat's budget. Host
  mounts and host namespaces are refused in one line.
- Browser: the join page refuses a wrong code (403, no cookie) and on the
  right one sets an HttpOnly, SameSite=Strict cookie; /app wants it.
- The instructor's side (``container-lab class``): test_classroom_class.py.
- SIGTERM ends the class: every seat container, seat cgroup and seat
  network is gone, the seats are refused from then on, progress stays.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from classroom_support import CODE, SYSTEM_PYTHON, Serve, app_pids, join, seat_cl, ssh_screen

from engine import policy
from tui.classroom.room import SEAT_UID_BASE

from conftest import CGROUP_PARENT, REPO, ROOT, cl, needs_root

pytestmark = needs_root
asyncssh = pytest.importorskip("asyncssh")
pyte = pytest.importorskip("pyte")


@pytest.fixture(scope="module")
def serve(lab_image):
    s = Serve()
    yield s
    s.stop()
    os.chmod(ROOT, 0o700)


# -- SSH -----------------------------------------------------------------------------------

def test_ssh_lands_in_the_course_as_the_seats_own_user(serve):
    screen, facts = asyncio.run(ssh_screen(serve.ssh_port, "alice", CODE, want="Start the course",
                                           resize=(120, 40), state=serve.state))
    assert "container-lab — welcome" in screen and "Start the course" in screen, screen
    # Drawn by a process of the seat's uid, not root's; the window change reached its pty.
    assert facts["app_pids"], "no app process ran as the seat's uid"
    assert (120, 40) in facts["winsizes"], facts["winsizes"]
    # Its progress is the seat's, in the seat's own directory (mode 0700, its uid).
    seat_dir = serve.state / "seats" / "alice"
    st = os.stat(seat_dir)
    assert (st.st_uid, st.st_mode & 0o777) == (SEAT_UID_BASE + 0, 0o700)
    key = serve.state / "ssh_host_key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    # The same name again: the same seat (same uid), the same host key.
    screen2, facts2 = asyncio.run(ssh_screen(serve.ssh_port, "alice", CODE, want="Start the course",
                                             state=serve.state))
    assert "Start the course" in screen2 and facts2["host_key"] == facts["host_key"]
    assert json.loads((serve.state / "room.json").read_text())["seats"]["alice"] == 0


def test_the_openssh_client_lands_in_the_course(serve):
    """Debian's own ssh (sshpass gives it the code), in a pty: the course's first screen."""
    import pty
    import shutil

    if not shutil.which("sshpass") or not shutil.which("ssh"):
        pytest.skip("needs sshpass and openssh-client (.ci/run installs them)")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update({"TERM": "xterm-256color", "SSHPASS": CODE})
        os.execvp("sshpass", ["sshpass", "-e", "ssh", "-tt", "-p", str(serve.ssh_port), "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                              "-o", "PubkeyAuthentication=no", "alice@127.0.0.1"])
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    screen = pyte.Screen(100, 30)
    stream = pyte.ByteStream(screen)
    deadline = time.monotonic() + 30
    try:
        while "Start the course" not in "\n".join(screen.display) and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    stream.feed(os.read(fd, 65536))
                except OSError:
                    break
        text = "\n".join(screen.display)
        assert "container-lab — welcome" in text and "Start the course" in text, text
        os.write(fd, b"\x11")                      # Ctrl+Q: the app ends, and the session with it
        end = time.monotonic() + 15
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            try:
                os.read(fd, 65536)
            except OSError:
                pass
            time.sleep(0.1)
        assert done == pid, "ssh did not end with the app"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_a_wrong_code_is_refused_and_repeated_failures_lock_the_address_out(serve):
    async def attempt(code):
        try:
            async with asyncssh.connect("127.0.0.1", serve.ssh_port, username="mallory", password=code,
                                        known_hosts=None, local_addr=("127.0.0.2", 0), client_keys=None,
                                        agent_path=None):
                return "in"
        except asyncssh.PermissionDenied:
            return "refused"

    async def run():
        results = [await attempt(f"guess-{i}") for i in range(5)]
        t0 = time.monotonic()
        results.append(await attempt(CODE))          # the right code, from a locked-out address
        return results, time.monotonic() - t0

    results, last = asyncio.run(run())
    assert results == ["refused"] * 6, results
    assert last < 1.0                                 # refused at once: not even compared
    log = (serve.state / "classroom.log").read_text()
    assert log.count("ssh 127.0.0.2 'mallory': wrong code") == 5
    assert "ssh 127.0.0.2 'mallory': refused, too many wrong codes" in log
    room = serve.state / "room.json"
    assert not room.exists() or "mallory" not in json.loads(room.read_text())["seats"]


# -- seats, through the engine --------------------------------------------------------------

def test_two_seats_each_have_web_and_cannot_touch_each_others(serve):
    alice, bob = join(serve, "alice"), join(serve, "bob")
    try:
        ids = {}
        for name, uid in (("alice", alice), ("bob", bob)):
            proc = seat_cl(uid, "run", "-d", "--name", "web", "lab", "sleep", "100")    # as a lesson runs it
            assert proc.returncode == 0, proc.stderr
            ids[name] = proc.stdout.strip()
        assert ids["alice"] != ids["bob"]
        # Each sees its own web only.
        for name, uid in (("alice", alice), ("bob", bob)):
            ps = seat_cl(uid, "ps", "-a").stdout
            assert ids[name][:12] in ps and ids["bob" if name == "alice" else "alice"][:12] not in ps, ps
        # The event log: each seat reads of its own containers only.
        events = seat_cl(alice, "events", "--since", "0")
        assert events.returncode == 0 and ids["alice"][:12] in events.stdout, events
        assert ids["bob"][:12] not in events.stdout and "bob" not in events.stdout, events.stdout
        # The lab panel's snapshot, as the seat: what it cannot read itself (namespaces of
        # processes of other uids, cgroup usage) comes from the supervisor.
        snap = subprocess.run(
            ["setpriv", f"--reuid={alice}", f"--regid={alice}", "--clear-groups", SYSTEM_PYTHON, "-c",
             "import json; from engine.client import Client; "
             "print(json.dumps(Client(autostart=False).snapshot('web', network=False)))"],
            env={"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": str(REPO),
                 "CONTAINER_LAB_STATE_DIR": str(ROOT / "run")}, cwd="/", capture_output=True, text=True, timeout=60)
        assert snap.returncode == 0, snap.stderr
        snap = json.loads(snap.stdout)
        assert [p["cmd"] for p in snap["processes"]] == [["sleep", "100"]]
        assert snap["namespaces"]["user"]["shared_with_host"] is False and "pid" in snap["namespaces"]
        assert snap["resources"]["memory_limit"] == 256 << 20 and snap["resources"]["pids_limit"] == 300, snap["resources"]
        # alice cannot look at, exec into, stop, kill or remove bob's (by id or by name).


        for verb in (["inspect", ids["bob"]], ["exec", ids["bob"], "true"], ["stop", ids["bob"]],
                     ["kill", ids["bob"]], ["rm", ids["bob"]], ["logs", ids["bob"]], ["inspect", "bob/web"]):
            proc = seat_cl(alice, *verb)
            assert proc.returncode != 0 and "No such container" in proc.stderr, (verb, proc.stderr)
        assert seat_cl(alice, "rm", "-f", ids["bob"]).returncode == 0     # docker's rm -f: silent, nothing done
        records = {n: json.loads(cl("inspect", f"{n}/web", check=True).stdout)[0] for n in ("alice", "bob")}
        assert all(r["status"] == "running" for r in records.values())
        rec = records["alice"]
        # Its own user namespace: root inside is an unprivileged uid outside, from a range
        # of the seat's own (bob's root is another uid).
        host_uids = {}
        for n, r in records.items():
            with open(f"/proc/{r['pid']}/status") as f:
                host_uids[n] = int(next(line for line in f if line.startswith("Uid:")).split()[1])
        base = policy.SEAT_RANGE_BASE
        assert host_uids["alice"] == base + (alice % policy.SEAT_RANGE_SLOTS) * 65536, host_uids
        assert host_uids["bob"] == base + (bob % policy.SEAT_RANGE_SLOTS) * 65536, host_uids
        assert rec["config"]["userns_mode"] == "private"
        # Its network, and its cgroup under the seat's, with the seat's budget.
        assert rec["config"]["network"] == "seat-alice"
        assert "seat-alice" in cl("network", "ls").stdout
        seat_cg = f"/sys/fs/cgroup/memory/{CGROUP_PARENT}/seat-alice"
        if os.path.isdir("/sys/fs/cgroup/memory"):
            assert int(open(f"{seat_cg}/memory.limit_in_bytes").read()) == 256 << 20
            assert os.path.isdir(f"{seat_cg}/{ids['alice']}")
        else:                                                        # cgroup v2
            seat_cg = f"/sys/fs/cgroup/{CGROUP_PARENT}/seat-alice"
            assert int(open(f"{seat_cg}/memory.max").read()) == 256 << 20
        # Refused for a seat, one line each.
        for flags, words in ((["-v", "/:/host"], "-v /: host paths are not allowed for a classroom seat"),
                             (["--pid", "host"], "--pid host is not allowed for a classroom seat"),
                             (["--network", "bridge-of-bob"], "is not allowed for a classroom seat"),
                             (["-m", "2g"], "is more than a classroom seat's budget")):
            proc = seat_cl(alice, "run", "--rm", *flags, "lab", "true")
            err = proc.stderr.strip()
            assert proc.returncode == 125 and "\n" not in err and words in err, (flags, err)
        # The seat's container count: 3 at most (web is one).
        made = [seat_cl(alice, "create", "--name", f"c{i}", "-m", "16m", "lab", "true") for i in range(3)]
        assert [p.returncode for p in made] == [0, 0, 125], [p.stderr for p in made]
        assert "at most 3 containers" in made[2].stderr
        # The owner's verbs reach them by SEAT/NAME; a seat may not add seats.
        assert seat_cl(alice, "ps").returncode == 0
    finally:
        for n in ("alice", "bob"):
            for c in ("web", "c0", "c1", "c2"):
                cl("rm", "-f", f"{n}/{c}")


# -- the browser door -------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def _post(port: int, fields: dict) -> tuple[int, dict, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    data = urllib.parse.urlencode(fields).encode()
    try:
        resp = opener.open(urllib.request.Request(f"http://127.0.0.1:{port}/join", data=data), timeout=30)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
    return resp.status, dict(resp.headers), resp.read().decode()


def test_the_join_page_refuses_a_wrong_code_and_sets_a_strict_cookie_on_the_right_one(serve):
    page = urllib.request.urlopen(f"http://127.0.0.1:{serve.web_port}/", timeout=30).read().decode()
    assert 'action="/join"' in page and 'name="code"' in page and "Room code" in page and "房间码" in page
    status, headers, body = _post(serve.web_port, {"name": "carol", "code": "not-it"})
    assert status == 403 and "Set-Cookie" not in headers and "That is not the room code." in body
    status, headers, _ = _post(serve.web_port, {"name": "Carol", "code": CODE})
    assert status == 303 and headers["Location"] == "/app", (status, headers)
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("container_lab_seat=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "carol" in json.loads((serve.state / "room.json").read_text())["seats"]
    # /app needs the cookie; with it, the page that opens the app's websocket.
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(f"http://127.0.0.1:{serve.web_port}/app", timeout=30)
    assert e.value.code == 303
    req = urllib.request.Request(f"http://127.0.0.1:{serve.web_port}/app",
                                 headers={"Cookie": cookie.split(";")[0]})
    app_page = opener.open(req, timeout=30).read().decode()
    assert f"ws://127.0.0.1:{serve.web_port}/ws" in app_page
    # The websocket: without the cookie refused; with it, the course drawn by the seat's own process.
    seat_uid = SEAT_UID_BASE + json.loads((serve.state / "room.json").read_text())["seats"]["carol"]
    got, uids = asyncio.run(_web_app(serve.web_port, cookie.split(";")[0], seat_uid))
    assert b"container-lab" in got and b"welcome" in got, got[:400]
    assert uids, "no app process ran as carol's uid"


async def _web_app(port: int, cookie: str, uid: int) -> tuple[bytes, list[int]]:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await s.ws_connect(f"ws://127.0.0.1:{port}/ws")
        got = b""
        async with s.ws_connect(f"ws://127.0.0.1:{port}/ws?width=100&height=30", headers={"Cookie": cookie}) as ws:
            deadline = time.monotonic() + 30
            while b"welcome" not in got and time.monotonic() < deadline:
                try:
                    msg = await asyncio.wait_for(ws.receive(), 5)
                except asyncio.TimeoutError:  # noqa: UP041
                    continue
                if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                got += msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            uids = app_pids(uid, ROOT / "classroom")
    return got, uids


def test_an_idle_seat_is_released_and_keeps_its_progress(serve):
    """--idle-timeout: a seat with no session that long has its containers removed
    (its network and cgroup too); the same name comes back to the same seat."""
    state = ROOT / "classroom-idle"
    state.mkdir(mode=0o711)
    (state / "room.json").write_text(json.dumps({"seats": {"idler": 700}}))    # a slot no other test's room uses
    other = Serve("--idle-timeout", "3s", state=state)
    try:
        uid = SEAT_UID_BASE + 700
        asyncio.run(ssh_screen(other.ssh_port, "idler", CODE, want="Start the course"))
        proc = seat_cl(uid, "run", "-d", "--name", "web", "lab", "sleep", "100")
        assert proc.returncode == 0, proc.stderr
        (state / "seats" / "idler" / "progress").mkdir(exist_ok=True)
        deadline = time.monotonic() + 20
        while "idler/web" in cl("ps", "-a").stdout and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "idler/web" not in cl("ps", "-a").stdout
        assert "seat-idler" not in cl("network", "ls").stdout
        assert "seat idler: idle, released (1 containers removed)" in (state / "classroom.log").read_text()
        assert (state / "seats" / "idler" / "progress").is_dir()
        # Back with the same name: the same seat, its engine access again.
        asyncio.run(ssh_screen(other.ssh_port, "idler", CODE, want="Start the course"))
        assert seat_cl(uid, "ps").returncode == 0
    finally:
        code, out = other.stop()
        assert code == 0, out


# -- the end of the class -----------------------------------------------------------------------

def test_sigterm_ends_the_class_and_leaves_no_seat_container_cgroup_or_network(serve):
    uid = join(serve, "dave")
    proc = seat_cl(uid, "run", "-d", "--name", "web", "-m", "64m", "lab", "sleep", "100")
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    (serve.state / "seats" / "dave" / "progress").is_dir()
    code, out = serve.stop()
    assert code == 0 and "The class has ended" in out, out
    ps = cl("ps", "-a").stdout
    assert cid[:12] not in ps and "dave/" not in ps, ps
    leftovers = [d for d, _dirs, _files in os.walk("/sys/fs/cgroup") if "/seat-" in d and CGROUP_PARENT in d]
    assert leftovers == [], leftovers
    networks = cl("network", "ls").stdout
    assert not [n for n in ("alice", "bob", "carol", "dave") if f"seat-{n} " in networks], networks
    # The seats are gone from the engine: with no seat left the socket is the owner's
    # alone again (0600), so a seat's uid cannot even connect; its progress stays.
    refused = seat_cl(uid, "ps")
    assert refused.returncode == 125 and "permission denied on" in refused.stderr, refused.stderr
    assert os.stat(ROOT / "run" / "supervisor.sock").st_mode & 0o777 == 0o600
    assert json.loads((ROOT / "run" / "seats.json").read_text()) == {"seats": []}
    assert (serve.state / "seats" / "dave").is_dir()
    assert app_pids(None, serve.state) == []


# -- refusals before anything opens --------------------------------------------------------------

def test_serve_refuses_a_user_who_is_not_root_and_bad_flags_in_one_line():
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-m",
                           "tui.launcher", "serve"], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                                          "LANGUAGE": "en"},
                          cwd="/", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert proc.stderr.count("\n") == 1 and "container-lab serve runs as root" in proc.stderr, proc.stderr
    for flags, words in ((["--ssh", "nonsense"], "--ssh nonsense: expected [HOST:]PORT or off"),
                         (["--web", "host:99999"], "--web host:99999: expected [HOST:]PORT or off"),
                         (["--seats", "0"], "--seats: expected a whole number from 1 up")):
        proc = subprocess.run([sys.executable, "-m", "tui.launcher", "serve", *flags], cwd=REPO, text=True,
                              capture_output=True, timeout=60, env={**os.environ, "LANGUAGE": "en"})
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and words in err[-1] and "Traceback" not in proc.stderr, proc.stderr
    # A state dir that holds something else is not taken over (its mode would become 0711).
    other = ROOT / "not-a-room"
    other.mkdir(mode=0o700, exist_ok=True)
    (other / "keep").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "serve", "--state-dir", str(other)], cwd=REPO,
                          text=True, capture_output=True, timeout=60, env={**os.environ, "LANGUAGE": "en"})
    assert proc.returncode == 1 and "is not a classroom's state dir" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and os.stat(other).st_mode & 0o777 == 0o700



def test_a_seats_app_skips_the_steps_that_need_the_servers_namespaces_or_paths(monkeypatch):
    """The seat's app is told (doctor's host.access) that host namespaces and paths
    are not a seat's: those steps say why instead of failing on the engine's refusal.
    (The refusal itself is the engine's: tests above.)"""
    from engine.doctor import diagnose
    from lessons.lab import Lab
    from tui import course_cache

    course = course_cache.load(None)
    assert next(c for c in diagnose()["checks"] if c["id"] == "host.access")["ok"]
    monkeypatch.setenv("CONTAINER_LAB_SEAT", "alice")
    seat = diagnose()
    check = next(c for c in seat["checks"] if c["id"] == "host.access")
    assert not check["ok"] and "a classroom seat (alice)" in check["detail"]
    lab = Lab(course, course.lesson("namespaces"), lang="en", doctor=lambda: seat)
    uts = next(s for s in course.lesson("namespaces").steps if s.id == "uts")
    assert [c["id"] for c in lab.lacking(uts)] == ["host.access"]
    assert "a view of the server itself (host namespaces or host paths)" in lab.unavailable(uts)
