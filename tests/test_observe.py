"""The observation API (engine.observe) and its CLI views: top, diff, inspect --namespaces."""

from __future__ import annotations

import errno
import json
import os

import pytest

from conftest import cl, needs_root
from waiting import child_commands, wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


@pytest.fixture
def family():
    """A running container: sh as PID 1 with two sleeping children."""
    cl("run", "-d", "--name", "family", "lab", "sh", "-c", "sleep 100 & sleep 200 & wait", check=True)
    pid = json.loads(cl("inspect", "family", check=True).stdout)[0]["pid"]
    wait_until(lambda: sorted(child_commands(pid)) == [["sleep", "100"], ["sleep", "200"]],
               message="family's two sleeps")
    yield "family"
    cl("rm", "-f", "family")


def client():
    from engine.client import Client
    return Client()


def _showing(c, name: str, argv: list[str]) -> tuple[dict, dict]:
    """The first snapshot of ``name`` that shows a process running ``argv``, and that process."""
    def look():
        snap = c.snapshot(name)
        return [(snap, p) for p in snap["processes"] if p["cmd"] == argv]
    return wait_until(look, message=f"{argv} in a snapshot of {name}")[0]


def _go(host_pid: int) -> None:
    """Let the shell that reads the container's fifo /tmp/go go on, once it has opened it."""
    def opened() -> list[int]:
        try:
            return [os.open(f"/proc/{host_pid}/root/tmp/go", os.O_WRONLY | os.O_NONBLOCK)]
        except OSError as e:
            if e.errno != errno.ENXIO:          # ENXIO: no reader yet
                raise
            return []
    (fd,) = wait_until(opened, message="the shell to open the fifo /tmp/go")
    os.write(fd, b"\n")
    os.close(fd)


def test_processes_with_container_and_host_pids(family):
    snap = client().snapshot(family)
    procs = snap["processes"]
    assert [(p["pid"], p["ppid"], p["cmd"][0]) for p in procs] == [(1, 0, "sh"), (2, 1, "sleep"), (3, 1, "sleep")]
    for p in procs:                      # the host sees the same process under another PID
        nspid = [ln for ln in open(f"/proc/{p['host_pid']}/status") if ln.startswith("NSpid:")][0].split()
        assert nspid[1:] == [str(p["host_pid"]), str(p["pid"])]
    assert procs[0]["host_pid"] == snap["pid"] and json.loads(json.dumps(snap)) == snap
    rows = cl("top", family, check=True).stdout.splitlines()
    assert rows[0].split()[:4] == ["PID", "HOST", "PID", "USER"]
    assert rows[1].split()[0] == "1" and rows[1].split()[2] == "root" and rows[2].endswith("├─ sleep 100")


def test_exec_joins_the_same_namespace_inodes(family):
    snap = client().snapshot(family)
    links = cl("exec", family, "sh", "-c", "readlink /proc/self/ns/net /proc/self/ns/pid /proc/self/ns/mnt",
               check=True).stdout.split()
    assert links == [f"net:[{snap['namespaces']['net']['inode']}]", f"pid:[{snap['namespaces']['pid']['inode']}]",
                     f"mnt:[{snap['namespaces']['mnt']['inode']}]"]


def test_namespaces_isolated_and_shared(family):
    cl("run", "-d", "--name", "other", "lab", "sleep", "100", check=True)
    try:
        ns = client().snapshot(family)["namespaces"]
        for kind in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
            assert ns[kind]["shared_with_host"] is False and ns[kind]["shared_with"] == [], kind
        assert ns["user"]["shared_with_host"] is True and ns["user"]["shared_with"] == ["other"]
        table = cl("inspect", "--namespaces", family, check=True).stdout
        assert any(line.split()[0] == "pid" and "isolated" in line for line in table.splitlines())
        data = json.loads(cl("inspect", "--namespaces", "--format", "json", family, check=True).stdout)
        assert data["namespaces"]["net"]["inode"] == ns["net"]["inode"]
    finally:
        cl("rm", "-f", "other")


def test_mounts_identify_the_layers(family, tmp_path):
    snap = client().snapshot(family)
    root = next(m for m in snap["mounts"] if m["target"] == "/")
    info = json.loads(cl("inspect", family, check=True).stdout)[0]
    assert root["fstype"] == "overlay"
    assert root["overlay"]["lower"] == info["rootfs"]["layers"][::-1]
    assert root["overlay"]["upper"] == info["rootfs"]["upper"]
    targets = {m["target"] for m in snap["mounts"]}
    assert {"/proc", "/dev", "/sys", "/dev/pts", "/sys/fs/cgroup"} <= targets


def test_memory_rises_when_a_process_allocates(family):
    c = client()
    before = c.snapshot(family)["resources"]["memory_current"]
    cl("exec", family, "dd", "if=/dev/zero", "of=/dev/shm/ballast", "bs=1M", "count=40", check=True)
    after = c.snapshot(family)
    assert after["resources"]["memory_current"] - before >= 30 << 20
    assert after["resources"]["memory_limit"] == 1 << 30


def test_compare_sees_processes_start_and_exit(family):
    from engine import observe

    c = client()
    first = c.snapshot(family)
    cl("exec", "-d", family, "sleep", "30", check=True)
    second, _ = _showing(c, family, ["sleep", "30"])
    change = observe.compare(first, second)
    assert [p["cmd"] for p in change["started"]] == [["sleep", "30"]] and change["exited"] == []
    assert change["cpu_cores"] is not None and change["cpu_cores"] >= 0


def test_diff_lists_added_changed_deleted():
    cl("run", "--name", "changer", "lab", "sh", "-c", "rm /etc/passwd; mkdir /data; echo x > /data/f; touch /etc/motd",
       check=True)
    try:
        lines = cl("diff", "changer", check=True).stdout.splitlines()
        assert lines == ["A /data", "A /data/f", "C /etc", "A /etc/motd", "D /etc/passwd"]
        data = json.loads(cl("diff", "--format", "json", "changer", check=True).stdout)
        assert {"kind": "D", "path": "/etc/passwd"} in data
    finally:
        cl("rm", "changer")


def test_snapshots_of_a_container_churning_processes_never_fail():
    cl("run", "-d", "--name", "churn", "lab", "sh", "-c",
       "while :; do for i in 1 2 3 4 5 6 7 8; do true & done; wait; done", check=True)
    try:
        c = client()
        for _ in range(100):
            snap = c.snapshot("churn", others=False)
            assert snap["processes"][0]["pid"] == 1 and snap["processes"][0]["cmd"][0] == "sh"
            assert len({p["pid"] for p in snap["processes"]}) == len(snap["processes"])
            assert snap["network_error"] is None
            assert [i["name"] for i in snap["network"]["interfaces"]] == ["lo", "eth0"]
    finally:
        cl("rm", "-f", "churn")


def test_a_process_that_execs_shows_its_new_command_at_once(family, monkeypatch):
    from engine import observe
    from engine.observe import procs

    # No timed re-read within this test: a new command can only come from the exec being noticed.
    monkeypatch.setattr(procs, "REFRESH_FIRST", 3600.0)
    c = client()
    cl("exec", family, "mkfifo", "/tmp/go", check=True)
    argv = ["sh", "-c", "read _ < /tmp/go; exec sleep 77"]
    cl("exec", "-d", family, *argv, check=True)
    before, shell = _showing(c, family, argv)
    _go(shell["host_pid"])
    wait_until(lambda: open(f"/proc/{shell['host_pid']}/comm").read() == "sleep\n", message="the exec of sleep 77")
    after = c.snapshot(family)
    same = next(p for p in after["processes"] if p["host_pid"] == shell["host_pid"])
    assert same["cmd"] == ["sleep", "77"] and same["name"] == "sleep"
    assert same["start_ticks"] == shell["start_ticks"] and same["pid"] == shell["pid"]
    assert observe.compare(before, after)["started"] == []     # the same process, not a new one


def test_argv_rewritten_in_place_shows_after_a_while(family):
    """No exec, the same argument addresses: a program that writes over its
    own argv (as daemons name their workers) is seen at the next timed read."""
    from engine import observe

    c = client()
    # dd writes a new name over sh's argv in memory; /proc/PID/mem is how a test can.
    script = ("read _ < /tmp/go; printf 'renamed' | dd of=/proc/$$/mem bs=1 seek=$(cut -d' ' -f48 /proc/$$/stat) "
              "conv=notrunc status=none; sleep 60")
    cl("exec", family, "mkfifo", "/tmp/go", check=True)
    cl("exec", "-d", family, "sh", "-c", script, check=True)
    _first, target = _showing(c, family, ["sh", "-c", script])
    _go(target["host_pid"])
    wait_until(lambda: open(f"/proc/{target['host_pid']}/cmdline").read().startswith("renamed"),
               message="dd's write over sh's argv")

    def renamed():
        now = next(p for p in c.snapshot(family)["processes"] if p["host_pid"] == target["host_pid"])
        return now if now["cmd"][0].startswith("renamed") else None
    now = wait_until(renamed, timeout=2 * observe.REFRESH_FIRST + 1, interval=0.1,
                     message="the rewritten argv in a snapshot")
    with open(f"/proc/{target['host_pid']}/cmdline", "rb") as f:
        truth = f.read().rstrip(b"\0").decode().split("\0")
    assert truth[0].startswith("renamed")                # the write worked
    assert now["cmd"] == truth


def test_processes_carry_the_fields_the_panel_shows(family):
    snap = client().snapshot(family)
    with open("/proc/stat") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    for p in snap["processes"]:
        with open(f"/proc/{p['host_pid']}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        assert p["start_ticks"] == int(fields[19])
        assert abs(p["started"] - (boot + p["start_ticks"] / os.sysconf("SC_CLK_TCK"))) < 0.02
        assert abs(p["started"] - snap["time"]) < 60
        assert p["nspid"] == [p["host_pid"], p["pid"]]
        assert p["uid"] == p["uid_host"] == 0 and p["state"] in "RS" and p["threads"] == 1
        assert p["rss_kb"] > 0


def test_uid_inside_a_user_namespace_is_mapped():
    """A process in a user namespace of its own, as in a rootless container:
    the host sees uid 100005 where the namespace sees 5."""
    import subprocess

    from engine import observe

    # setpriv drops to uid 100005, then unshare makes the user namespace and execs sleep.
    child = subprocess.Popen(["setpriv", "--reuid=100005", "--regid=100005", "--clear-groups",
                              "unshare", "--user", "sleep", "60"])
    try:
        wait_until(lambda: observe.process(child.pid)["name"] == "sleep", timeout=5, interval=0.02,
                   message="unshare to exec sleep")
        with open(f"/proc/{child.pid}/uid_map", "w") as f:    # root may write it once, from outside
            f.write("0 100000 65536\n")
        ranges = observe.id_map(child.pid)
        assert ranges == [(0, 100000, 65536)]
        assert [observe.map_id(u, ranges) for u in (100000, 100005, 165535, 165536, 0)] == \
            [0, 5, 65535, observe.OVERFLOW_UID, observe.OVERFLOW_UID]
        (p,) = observe.processes([child.pid], uid_map=ranges)
        assert (p["uid_host"], p["uid"], p["cmd"]) == (100005, 5, ["sleep", "60"])
        assert observe.id_map(os.getpid()) == [(0, 0, 4294967295)]    # the initial namespace: identity
    finally:
        child.kill()
        child.wait()


def test_snapshots_keep_few_fds_and_give_them_back(family):
    from engine import observe

    def sockets() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except FileNotFoundError:          # the listing's own fd, closed meanwhile
                pass
        return count

    c = client()
    fds, socks = len(os.listdir("/proc/self/fd")), sockets()
    first = c.snapshot(family)
    kept = len(os.listdir("/proc/self/fd")) - fds
    # One /proc/PID/stat per process, and two netlink sockets watching its network.
    assert kept == len(first["processes"]) + 2 == 5 and sockets() == socks + 2
    for _ in range(5):
        c.snapshot(family)
    assert len(os.listdir("/proc/self/fd")) - fds == kept
    cl("exec", family, "true", check=True)             # a process that came and went: no fd left
    c.snapshot(family)
    assert len(os.listdir("/proc/self/fd")) - fds == 5
    observe.forget(first["id"])
    assert len(os.listdir("/proc/self/fd")) == fds and sockets() == socks


def test_few_fds_left_means_fewer_kept_and_nothing_missing():
    """With a soft limit of 64 fds a quarter (16) may be kept open: a container
    of 31 processes is still seen whole, its other files read afresh."""
    import subprocess
    import sys

    cl("run", "-d", "--name", "many", "lab", "sh", "-c", "for i in $(seq 30); do sleep 100 & done; wait", check=True)
    try:
        record = client().inspect("many")
        wait_until(lambda: sorted(child_commands(record["pid"])) == [["sleep", "100"]] * 30,
                   message="many's 30 sleeps")
        code = ("import json, os, resource, sys\n"
                "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
                "from engine import observe\n"
                "from engine.client import Client\n"
                "record = json.loads(sys.argv[1]); cgroup = Client(autostart=False)._cgroup_of(record)\n"
                "base = len(os.listdir('/proc/self/fd'))\n"
                "counts = [len(observe.snapshot(record, cgroup=cgroup, network=False)['processes']) for _ in range(3)]\n"
                "print(json.dumps([counts, len(os.listdir('/proc/self/fd')) - base]))\n")
        out = subprocess.run([sys.executable, "-c", code, json.dumps(record)], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert out.returncode == 0, out.stderr
        counts, kept = json.loads(out.stdout)
        assert counts == [31, 31, 31] and kept == 16
    finally:
        cl("rm", "-f", "many")


def test_top_of_a_stopped_container_is_a_one_line_error():
    cl("run", "--name", "stopped", "lab", "true", check=True)
    try:
        proc = cl("top", "stopped")
        assert proc.returncode == 1 and "is not running" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        cl("rm", "stopped")


def test_reference_namespaces_say_where_they_come_from():
    from engine import observe

    inodes, source = observe.reference_namespaces()
    assert source in ("host (PID 1)", "this process")
    assert inodes["pid"] == os.stat(f"/proc/{1 if source.startswith('host') else 'self'}/ns/pid").st_ino
