"""Managing containers the docker way: exec, ps, stop/start/kill, rm, logs,
inspect, events, prune, gc -- and what a crash at any stage leaves (nothing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, ROOT, cgroup_dirs, cl, needs_root, overlay_mounts
from waiting import gone, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


def inspect(ref: str) -> dict:
    return json.loads(cl("inspect", ref, check=True).stdout)[0]


def cursor() -> int:
    from engine.client import Client
    return Client().ping()["events_seq"]


def events_since(seq: int, *filters: str) -> list[dict]:
    args = ["events", "--since", str(seq), "--format", "json"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in cl(*args, check=True).stdout.splitlines()]


@pytest.fixture
def web():
    """A running container named web (a loop printing a line a second)."""
    cl("run", "-d", "--name", "web", "-l", "course=lab", "lab", "sh", "-c",
       "trap 'echo bye; exit 0' TERM; while :; do echo tick; sleep 0.2; done", check=True)
    yield "web"
    cl("rm", "-f", "web")


# -- exec ---------------------------------------------------------------------------

def test_exec_joins_every_namespace_and_the_cgroup(web):
    info = inspect(web)
    proc = cl("exec", web, "sh", "-c", "hostname; ps -eo pid,comm --no-headers; cat /proc/self/cgroup; readlink /proc/self/ns/*")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == info["id"][:12]
    assert lines[1].split() == ["1", "sh"]                       # sees the container's PID 1
    pid1_ns = {os.path.basename(p): os.readlink(f"/proc/{info['pid']}/ns/{p}")
               for p in ("ipc", "uts", "net", "cgroup", "mnt", "pid")}
    for kind, link in pid1_ns.items():
        assert link in lines, (kind, link)
    # Inside its cgroup namespace, the container's cgroup is the root "/".
    assert any(line.endswith(":/") for line in lines if ":memory:" in line or line.startswith("0::"))


def test_exec_exit_codes_env_user_and_workdir(web):
    assert cl("exec", web, "sh", "-c", "exit 4").returncode == 4
    assert cl("exec", web, "no-such-command").returncode == 127
    proc = cl("exec", "-e", "X=1", "-u", "nobody", "-w", "/tmp", web, "sh", "-c", "echo $X $(id -u) $(pwd)")
    assert proc.stdout == "1 65534 /tmp\n", proc.stderr


def test_rm_f_while_an_exec_runs_does_not_hang(web):
    """The namespace's PID 1 can only finish dying once the exec'd process --
    the supervisor's child -- is reaped too: rm -f must reap both."""
    cl("exec", "-d", web, "sleep", "300", check=True)
    assert cl("rm", "-f", web, timeout=30).returncode == 0
    assert cl("inspect", web).returncode == 1


def test_exec_is_refused_for_a_stopped_container():
    cl("run", "--name", "done", "lab", "true", check=True)
    proc = cl("exec", "done", "true")
    assert proc.returncode == 1 and "is not running" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    cl("rm", "done", check=True)


def test_exec_interactive_input(web):
    proc = cl("exec", "-i", web, "sh", "-c", "read line; echo got $line", input="hello\n")
    assert proc.stdout == "got hello\n"


# -- ps ---------------------------------------------------------------------------

def test_ps_filters_and_json(web):
    cl("run", "--name", "quitter", "-l", "course=other", "lab", "sh", "-c", "exit 2")
    try:
        names = lambda *a: {json.loads(x)["name"] for x in cl("ps", *a, "--format", "json").stdout.splitlines()}
        assert names() >= {"web"} and "quitter" not in names()
        assert {"web", "quitter"} <= names("-a")
        assert names("-a", "--filter", "label=course=lab") == {"web"}
        assert names("-a", "--filter", "status=exited", "--filter", "name=quit") == {"quitter"}
        assert cl("ps", "-q", "--filter", "name=web").stdout.strip() == inspect(web)["id"][:12]
        bad = cl("ps", "--filter", "colour=red")
        assert bad.returncode == 125 and "invalid filter" in bad.stderr
    finally:
        cl("rm", "quitter")


# -- stop / start / kill / rm ------------------------------------------------------------

def test_stop_sends_term_then_kill_after_the_timeout():
    cl("run", "-d", "--name", "stubborn", "lab", "sleep", "300", check=True)
    t0 = time.monotonic()
    assert cl("stop", "-t", "1", "stubborn").returncode == 0
    took = time.monotonic() - t0
    assert took > 0.9, took                                 # it gave TERM its second
    assert inspect("stubborn")["exit_code"] == 137         # sleep as PID 1 ignores TERM: KILLed
    assert cl("stop", "stubborn").returncode == 0          # stopping a stopped container is fine
    cl("rm", "stubborn", check=True)


def test_stop_a_container_that_handles_term_is_quick(web):
    # It returns when the container exits, not at the timeout (which would outlast cl's 60 s).
    assert cl("stop", "-t", "600", web).returncode == 0
    info = inspect(web)
    assert info["status"] == "exited" and info["exit_code"] == 0
    assert cl("logs", "--tail", "1", web).stdout == "bye\n"


def test_start_keeps_the_writable_layer():
    cl("run", "--name", "keeper", "lab", "sh", "-c", "echo one >> /notes; cat /notes", check=True)
    proc = cl("start", "-a", "keeper")
    assert proc.returncode == 0 and proc.stdout == "one\none\n"
    assert cl("start", "keeper").returncode == 0            # detached start: output to the log
    assert cl("wait", "keeper").stdout.strip() == "0"
    # Every run's output is logged, attached or not (docker logs does the same).
    assert cl("logs", "keeper").stdout == "one\n" + "one\none\n" + "one\none\none\n"
    cl("rm", "keeper", check=True)


def test_kill_with_a_signal(web):
    assert cl("kill", "-s", "TERM", web).returncode == 0
    assert cl("wait", web).stdout.strip() == "0"             # its trap said bye and exited 0
    proc = cl("kill", web)
    assert proc.returncode == 1 and "is not running" in proc.stderr
    assert cl("kill", "-s", "NOPE", web).returncode == 125


def test_rm_is_idempotent_with_force_and_refuses_a_running_one(web):
    proc = cl("rm", web)
    assert proc.returncode == 1 and "stop the container before removing or force remove" in proc.stderr
    assert cl("rm", "-f", web).returncode == 0
    assert cl("rm", "-f", web).returncode == 0               # gone already: fine with -f
    proc = cl("rm", web)
    assert proc.returncode == 1 and "No such container: web" in proc.stderr


def test_container_prune():
    for i in range(3):
        cl("run", "--name", f"old{i}", "lab", "true", check=True)
    cl("run", "-d", "--name", "alive", "lab", "sleep", "300", check=True)
    try:
        proc = cl("container", "prune", "-f")
        assert proc.returncode == 0
        for i in range(3):
            assert cl("inspect", f"old{i}").returncode == 1
        assert inspect("alive")["status"] == "running"
        assert "Total reclaimed space" in proc.stdout
    finally:
        cl("rm", "-f", "alive")


# -- logs ---------------------------------------------------------------------------

def test_logs_tail_timestamps_streams_and_follow(tmp_path):
    tmp_path.chmod(0o755)
    cl("run", "-d", "--name", "talker", "-v", f"{tmp_path}:/sig", "lab", "sh", "-c",
       "for i in 1 2 3 4 5; do echo out$i; done; echo err >&2; "
       "while [ ! -e /sig/go ]; do sleep 0.05; done; echo late", check=True)
    try:
        wait_until(lambda: "err" in cl("logs", "talker").stderr, timeout=20, interval=0.1,
                   message="talker's line on stderr")
        proc = cl("logs", "--tail", "2", "talker")      # the last 2 lines of both streams
        assert proc.stdout == "out5\n" and proc.stderr == "err\n"
        stamped = cl("logs", "-t", "--tail", "2", "talker").stdout
        assert stamped.endswith(" out5\n") and stamped.startswith("20")
        (tmp_path / "go").touch()
        follow = cl("logs", "-f", "talker", timeout=20)        # returns when the container stops
        assert follow.stdout.endswith("out5\nlate\n")
        bad = cl("logs", "--tail", "many", "talker")
        assert bad.returncode == 125 and "invalid --tail" in bad.stderr
    finally:
        cl("rm", "-f", "talker")


def test_logs_are_capped_so_yes_cannot_fill_the_disk(monkeypatch):
    from engine import logs

    cl("run", "-d", "--name", "yes", "lab", "yes", check=True)
    try:
        cdir = ROOT / "lib" / "containers" / inspect("yes")["id"]
        wait_until((cdir / "container.log.1").exists, timeout=60, interval=0.2, message="a rotated log")
        # A second rotation: the cap holds after the rotated file was replaced too.
        first = (cdir / "container.log.1").stat().st_ino
        wait_until(lambda: (cdir / "container.log.1").stat().st_ino != first, timeout=60, interval=0.2,
                   message="the rotated log to be replaced")
        sizes = [p.stat().st_size for p in cdir.glob("container.log*")]
        assert 1 <= len(sizes) <= 2 and max(sizes) <= logs.ROTATE_AT + 65536 * 2
    finally:
        cl("rm", "-f", "yes")


# -- inspect ---------------------------------------------------------------------------

def test_inspect_has_state_namespaces_cgroup_layers_and_times(web):
    info = inspect(web)
    assert info["status"] == "running" and info["pid"] > 1 and info["exit_code"] is None
    assert info["config"]["labels"] == {"course": "lab"} and info["oom_killed"] is False
    for kind in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        ns = info["namespaces"][kind]
        assert ns["container"] == os.stat(f"/proc/{info['pid']}/ns/{kind}").st_ino
        assert ns["shared"] is False
    assert info["namespaces"]["user"]["shared"] is True       # no user namespace as root
    assert all(os.path.isdir(p) for p in info["cgroup"].values()) and info["cgroup"]
    assert info["rootfs"]["upper"].endswith("/upper") and info["rootfs"]["layers"]
    assert info["created"] <= info["started"] and not info["finished"]


def test_inspect_transcript(web):
    text = cl("inspect", "--transcript", web, check=True).stdout
    for line in ("unshare --pid --fork", "unshare --mount --uts --ipc", "nsenter --net=/run/netns/NS",
                 "ip link add vcl", "unshare --cgroup",
                 "mount --make-rprivate /", "mount -t overlay", "mount -t proc", "pivot_root . .",
                 "exec sh -c"):
        assert line in text, line
    data = json.loads(cl("inspect", "--transcript", "--format", "json", web, check=True).stdout)[0]
    assert data["version"] == 1 and data["stages"][-1]["id"] == "exec"


# -- events -----------------------------------------------------------------------------

def test_events_cover_a_lifecycle_with_a_cursor():
    start = cursor()
    cl("run", "--name", "ev", "-l", "step=1", "lab", "sh", "-c", "exit 3")
    cl("rm", "ev", check=True)
    kinds = [(e["kind"], e.get("exit_code")) for e in events_since(start, "name=ev")]
    assert kinds == [("created", None), ("started", None), ("exited", 3), ("removed", None)], kinds
    evs = events_since(start, "name=ev")
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs) and evs[0]["seq"] > start
    assert evs[0]["image"] == {"requested": "lab", "resolved": "lab:latest"}
    assert evs[0]["argv"] == ["sh", "-c", "exit 3"] and evs[0]["labels"] == {"step": "1"}
    assert events_since(evs[-1]["seq"], "name=ev") == []    # nothing after the cursor


def test_exec_events_say_tty_or_not(web):
    start = cursor()
    cl("exec", web, "true", check=True)
    evs = events_since(start, "kind=exec", "kind=exec-exited")
    assert [(e["kind"], e["tty"]) for e in evs] == [("exec", False), ("exec-exited", False)]
    assert evs[1]["exit_code"] == 0 and evs[0]["exec_id"] == evs[1]["exec_id"]


def test_limit_hits_are_recorded_even_with_rm():
    start = cursor()
    cl("run", "--rm", "--name", "hog", "-m", "32m", "lab", "tail", "/dev/zero", timeout=120)
    cl("run", "--rm", "--name", "forker", "--pids-limit", "10", "lab", "sh", "-c",
       "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done")
    kinds = [(e["name"], e["kind"]) for e in events_since(start)]
    assert ("hog", "oom") in kinds and ("forker", "pids-limit-hit") in kinds, kinds
    assert kinds.index(("hog", "oom")) < kinds.index(("hog", "removed"))
    exited = next(e for e in events_since(start, "name=hog", "kind=exited"))
    assert exited["exit_code"] == 137 and exited["oom_killed"] is True


def test_events_since_time_until_and_follow():
    start = cursor()
    t0 = time.time()
    cl("run", "--rm", "--name", "timed", "lab", "true", check=True)
    evs = [json.loads(x) for x in cl("events", "--since", str(t0 - 1), "--until", str(time.time() + 1),
                                     "--format", "json", "--filter", "name=timed").stdout.splitlines()]
    assert {e["kind"] for e in evs} == {"created", "started", "exited", "removed"}
    follower = subprocess.Popen([sys.executable, "-m", "engine.cli", "events", "--follow", "--since", str(start),
                                 "--filter", "name=later", "--format", "json"],
                                stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        cl("run", "--rm", "--name", "later", "lab", "true", check=True)
        first = json.loads(follower.stdout.readline())
        assert first["kind"] == "created" and first["name"] == "later"
    finally:
        follower.kill()
        follower.wait()
    assert cl("events", "--since", "yesterday-ish").returncode == 125


# -- many at once ----------------------------------------------------------------------------

def test_thirty_detached_runs_in_parallel_get_unique_names():
    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(pool.map(lambda i: cl("run", "-d", "-l", "batch=30", "lab", "sleep", "300"), range(30)))
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs if p.returncode]
    items = [json.loads(x) for x in cl("ps", "--filter", "label=batch=30", "--format", "json").stdout.splitlines()]
    assert len(items) == 30 and len({c["name"] for c in items}) == 30
    for c in items:
        cl("rm", "-f", c["id"], check=True)


def _connections(pid: int) -> int:
    """How many client connections process ``pid`` holds: sockets accepted on
    the supervisor's socket (they carry its path in /proc/net/unix)."""
    path = str(ROOT / "run" / "supervisor.sock")
    with open("/proc/net/unix") as f:
        accepted = {f"socket:[{x[6]}]" for x in (line.split() for line in f) if x[7:] == [path] and x[5] == "03"}
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return sum(link in accepted for link in links)


def test_fifty_execs_racing_a_stop_neither_hang_nor_leak_fds():
    from engine.client import Client

    sup = Client().ping()["pid"]
    wait_until(lambda: _connections(sup) == 0, message="the supervisor to close the ping's connection")
    fds_before = len(os.listdir(f"/proc/{sup}/fd"))
    cl("run", "-d", "--name", "racer", "lab", "sleep", "300", check=True)
    procs = Path(next(iter(inspect("racer")["cgroup"].values()))) / "cgroup.procs"
    with ThreadPoolExecutor(max_workers=10) as pool:
        execs = [pool.submit(cl, "exec", "racer", "sleep", "0.2", timeout=60) for _ in range(50)]
        wait_until(lambda: len(procs.read_text().split()) > 1, message="an exec running in racer")
        stopper = pool.submit(cl, "stop", "-t", "1", "racer", timeout=60)
        codes = [f.result().returncode for f in execs]
        assert stopper.result().returncode == 0
    # Each exec either ran (0), was killed with the container (137), or was refused (1).
    assert set(codes) <= {0, 1, 137}, codes
    cl("rm", "racer", check=True)
    wait_until(lambda: len(os.listdir(f"/proc/{sup}/fd")) <= fds_before,
               message=f"the supervisor back to at most {fds_before} fds")


# -- crashes ------------------------------------------------------------------------------------

def _processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.split(None, 1)[1:] == [marker]]


@pytest.mark.parametrize("point", ["after-cgroup", "after-mounts", "before-exec"])
def test_a_supervisor_killed_during_a_start_leaves_nothing_after_the_next_command(point):
    from engine.client import Client

    Client().shutdown()
    marker = {"after-cgroup": "301", "after-mounts": "302", "before-exec": "303"}[point]
    # Output to a file, not a pipe: a container that got as far as exec holds it open.
    with open(ROOT / f"crash-{point}.err", "w+") as err:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--name", f"crash-{point}", "lab",
                               "sleep", marker], stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, timeout=60,
                              env={**os.environ, "CONTAINER_LAB_CRASH_AT": point})
        err.seek(0)
        message = err.read()
    assert proc.returncode == 125 and "supervisor" in message, message
    assert len(message.strip().splitlines()) == 1
    crashed = int((ROOT / "run" / "supervisor.pid").read_text())
    wait_until(lambda: gone(crashed), message=f"the crashed supervisor {crashed} to be gone")
    # The next command starts a clean supervisor, which reconciles what it finds.
    listing = cl("ps", "-a", "--format", "json")
    assert listing.returncode == 0
    assert _processes_with(f"sleep {marker}") == []
    assert cgroup_dirs() == [] and overlay_mounts() == []
    cl("rm", "-f", f"crash-{point}")
    assert cl("gc").returncode == 0
    assert [d for d in os.listdir(ROOT / "lib" / "containers")
            if not (ROOT / "lib" / "containers" / d / "container.json").exists()] == []


def test_an_internal_error_during_a_start_leaves_nothing_and_the_supervisor_lives_on():
    from engine.client import Client

    Client().shutdown()
    proc = cl("run", "--name", "buggy", "lab", "sleep", "305", env={"CONTAINER_LAB_CRASH_AT": "raise-after-fork"})
    assert proc.returncode == 125 and "internal error while starting" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _processes_with("sleep 305") == [] and cgroup_dirs() == []
    info = inspect("buggy")            # the same supervisor answers: it lived on
    assert info["status"] == "exited" and info["exit_code"] == 125
    cl("rm", "buggy", check=True)
    Client().shutdown()                # the next test gets a supervisor without the injection


def test_a_cli_killed_mid_run_leaves_a_container_that_rm_f_removes():
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--name", "abandoned", "lab", "sleep", "304"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _processes_with("sleep 304"), message="the container's sleep 304")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert inspect("abandoned")["status"] == "running"      # as with docker: the container goes on
    assert cl("rm", "-f", "abandoned").returncode == 0
    assert _processes_with("sleep 304") == []


def test_gc_sweeps_leftover_cgroups_and_dirs():
    from engine.cgroups import Limits, detect

    from conftest import CGROUP_PARENT

    driver = detect()
    stray = driver.create("e" * 64, Limits(pids=10), parent=CGROUP_PARENT)
    debris = ROOT / "lib" / "containers" / ("f" * 64)
    debris.mkdir()
    proc = cl("gc", check=True)
    assert "e" * 64 in proc.stdout and str(debris) in proc.stdout
    assert not stray.exists() and not debris.exists()
    assert "0 leftovers removed" in cl("gc", check=True).stdout


def test_gc_leaves_the_cgroup_of_a_container_being_started():
    """gc removes the cgroups of containers that are not running -- a
    container half-way through its start (here paused between stages, as
    ``run --explain`` does) is not one of them: its cgroup and its first
    process stay, and its start goes on."""
    from engine.client import Client
    from engine.spec import ContainerConfig

    start = Client().run_stepwise(ContainerConfig("lab", cmd=["echo", "built"]))
    try:
        assert inspect(start.id)["status"] == "starting"
        mine = [d for d in cgroup_dirs() if d.endswith(start.id)]
        assert mine, "the half-built container has no cgroup"
        assert cl("gc").returncode == 0
        assert [d for d in cgroup_dirs() if d.endswith(start.id)] == mine
        while (report := start.next_stage()) is not None:
            if report["paused"]:
                start.proceed()
        assert start.wait()["exit_code"] == 0
        assert cl("logs", start.id).stdout == "built\n"
    finally:
        start.close()
        cl("rm", "-f", start.id)


def test_an_exec_that_meets_a_pid_1_just_gone_is_told_it_is_not_running():
    """An exec request read before the loop has seen its container's PID 1
    exit (both ready at once: the supervisor is stopped meanwhile, the
    request sent first) is answered "not running", not as an engine bug."""
    import socket

    from engine.client import Client

    sup = Client().ping()["pid"]
    cl("run", "-d", "--name", "just-gone", "lab", "sleep", "300", check=True)
    pid = inspect("just-gone")["pid"]
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(str(ROOT / "run" / "supervisor.sock"))
            f = s.makefile("rb")
            s.sendall(b'{"op": "ping"}\n')
            assert json.loads(f.readline())["ok"]          # accepted and watched
            os.kill(sup, signal.SIGSTOP)
            try:
                s.sendall(json.dumps({"op": "exec", "id": "just-gone",
                                      "exec": {"cmd": ["true"], "detach": True}}).encode() + b"\n")
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: gone(pid) or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                           message="the container's PID 1 to be dead")
            finally:
                os.kill(sup, signal.SIGCONT)
            reply = json.loads(f.readline())
        assert not reply["ok"] and reply["kind"] == "NotRunning", reply
        assert "is not running" in reply["error"], reply
    finally:
        cl("rm", "-f", "just-gone")


def test_starts_and_execs_that_fail_at_each_point_leave_the_supervisor_no_fd():
    """Failed starts (the command, the user, the working directory, a volume,
    a namespace to join, attached or not) and failed execs: the supervisor's
    fds are back where they were."""
    from engine.client import Client

    sup = Client().ping()["pid"]
    cl("run", "-d", "--name", "fd-keeper", "--init", "lab", "sleep", "300", check=True)   # tini's copy made
    try:
        wait_until(lambda: _connections(sup) == 0, message="the supervisor to close earlier connections")
        before = len(os.listdir(f"/proc/{sup}/fd"))
        for args in (["lab", "/nonexistent"], ["-u", "nobody-here", "lab", "true"], ["-w", "/etc/passwd", "lab", "true"],
                     ["-v", "/etc/hostname:/etc/passwd/x", "lab", "true"], ["--pid", "container:nobody", "lab", "true"],
                     ["--init", "lab", "/nonexistent"]):
            for mode in ([], ["-d"], ["-i"]):
                proc = cl("run", "--rm", *mode, *args, input="")
                assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        for args in (["/nonexistent"], ["-u", "nobody-here", "true"], ["-w", "/etc/passwd", "true"]):
            for mode in ([], ["-d"], ["-i"]):
                proc = cl("exec", *mode, *args[:-1], "fd-keeper", args[-1], input="")
                assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        wait_until(lambda: _connections(sup) == 0 and len(os.listdir(f"/proc/{sup}/fd")) <= before,
                   message=f"the supervisor back to at most {before} fds")
    finally:
        cl("rm", "-f", "fd-keeper")
