"""The start stages against a recording fake kernel: order and failure reporting.

These run without root. The real effect of each stage is checked by
test_run.py on real containers; here we check what the real tests cannot
see directly: that the stages happen in the order that matters.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap

from conftest import REPO

DRIVER = textwrap.dedent("""
    import json, os, socket, sys
    from engine import runtime, syscalls
    rootfs, fail = sys.argv[1], json.loads(sys.argv[2])
    spec = runtime.ChildSpec(
        id="f" * 64, rootfs=rootfs, lowerdir="/L", upperdir="/U", workdir="/W", hostname="lab1",
        argv=["/bin/true"], env=["PATH=/usr/bin:/bin"],
        etc_files={"/etc/hostname": "/dev/null"},
        volumes=[{"source": "/tmp", "target": "/data", "readonly": True}])
    kernel = syscalls.RecordingSyscalls(fail=fail)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        parent.close()
        runtime.child_main(spec, child, (0, 1, 2), kernel)
    child.close()
    messages = []
    while data := parent.recv(1 << 20):
        messages.append(json.loads(data))
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"messages": messages, "exit": os.waitstatus_to_exitcode(status)}))
""")


def run_stages(tmp_path, fail: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(fail or {})],
                          capture_output=True, text=True, cwd=REPO, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_stage_order_and_transcript(tmp_path):
    result = run_stages(tmp_path)
    assert result["exit"] == 0
    stages = result["messages"][-1]["transcript"]
    ids = [s["id"] for s in stages]
    assert ids == ["cgroup", "namespaces", "propagation", "rootfs", "proc", "dev", "cgroupns", "sys",
                   "pivot_root", "hostname", "capabilities", "exec"]
    assert all(isinstance(s["ms"], float) and s["ms"] >= 0 for s in stages)
    ops = [op for s in stages for op in s["ops"]]
    mounts = [op for op in ops if op["call"] == "mount"]
    # Propagation is made private before any other mount, recursively.
    assert mounts[0]["shell"] == "mount --make-rprivate /"
    assert mounts[1]["fstype"] == "overlay" and mounts[1]["data"] == "lowerdir=/L,upperdir=/U,workdir=/W"
    unshares = [op for op in ops if op["call"] == "unshare"]
    assert "CLONE_NEWNS" in unshares[0]["flags"] and unshares[1]["flags"] == ["CLONE_NEWCGROUP"]
    # The volume is bound (from its fd, shown by its path), then made read-only, nodev and nosuid
    # with every mount below it.
    data = [op for op in mounts if op["target"] == "/data"]
    assert [(op["flags"], op["source"]) for op in data] == [("bind,rec", "/tmp")]
    setattr_ops = [op for op in ops if op["call"] == "mount_setattr"]
    assert [(op["target"], op["attrs"], op["flags"]) for op in setattr_ops] == [
        ("/data", ["ro", "nosuid", "nodev"], "AT_RECURSIVE")]
    # Every operation carries its shell equivalent.
    assert all(op["shell"] for op in ops)
    assert ops[-1] == {"call": "execve", "shell": "exec /bin/true", "path": "/bin/true", "argv": ["/bin/true"]}


def test_a_kernel_without_mount_setattr_cannot_make_a_read_only_volume(tmp_path):
    result = run_stages(tmp_path, {"mount_setattr": errno.ENOSYS})
    assert result["exit"] == 125
    error = result["messages"][-1]
    assert error["stage"] == "rootfs" and "needs mount_setattr(2)" in error["error"], error
    assert "Linux 5.12 or newer" in error["error"] and "\n" not in error["error"]


def test_a_failing_stage_is_reported_with_its_name(tmp_path):
    result = run_stages(tmp_path, {"pivot_root": errno.EINVAL})
    assert result["exit"] == 125
    error = result["messages"][-1]
    assert error["stage"] == "pivot_root"
    assert "Invalid argument" in error["error"]
    assert [s["id"] for s in error["transcript"]][-1] == "pivot_root"


def test_a_failing_mount_names_its_target(tmp_path):
    result = run_stages(tmp_path, {"mount": errno.EPERM})
    error = result["messages"][-1]
    assert error["stage"] == "propagation"
    assert error["error"] == "mount --make-rprivate /: Operation not permitted"
