"""`container-lab run`: real containers, real isolation (needs root, as CI is)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, ROOT, cgroup_dirs, cl, needs_root, overlay_mounts, settle, stop_engine
from waiting import child_commands, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image", "no_leftovers")]


def containers_on_disk() -> list[str]:
    settle()
    d = ROOT / "lib" / "containers"
    return sorted(os.listdir(d)) if d.exists() else []


@pytest.fixture
def no_leftovers():
    """Each test removes every container, cgroup and mount it made."""
    before = containers_on_disk()
    yield
    left = sorted(set(containers_on_disk()) - set(before))
    names = [json.loads((ROOT / "lib" / "containers" / c / "container.json").read_text())["name"]
             for c in left if (ROOT / "lib" / "containers" / c / "container.json").exists()]
    assert left == [], f"containers left behind: {names or left}"
    assert cgroup_dirs() == []
    assert overlay_mounts() == []


# -- the course's first three commands ----------------------------------------

def test_hello_world():
    proc = cl("run", "--rm", "lab", "echo", "Hello", "World")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello World\n"


def test_pid_1_and_only_the_containers_processes():
    proc = cl("run", "--rm", "lab", "ps", "-eo", "pid,user,comm", "--no-headers")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.strip().splitlines()]
    assert rows == [["1", "root", "ps"]], proc.stdout


def test_pid_1_sees_only_its_own_children():
    # ps only once the background child has become sleep (until then it is a second sh)
    proc = cl("run", "--rm", "lab", "sh", "-c",
              "sleep 5 & until read -r c < /proc/$!/comm && [ \"$c\" = sleep ]; do :; done; "
              "ps -eo pid,comm --no-headers")
    pids = {int(line.split()[0]): line.split()[1] for line in proc.stdout.strip().splitlines()}
    assert pids[1] == "sh" and set(pids.values()) == {"sh", "sleep", "ps"}, proc.stdout
    assert max(pids) < 10


def test_host_pid_of_the_container_is_a_real_host_process():
    cid = cl("run", "-d", "--rm", "lab", "sleep", "30", check=True).stdout.strip()
    try:
        info = json.loads(cl("inspect", cid, check=True).stdout)[0]
        host_pid = info["pid"]
        assert host_pid > 1
        # The same process, seen from the host: a different PID, the same program,
        # and inside its own PID namespace it is PID 1.
        assert Path(f"/proc/{host_pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        nspid = [ln for ln in Path(f"/proc/{host_pid}/status").read_text().splitlines() if ln.startswith("NSpid:")]
        assert nspid[0].split()[1:] == [str(host_pid), "1"]
        assert os.readlink(f"/proc/{host_pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    finally:
        cl("rm", "-f", cid)


# -- isolation ------------------------------------------------------------------

def test_hostname_is_the_short_id_and_the_hosts_is_unchanged():
    before = socket.gethostname()
    cid_out = cl("run", "lab", "sh", "-c", "hostname; cat /etc/hostname; hostname changed-inside; hostname")
    lines = cid_out.stdout.split()
    assert re.fullmatch(r"[0-9a-f]{12}", lines[0]), cid_out.stdout
    # Without CAP_SYS_ADMIN (Docker's default set) even root inside cannot rename it.
    assert lines[1] == lines[0] and lines[2] == lines[0]
    assert "must be root" in cid_out.stderr or "not permitted" in cid_out.stderr
    assert socket.gethostname() == before
    info = json.loads(cl("inspect", lines[0], check=True).stdout)[0]
    assert info["id"].startswith(lines[0])
    cl("rm", lines[0], check=True)


def test_hostname_flag():
    assert cl("run", "--rm", "--hostname", "web", "lab", "hostname").stdout == "web\n"


def test_only_loopback_in_the_network_namespace_with_network_none():
    proc = cl("run", "--rm", "--network", "none", "lab", "ip", "-o", "link")
    assert proc.returncode == 0, proc.stderr
    names = [line.split(":")[1].strip() for line in proc.stdout.strip().splitlines()]
    assert names == ["lo"]
    assert "UP" in proc.stdout.split("lo:")[1]


def test_ipc_objects_are_isolated():
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, check=True).stdout
    qid = made.strip().split()[-1]
    try:
        host_before = subprocess.run(["ipcs", "-q"], capture_output=True, text=True).stdout
        # Inside: none of the host's queues; then one of its own.
        inside = cl("run", "--rm", "lab", "sh", "-c",
                    "ipcs -q | grep -c 0x; ipcmk -Q >/dev/null; ipcs -q | grep -c 0x")
        assert inside.stdout.split() == ["0", "1"], inside.stderr
        # Outside: the container's queue never appeared (and went with its namespace).
        host_after = subprocess.run(["ipcs", "-q"], capture_output=True, text=True).stdout
        assert host_after == host_before and host_before.count("0x") >= 1
    finally:
        subprocess.run(["ipcrm", "-q", qid])


def test_mount_inside_is_invisible_outside():
    # The container may not mount itself (no CAP_SYS_ADMIN; seccomp refuses mount):
    # root on the host mounts in its mount namespace instead.
    cid = cl("run", "-d", "lab", "sleep", "30").stdout.strip()
    try:
        pid = json.loads(cl("inspect", cid, check=True).stdout)[0]["pid"]
        subprocess.run(["nsenter", "-t", str(pid), "-m", "mount", "-t", "tmpfs", "lab-secret", "/mnt"], check=True)
        assert "lab-secret" in Path(f"/proc/{pid}/mountinfo").read_text()
        with open("/proc/self/mountinfo") as f:
            assert "lab-secret" not in f.read()
        assert overlay_mounts() == []
    finally:
        cl("rm", "-f", cid)


def test_mount_inside_is_invisible_even_with_shared_propagation(tmp_path):
    """On a systemd host / is shared. In a fresh mount namespace made shared,
    start a supervisor and a container, mount in it; neither that namespace
    nor ours may see the container's mounts."""
    script = textwrap.dedent(f"""
        set -e
        mount --make-rshared /
        export CONTAINER_LAB_ROOT={tmp_path}/root
        cd {REPO}
        cid=$({sys.executable} -m engine.cli run -d lab sleep 30)
        info=$({sys.executable} -m engine.cli inspect $cid)
        pid=$(echo "$info" | {sys.executable} -c 'import json, sys; print(json.load(sys.stdin)[0]["pid"])')
        nsenter -t $pid -m mount -t tmpfs shared-secret /mnt
        echo "inside: $(grep -c shared-secret /proc/$pid/mountinfo)"
        echo "propagation: $(findmnt -no PROPAGATION /)"
        echo "seen: $(grep -c -e shared-secret -e {tmp_path}/root /proc/self/mountinfo || true)"
        {sys.executable} -m engine.cli rm -f $cid >/dev/null
        {sys.executable} -c 'from engine.client import Client; Client(autostart=False).shutdown()'
    """)
    before = Path("/proc/self/mountinfo").read_text()
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    finally:
        stop_engine(tmp_path / "root")          # the engine of its own made its default network
    assert proc.returncode == 0, proc.stderr
    assert "propagation: shared" in proc.stdout and "inside: 1" in proc.stdout, proc.stdout
    assert "seen: 0" in proc.stdout, proc.stdout
    after = Path("/proc/self/mountinfo").read_text()
    assert "shared-secret" not in after
    assert [ln for ln in after.splitlines() if str(tmp_path) in ln] == []
    new = set(after.splitlines()) - set(before.splitlines())
    assert [ln for ln in new if " - overlay " in ln or " - tmpfs shared-secret" in ln] == []


def test_rm_etc_passwd_leaves_the_image_untouched():
    proc = cl("run", "--name", "vandal", "lab", "sh", "-c", "rm /etc/passwd && ls /etc/passwd")
    assert proc.returncode != 0 and "No such file" in proc.stderr
    info = json.loads(cl("inspect", "vandal", check=True).stdout)[0]
    upper = ROOT / "lib" / "containers" / info["id"] / "upper"
    # The deletion is a whiteout in this container's writable layer only ...
    wh = os.stat(upper / "etc" / "passwd")
    assert os.major(wh.st_rdev) == 0 and os.minor(wh.st_rdev) == 0
    for layer in info["image"]["layers"]:
        assert (Path(layer) / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    # ... so another container still sees it.
    assert cl("run", "--rm", "lab", "head", "-1", "/etc/passwd").stdout.startswith("root:x:0:0:")
    cl("rm", "vandal", check=True)


def test_capabilities_are_dockers_default_set():
    proc = cl("run", "--rm", "lab", "grep", "-E", "^Cap(Eff|Bnd|Inh|Amb)", "/proc/self/status")
    caps = dict(line.split(":") for line in proc.stdout.strip().splitlines())
    assert {k: v.strip() for k, v in caps.items()} == {
        "CapInh": "0000000000000000", "CapEff": "00000000a80425fb",
        "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000"}


def test_masked_and_read_only_proc_paths():
    proc = cl("run", "--rm", "lab", "sh", "-c",
              "cat /proc/kcore | wc -c; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/domainname && echo wrote")
    lines = proc.stdout.split()
    assert lines[:2] == ["0", "0"], proc.stdout
    assert "wrote" not in proc.stdout and "Read-only file system" in proc.stderr


def test_a_device_node_made_inside_is_inert():
    # CAP_MKNOD is in the default set, but /dev and the root are mounted nodev.
    proc = cl("run", "--rm", "lab", "sh", "-c", "mknod /tmp/disk b 8 0 && head -c1 /tmp/disk")
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr


# -- limits ---------------------------------------------------------------------

def test_limits_are_readable_inside():
    from engine.cgroups import detect

    driver = detect()
    if driver.name == "v2":
        files = "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    else:
        files = "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    proc = cl("run", "--rm", "-m", "64m", "--pids-limit", "50", "lab", "cat", *files.split())
    assert proc.stdout.split() == [str(64 << 20), "50"], proc.stderr


def test_memory_hog_is_oom_killed():
    # tail buffers a "line" that never ends: it grows until the limit stops it.
    proc = cl("run", "--name", "hog", "-m", "32m", "lab", "tail", "/dev/zero", timeout=120)
    assert proc.returncode == 137, (proc.returncode, proc.stderr)
    info = json.loads(cl("inspect", "hog", check=True).stdout)[0]
    assert info["oom_killed"] is True and info["exit_code"] == 137
    cl("rm", "hog", check=True)


def test_pids_limit_stops_a_fork_loop():
    # dash gives up at the first fork the kernel refuses: "Cannot fork", status 2.
    script = "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo all 60 started"
    t0 = time.monotonic()
    proc = cl("run", "--rm", "--pids-limit", "20", "lab", "sh", "-c", script, timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 2 and "Cannot fork" in proc.stderr, proc.stderr
    assert "all 60 started" not in proc.stdout
    # Without the limit the same loop completes.
    proc = cl("run", "--rm", "lab", "sh", "-c", script.replace("sleep 30", "sleep 1"), timeout=60)
    assert proc.stdout == "all 60 started\n", proc.stderr


def test_host_stays_unaffected_by_the_limits():
    # The host can still start processes while a container sits at its pids limit.
    cid = cl("run", "-d", "--pids-limit", "5", "lab", "sh", "-c",
             "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; sleep 30").stdout.strip()
    try:
        assert subprocess.run(["true"]).returncode == 0
    finally:
        cl("rm", "-f", cid, check=True)


# -- exit codes -------------------------------------------------------------------

@pytest.mark.parametrize("argv, code, message", [
    (["true"], 0, None),
    (["false"], 1, None),
    (["sh", "-c", "exit 42"], 42, None),
    (["/etc"], 126, "is a directory"),
    (["/etc/passwd"], 126, "permission denied"),
    (["no-such-command"], 127, "executable file not found in $PATH"),
    (["/no/such/file"], 127, "no such file or directory"),
    (["sh", "-c", "sleep 30 & kill -9 $!; wait $!"], 137, None),
])
def test_exit_codes(argv, code, message):
    proc = cl("run", "--rm", "lab", *argv)
    assert proc.returncode == code, proc.stderr
    if message:
        assert message in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_kill_from_outside_gives_137():
    from engine.client import Client

    cid = cl("run", "-d", "lab", "sleep", "60", check=True).stdout.strip()
    Client().kill(cid, 9)
    assert cl("wait", cid).stdout.strip() == "137"
    cl("rm", cid, check=True)


# -- detached, --rm, cleanup ----------------------------------------------------------

def test_detached_container_outlives_the_cli_and_its_exit_is_recorded(tmp_path):
    tmp_path.chmod(0o755)
    # The container ends only when told (the file go): -d has returned while it runs.
    proc = cl("run", "-d", "--name", "bg", "-v", f"{tmp_path}:/sig", "lab", "sh", "-c",
              "while [ ! -e /sig/go ]; do sleep 0.05; done; echo done; exit 3")
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert "bg" in cl("ps").stdout
    (tmp_path / "go").touch()
    assert cl("wait", "bg").stdout.strip() == "3"
    info = json.loads(cl("inspect", "bg", check=True).stdout)[0]
    assert info["status"] == "exited" and info["exit_code"] == 3 and info["finished"]
    from engine import logs
    assert logs.text(ROOT / "lib" / "containers" / cid) == "done\n"
    assert cl("logs", "bg").stdout == "done\n"
    assert "bg" not in cl("ps").stdout and "Exited (3)" in cl("ps", "-a").stdout
    cl("rm", "bg", check=True)


def test_rm_cleans_up():
    before = containers_on_disk()
    assert cl("run", "--rm", "lab", "true").returncode == 0
    assert containers_on_disk() == before
    assert cgroup_dirs() == []


def test_init_reaps_orphans_and_forwards_signals():
    proc = cl("run", "--rm", "--init", "lab", "ps", "-eo", "pid,args", "--no-headers")
    rows = [line.split(None, 1) for line in proc.stdout.strip().splitlines()]
    assert rows == [["1", "init -- ps -eo pid,args --no-headers"], ["2", "ps -eo pid,args --no-headers"]], proc.stdout
    from engine.client import Client
    cid = cl("run", "-d", "--init", "lab", "sleep", "60", check=True).stdout.strip()
    pid = json.loads(cl("inspect", cid, check=True).stdout)[0]["pid"]
    wait_until(lambda: child_commands(pid) == [["sleep", "60"]], message="the init to start sleep 60")
    Client().kill(cid, 15)          # sleep has no handler: SIGTERM ends it, via the init
    assert cl("wait", cid).stdout.strip() == "143"
    cl("rm", cid, check=True)


def test_env_workdir_user_and_volume(tmp_path):
    (tmp_path / "shared.txt").write_text("from the host\n")
    tmp_path.chmod(0o755)               # readable by `nobody` inside
    proc = cl("run", "--rm", "-e", "GREETING=hi", "-w", "/work/here", "-u", "nobody",
              "-v", f"{tmp_path}:/data:ro", "lab", "sh", "-c",
              'echo $GREETING; pwd; id -u; cat /data/shared.txt; touch /data/x 2>&1 || echo ro')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[:4] == ["hi", "/work/here", "65534", "from the host"]
    assert out[-1] == "ro"
    assert not (tmp_path / "x").exists()


def test_volume_destination_through_a_symlink_stays_inside(tmp_path):
    """A symlink in the container pointing at / must not send a mount to the host's /."""
    host_dir = tmp_path / "src"
    host_dir.mkdir()
    target = "/escape/etc/clab-escape-test"
    # First start: /escape is made as a plain directory in the writable layer.
    cl("run", "--name", "symlinker", "-v", f"{host_dir}:{target}", "lab", "true", check=True)
    info = json.loads(cl("inspect", "symlinker", check=True).stdout)[0]
    upper = ROOT / "lib" / "containers" / info["id"] / "upper"
    # A hostile layer: /escape becomes a symlink to the absolute path /.
    import shutil
    shutil.rmtree(upper / "escape")
    os.symlink("/", upper / "escape")
    # Second start: /escape -> / resolves inside the container's root, so the
    # volume lands on the container's own /etc, never on the host's.
    assert cl("start", "-a", "symlinker").returncode == 0
    assert not os.path.exists("/etc/clab-escape-test")
    assert (upper / "etc" / "clab-escape-test").is_dir()
    cl("rm", "symlinker", check=True)
    proc = cl("run", "--rm", "-v", f"{host_dir}:/tmp/../etc/x", "lab", "true")
    assert proc.returncode == 125 and "'..'" in proc.stderr


def test_one_hundred_run_rm_cycles_leave_nothing_behind():
    from engine.client import Client

    client = Client()
    sup_pid = client.ping()["pid"]
    before = containers_on_disk()
    for _ in range(100):
        cid = cl("run", "-d", "lab", "true", check=True).stdout.strip()
        assert cl("wait", cid).stdout.strip() == "0"
        cl("rm", cid, check=True)
    assert containers_on_disk() == before
    assert cgroup_dirs() == []
    assert overlay_mounts() == []
    children = subprocess.run(["ps", "--ppid", str(sup_pid), "-o", "pid="], capture_output=True, text=True)
    assert children.stdout.strip() == ""


# -- bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["run", "no-such-image"], "Unable to find image 'no-such-image:latest' locally"),
    (["run", "-m", "64x", "lab", "true"], "invalid size"),
    (["run", "--pids-limit", "many", "lab", "true"], "invalid pids limit"),
    (["run"], "the following arguments are required: IMAGE"),
    (["run", "--name", "bad name!", "lab", "true"], "invalid container name"),
    (["run", "-v", "relative:/x", "lab", "true"], "named volumes are not supported"),
    (["run", "-v", "/no/such/dir:/x", "lab", "true"], "does not exist"),
    (["run", "-e", "=x", "lab", "true"], "invalid environment variable"),
    (["run", "--network", "bad/name", "lab", "true"], "invalid --network value"),
    (["run", "--rm", "-u", "ghost", "lab", "true"], "unable to find user ghost"),
    (["run", "-m", "1k", "lab", "true"], "minimum memory limit"),
    (["inspect", "no-such-container"], "No such container"),
])
def test_bad_input_gives_one_line_and_125(args, message):
    proc = cl(*args)
    assert proc.returncode in (125, 1) if args[0] == "inspect" else proc.returncode == 125, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert message in first or proc.stderr.count("\n") <= 2


def test_duplicate_name_is_refused():
    cl("run", "--name", "twin", "lab", "true", check=True)
    proc = cl("run", "--name", "twin", "lab", "true")
    assert proc.returncode == 125
    assert 'The container name "/twin" is already in use' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    cl("rm", "twin", check=True)


# -- a real terminal ---------------------------------------------------------------

def _pty_session(args: list[str], keys: list[tuple], timeout: float = 30) -> tuple[int, str]:
    """Run the CLI on a real pseudo-terminal, type each of ``keys`` (ready, bytes) as soon as
    ``ready(the output so far)`` holds, collect the screen."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=REPO, start_new_session=True,
                            preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(keys)
    while time.monotonic() < deadline:
        if pending and pending[0][0](out):
            os.write(master, pending.pop(0)[1])
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None and not pending:
            break
    code = proc.wait(timeout=10)
    os.close(master)
    return code, out.decode(errors="replace")


def test_interactive_shell_on_a_real_terminal():
    from engine.client import Client

    def prompt(n: int):                 # bash has shown its n-th prompt
        return lambda out: out.count(b":/# ") >= n

    def sleeping(_out) -> bool:
        return child_commands(Client().inspect("tty-shell")["pid"]) == [["sleep", "100"]]

    code, screen = _pty_session(["run", "--rm", "-it", "--name", "tty-shell", "lab", "bash"], [
        (prompt(1), b"ps -ef\r"), (prompt(2), b"hostname; tty\r"), (prompt(3), b"sleep 100\r"), (sleeping, b"\x03"),
        (prompt(4), b"echo after ctrl-c $?\r"), (prompt(5), b"stty size\r"), (prompt(6), b"exit 7\r")])
    assert code == 7, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.replace("\r", ""))
    lines = [ln.strip() for ln in plain.splitlines()]
    ps_rows = [ln for ln in lines if ln.startswith("root ")]
    assert ps_rows[0].split()[1] == "1" and ps_rows[0].endswith("bash"), screen
    assert {row.split()[-1] for row in ps_rows} <= {"bash", "-ef"}, screen
    assert "/dev/pts/0" in lines, screen
    assert "after ctrl-c 130" in lines, screen
    assert any(re.fullmatch(r"\d+ \d+", ln) for ln in lines), screen


def test_threaded_caller_starts_200_containers_without_hanging():
    """The app calls the engine from threads: a forked child of a threaded
    process must never run Python, and nothing may deadlock."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from engine.client import Client
    from engine.spec import ContainerConfig

    stop = threading.Event()

    def busy():
        x = 0
        while not stop.is_set():
            x += 1

    spinners = [threading.Thread(target=busy, daemon=True) for _ in range(4)]
    for t in spinners:
        t.start()
    client = Client()
    r, w = os.pipe()

    def one(i: int) -> int:
        run = client.run(ContainerConfig(image="lab", cmd=["sh", "-c", f"exit {i % 7}"], remove=True),
                         stdio=[w, w])
        try:
            return run.wait()["exit_code"]
        finally:
            run.close()

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = list(pool.map(one, range(200), timeout=300))
    finally:
        stop.set()
        os.close(r)
        os.close(w)
    assert codes == [i % 7 for i in range(200)]
