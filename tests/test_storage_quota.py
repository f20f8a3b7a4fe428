"""``run --storage-opt size=N``: a limit on a container's writable layer -- an
XFS project quota on its upper dir, as Docker's overlay2 sets one -- and a
clear refusal wherever the data dir's file system cannot enforce it.

The XFS file system is made in the test on a loop file and mounted with
``prjquota``; a private supervisor keeps its data there. On a kernel whose
XFS has no quota support (CONFIG_XFS_QUOTA unset: the mount with prjquota
fails) the file system is mounted without it, and the test checks the
refusal and doctor's reason there instead."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from engine.client import Client

from conftest import ROOT, cl, needs_root

pytestmark = needs_root


def _mounted(path: Path) -> bool:
    return subprocess.run(["findmnt", "-M", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def xfs_data():
    """A 512 MiB XFS on a loop file, with project quotas when the kernel has
    them; a private supervisor's data and state dirs on it. Yields (env, has_quota)."""
    work = Path(tempfile.mkdtemp(prefix="clq-", dir="/tmp"))
    image, mnt = work / "xfs.img", work / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(512 << 20)               # sparse: a few MB really used
    subprocess.run(["mkfs.xfs", "-q", str(image)], check=True, capture_output=True)
    quota = subprocess.run(["mount", "-o", "loop,prjquota", str(image), str(mnt)], capture_output=True)
    has_quota = quota.returncode == 0
    if not has_quota:
        assert not os.path.exists("/proc/fs/xfs/xqmstat"), quota.stderr     # the kernel's XFS lacks quotas
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True)
    env = {"CONTAINER_LAB_DATA_DIR": str(mnt / "lib"), "CONTAINER_LAB_STATE_DIR": str(work / "run")}
    try:
        yield env, has_quota
    finally:
        Client(state_dir=work / "run", autostart=False).shutdown()
        deadline = time.monotonic() + 30
        while _mounted(mnt):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
                assert time.monotonic() < deadline, "the test file system stays busy"
                time.sleep(0.1)
        loops = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
        for line in loops.splitlines():            # mount -o loop detaches on umount; make sure
            subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_storage_opt_bounds_the_writable_layer_on_xfs(xfs_data):
    env, has_quota = xfs_data
    data = Path(env["CONTAINER_LAB_DATA_DIR"])
    doctor = json.loads(cl("doctor", "--format", "json", env=env).stdout)
    line = next(c for c in doctor["checks"] if c["id"] == "storage.quota")
    fill = "dd if=/dev/zero of=/fill bs=1M count=100 2>&1; echo exit=$?; ls -l /fill"
    if not has_quota:
        # This kernel: XFS without quotas. Refused with one line, nothing made.
        assert not line["ok"] and "without project quotas" in line["detail"]
        assert "CONFIG_XFS_QUOTA" in line["detail"]
        proc = cl("run", "--rm", "--storage-opt", "size=20m", "lab", "sh", "-c", fill, env=env, timeout=300)
        assert proc.returncode == 125 and proc.stderr.count("\n") == 1, proc.stderr
        assert "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" in proc.stderr
        assert "without project quotas" in proc.stderr
        assert list((data / "containers").iterdir()) == []
        # The half of the mechanism this kernel has: a project id on a
        # directory, inherited by what is made in it (xfs_io agrees) ...
        from engine import quota

        upper = data / "probe" / "upper"
        (upper.parent).mkdir()
        upper.mkdir()
        quota.set_project(str(upper), 4242424)
        (upper / "sub").mkdir()
        (upper / "sub" / "file").write_bytes(b"x")
        assert quota.project_of(str(upper / "sub" / "file")) == 4242424
        shown = subprocess.run(["xfs_io", "-c", "lsproj", str(upper / "sub")], capture_output=True, text=True)
        assert shown.stdout.strip() == "projid = 4242424", shown
        # ... and no quota to set on it: quotactl answers ENOSYS (no quota operations).
        with pytest.raises(OSError) as e:
            quota.limit([str(upper)], 1 << 20)
        assert e.value.errno == errno.ENOSYS
        return
    assert line["ok"], line
    before = shutil.disk_usage(data).used
    proc = cl("run", "--name", "bounded", "--storage-opt", "size=20m", "lab", "sh", "-c", fill,
              env=env, timeout=300)
    try:
        assert "No space left on device" in proc.stdout or "Disk quota exceeded" in proc.stdout, proc.stdout
        assert "exit=0" not in proc.stdout
        [cdir] = list((data / "containers").iterdir())
        assert (cdir / "upper" / "fill").stat().st_size <= 20 << 20
        assert shutil.disk_usage(data).used - before < 30 << 20
    finally:
        cl("rm", "-f", "bounded", env=env)
    # Without the option the same container writes all 100 MB: the limit was the quota's.
    free = cl("run", "--rm", "lab", "sh", "-c", fill, env=env, timeout=300)
    assert "exit=0" in free.stdout, free.stdout


def test_storage_opt_is_refused_where_it_cannot_work():
    """The test session's data dir is on ext4 (no project quotas here): one line, as Docker's."""
    doctor = json.loads(cl("doctor", "--format", "json").stdout)
    line = next(c for c in doctor["checks"] if c["id"] == "storage.quota")
    assert not line["ok"] and "is on ext4" in line["detail"] and "--storage-opt size is refused" in line["detail"]
    proc = cl("run", "--rm", "--storage-opt", "size=10m", "lab", "true")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" in proc.stderr
    assert str(ROOT / "lib") in proc.stderr
    for bad, words in (("size=lots", "expected a size"), ("inodes=5", "only size=SIZE is supported")):
        proc = cl("run", "--rm", "--storage-opt", bad, "lab", "true")
        assert proc.returncode == 125 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
