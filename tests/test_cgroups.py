"""Tests for engine.cgroups: fake v1/v2 trees everywhere, real cgroups as root.

A fake tree is a plain directory. Two things differ from a cgroup file system,
and the drivers take both as seams: mkdir there fills the new directory with
control files (FakeKernfs.mkdir copies a template), and rmdir removes a
directory that still lists them (FakeKernfs.rmdir removes it with its files).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cgroups
from engine.cgroups import Limits, Mount, NoDriver, Symlink, V1Driver, V2Driver, detect, parse_size
from engine.errors import CgroupError, InvalidArgument

from waiting import wait_until

M = 1 << 20


class FakeKernfs:
    """mkdir/rmdir that behave like the kernel's on a fake tree."""

    def __init__(self, templates: dict[Path, dict[str, str]]):
        self.templates = templates

    def mkdir(self, path: Path) -> None:
        path.mkdir()                                  # FileExistsError, like the kernel
        for root, files in self.templates.items():
            if path.is_relative_to(root):
                for name, text in files.items():
                    (path / name).write_text(text)

    def rmdir(self, path: Path) -> None:
        if any(p.is_dir() for p in path.iterdir()):   # FileNotFoundError when gone
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        shutil.rmtree(path)


def make_files(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def read(path: Path) -> str:
    return path.read_text()


# -- fake trees ----------------------------------------------------------------

V2_ROOT = {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
           "cgroup.subtree_control": "", "cgroup.procs": ""}
V2_CHILD = {"cgroup.controllers": "cpu memory pids\n", "cgroup.subtree_control": "",
            "cgroup.procs": "", "cgroup.kill": "", "memory.max": "max\n",
            "memory.swap.max": "max\n", "pids.max": "max\n", "cpu.max": "max 100000\n"}

V1_MEMORY = {"cgroup.procs": "", "memory.limit_in_bytes": "9223372036854771712\n",
             "memory.memsw.limit_in_bytes": "9223372036854771712\n",
             "memory.swappiness": "60\n"}
V1_PIDS = {"cgroup.procs": "", "pids.max": "max\n"}
V1_CPU = {"cgroup.procs": "", "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n"}


def v2_driver(tmp_path: Path, root_files=V2_ROOT, child_files=V2_CHILD) -> V2Driver:
    root = make_files(tmp_path / "cg", root_files)
    fs = FakeKernfs({root: child_files})
    return V2Driver(root, mkdir=fs.mkdir, rmdir=fs.rmdir)


def v1_driver(tmp_path: Path, memory_files=V1_MEMORY, cpu_files=V1_CPU) -> V1Driver:
    base = tmp_path / "cg"
    roots = {"memory": base / "memory", "pids": base / "pids", "cpu,cpuacct": base / "cpu,cpuacct"}
    templates = {roots["memory"]: memory_files, roots["pids"]: V1_PIDS, roots["cpu,cpuacct"]: cpu_files}
    for root in roots.values():
        make_files(root, {"cgroup.procs": ""})
    fs = FakeKernfs(templates)
    return V1Driver(roots, mkdir=fs.mkdir, rmdir=fs.rmdir)


LIMITS = Limits(memory=64 * M, pids=20, cpus=0.5)


# -- parse_size and Limits -----------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("64m", 64 * M), ("1g", 1 << 30), ("512k", 512 << 10), ("100b", 100),
    ("1073741824", 1 << 30), ("64M", 64 * M), ("1G", 1 << 30), ("64mb", 64 * M),
    ("64MiB", 64 * M), ("1.5g", 3 << 29), ("2t", 2 << 40), (" 8 k ", 8192), ("1", 1),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", [
    "64x", "", " ", "m", "-1", "-64m", "0", "0b", "0.1b", "1.5.2g", "1e3", "64 m x",
    "ib", "64ib", "0x10", "9999999999p",
])
def test_parse_size_rejects(text):
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size(text)


def test_parse_size_message():
    with pytest.raises(InvalidArgument) as e:
        parse_size("64x")
    assert str(e.value) == "invalid size: '64x'"


@pytest.mark.parametrize("limits, swap", [
    (Limits(), None),
    (Limits(memory=64 * M), 0),
    (Limits(memory=64 * M, memory_swap=64 * M), 0),
    (Limits(memory=64 * M, memory_swap=96 * M), 32 * M),
    (Limits(memory=64 * M, memory_swap=-1), None),
    (Limits(memory_swap=-1), None),
])
def test_limits_swap(limits, swap):
    assert limits.swap == swap


@pytest.mark.parametrize("kwargs", [
    {"memory": 0}, {"pids": 0}, {"pids": -5}, {"cpus": 0}, {"cpus": 0.001},
    {"memory_swap": 64 * M}, {"memory": 64 * M, "memory_swap": 32 * M},
])
def test_limits_rejects(kwargs):
    with pytest.raises(InvalidArgument):
        Limits(**kwargs)


def test_cpu_quota():
    assert Limits(cpus=0.5).cpu_quota == 50000
    assert Limits(cpus=2).cpu_quota == 200000
    assert Limits().cpu_quota is None


# -- v2 on a fake tree ---------------------------------------------------------

def test_v2_create_writes_limits(tmp_path):
    drv = v2_driver(tmp_path)
    cg = drv.create("c1", LIMITS)
    d = tmp_path / "cg" / "container-lab" / "c1"
    assert cg.paths == {"unified": d}
    assert read(tmp_path / "cg" / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert read(tmp_path / "cg" / "container-lab" / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert read(d / "memory.max") == str(64 * M)
    assert read(d / "memory.swap.max") == "0"
    assert read(d / "pids.max") == "20"
    assert read(d / "cpu.max") == "50000 100000"
    assert cg.procs_files() == [d / "cgroup.procs"]
    assert cg.warnings == ()
    root = tmp_path / "cg"
    assert cg.writes == (
        (root / "cgroup.subtree_control", "+memory +pids +cpu"),
        (root / "container-lab" / "cgroup.subtree_control", "+memory +pids +cpu"),
        (d / "memory.max", str(64 * M)), (d / "memory.swap.max", "0"),
        (d / "pids.max", "20"), (d / "cpu.max", "50000 100000"))


@pytest.mark.parametrize("limits, swap_max", [
    (Limits(memory=64 * M, memory_swap=96 * M), str(32 * M)),
    (Limits(memory=64 * M, memory_swap=-1), "max\n"),
    (Limits(), "max\n"),
])
def test_v2_swap(tmp_path, limits, swap_max):
    cg = v2_driver(tmp_path).create("c1", limits)
    assert read(cg.paths["unified"] / "memory.swap.max") == swap_max


def test_v2_no_limits_leaves_defaults(tmp_path):
    d = v2_driver(tmp_path).create("c1", Limits()).paths["unified"]
    assert [read(d / f) for f in ("memory.max", "pids.max", "cpu.max")] == \
        ["max\n", "max\n", "max 100000\n"]


def test_v2_controllers_already_enabled(tmp_path):
    drv = v2_driver(tmp_path, root_files={**V2_ROOT, "cgroup.subtree_control": "cpu memory pids\n"})
    drv.create("c1", LIMITS)
    assert read(tmp_path / "cg" / "cgroup.subtree_control") == "cpu memory pids\n"


def test_v2_missing_controllers_warn(tmp_path):
    drv = v2_driver(tmp_path, root_files={**V2_ROOT, "cgroup.controllers": "memory\n"},
                    child_files={**V2_CHILD, "cgroup.controllers": "memory\n"})
    assert drv.supports() == {"memory": True, "pids": False, "cpu": False, "swap": True}
    assert "pids controller" in drv.why_not()["pids"]
    cg = drv.create("c1", LIMITS)
    assert read(tmp_path / "cg" / "cgroup.subtree_control") == "+memory"
    assert read(cg.paths["unified"] / "pids.max") == "max\n"
    assert [w.split(":")[0] for w in cg.warnings] == ["pids limit NOT applied", "cpu limit NOT applied"]


def test_v2_no_swap_accounting_warns(tmp_path):
    child = {k: v for k, v in V2_CHILD.items() if k != "memory.swap.max"}
    drv = v2_driver(tmp_path, child_files=child)
    cg = drv.create("c1", Limits(memory=64 * M))
    assert read(cg.paths["unified"] / "memory.max") == str(64 * M)
    assert any("swap limit NOT applied" in w for w in cg.warnings)


def test_v2_create_failure_removes_what_it_made(tmp_path):
    child = {k: v for k, v in V2_CHILD.items() if k != "pids.max"}
    drv = v2_driver(tmp_path, child_files=child)
    with pytest.raises(CgroupError) as e:
        drv.create("c1", LIMITS)
    assert "pids.max" in str(e.value) and "ENOENT" in str(e.value)
    assert not (tmp_path / "cg" / "container-lab" / "c1").exists()
    assert (tmp_path / "cg" / "container-lab").is_dir()      # the parent stays


def test_v2_create_existing_fails(tmp_path):
    drv = v2_driver(tmp_path)
    drv.create("c1", Limits())
    with pytest.raises(CgroupError, match="EEXIST"):
        drv.create("c1", Limits())


def test_v2_usage(tmp_path):
    cg = v2_driver(tmp_path).create("c1", LIMITS)
    make_files(cg.paths["unified"], {
        "memory.current": "1048576\n", "memory.max": "33554432\n", "memory.peak": "2097152\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
        "pids.current": "3\n", "pids.max": "20\n", "pids.events": "max 7\n",
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    })
    assert cg.usage() == {"memory_current": 1 << 20, "memory_limit": 32 * M,
                          "memory_peak": 2 * M, "pids_current": 3, "pids_limit": 20,
                          "cpu_usage_ns": 1_500_000, "oom_kills": 2, "pids_max_hits": 7}
    assert cg.oom_killed()


def test_v2_usage_unlimited_and_missing(tmp_path):
    cg = v2_driver(tmp_path).create("c1", Limits())
    make_files(cg.paths["unified"], {"memory.current": "0\n", "memory.events": "oom_kill 0\n"})
    u = cg.usage()
    assert u["memory_limit"] is None and u["pids_limit"] is None      # "max"
    assert u["memory_peak"] is None and u["cpu_usage_ns"] is None     # no such file
    assert not cg.oom_killed()


# -- v1 on a fake tree ---------------------------------------------------------

def test_v1_create_writes_limits(tmp_path):
    drv = v1_driver(tmp_path)
    cg = drv.create("c1", LIMITS)
    base = tmp_path / "cg"
    assert cg.paths == {"memory": base / "memory/container-lab/c1",
                        "pids": base / "pids/container-lab/c1",
                        "cpu,cpuacct": base / "cpu,cpuacct/container-lab/c1"}
    mem, pids, cpu = cg.paths.values()
    assert read(mem / "memory.limit_in_bytes") == str(64 * M)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(64 * M)      # swap off
    assert read(mem / "memory.swappiness") == "60\n"                     # not needed
    assert read(pids / "pids.max") == "20"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert cg.procs_files() == [p / "cgroup.procs" for p in (mem, pids, cpu)]
    assert cg.warnings == ()
    assert [(p.name, v) for p, v in cg.writes] == [
        ("memory.limit_in_bytes", str(64 * M)), ("memory.memsw.limit_in_bytes", str(64 * M)),
        ("pids.max", "20"), ("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")]


@pytest.mark.parametrize("limits, memsw", [
    (Limits(memory=64 * M, memory_swap=96 * M), str(96 * M)),
    (Limits(memory=64 * M, memory_swap=-1), "9223372036854771712\n"),
])
def test_v1_swap(tmp_path, limits, memsw):
    cg = v1_driver(tmp_path).create("c1", limits)
    assert read(cg.paths["memory"] / "memory.memsw.limit_in_bytes") == memsw


def test_v1_without_memsw_uses_swappiness(tmp_path):
    files = {k: v for k, v in V1_MEMORY.items() if "memsw" not in k}
    drv = v1_driver(tmp_path, memory_files=files)
    assert drv.supports()["swap"] is False and "swapaccount=1" in drv.why_not()["swap"]
    cg = drv.create("c1", Limits(memory=64 * M))
    assert read(cg.paths["memory"] / "memory.swappiness") == "0"
    assert not (cg.paths["memory"] / "memory.memsw.limit_in_bytes").exists()
    assert any("swappiness" in w for w in cg.warnings)


def test_v1_create_failure_removes_every_hierarchy(tmp_path):
    drv = v1_driver(tmp_path, cpu_files={"cgroup.procs": ""})     # no cpu.cfs_* files
    with pytest.raises(CgroupError) as e:
        drv.create("c1", LIMITS)
    assert "cpu.cfs_period_us" in str(e.value) and "ENOENT" in str(e.value)
    for root in drv.hierarchies.values():
        assert not (root / "container-lab" / "c1").exists()


def test_v1_usage(tmp_path):
    cg = v1_driver(tmp_path).create("c1", LIMITS)
    make_files(cg.paths["memory"], {
        "memory.usage_in_bytes": "4096\n", "memory.limit_in_bytes": "33554432\n",
        "memory.max_usage_in_bytes": "8192\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"})
    make_files(cg.paths["pids"], {"pids.current": "5\n", "pids.max": "20\n", "pids.events": "max 3\n"})
    make_files(cg.paths["cpu,cpuacct"], {"cpuacct.usage": "123456789\n"})
    assert cg.usage() == {"memory_current": 4096, "memory_limit": 32 * M, "memory_peak": 8192,
                          "pids_current": 5, "pids_limit": 20, "cpu_usage_ns": 123456789,
                          "oom_kills": 1, "pids_max_hits": 3}
    assert cg.oom_killed()


def test_v1_usage_huge_limit_is_unlimited(tmp_path):
    cg = v1_driver(tmp_path).create("c1", Limits())
    make_files(cg.paths["memory"], {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"})
    u = cg.usage()
    assert u["memory_limit"] is None and u["pids_limit"] is None
    assert not cg.oom_killed()


# -- destroy, open, list, gc (fake trees) ----------------------------------------

@pytest.mark.parametrize("make", [v1_driver, v2_driver])
def test_destroy_open_list(tmp_path, make):
    drv = make(tmp_path)
    a = drv.create("a", LIMITS)
    drv.create("b", Limits())
    assert drv.list_ids() == ["a", "b"]
    assert drv.open("a").paths == a.paths
    a.destroy()
    assert not any(p.exists() for p in a.paths.values())
    a.destroy()                                            # idempotent
    with pytest.raises(CgroupError, match="no cgroup"):
        drv.open("a")
    assert drv.list_ids() == ["b"]
    assert drv.remove_parent_if_empty() is False           # b is still there
    drv.open("b").destroy()
    assert all((root / "container-lab").is_dir() for root in drv._roots())   # parent stays
    assert drv.remove_parent_if_empty() is True
    assert not any((root / "container-lab").exists() for root in drv._roots())
    assert drv.remove_parent_if_empty() is True
    assert drv.list_ids() == []


def test_nested_parent(tmp_path):
    drv = v2_driver(tmp_path)
    cg = drv.create("c1", LIMITS, parent="lab/room1")
    assert cg.paths["unified"] == tmp_path / "cg" / "lab" / "room1" / "c1"
    assert read(tmp_path / "cg" / "lab" / "cgroup.subtree_control") == "+memory +pids +cpu"
    assert drv.list_ids("lab/room1") == ["c1"]


@pytest.mark.parametrize("cid, parent", [
    ("", "container-lab"), ("..", "container-lab"), ("a/b", "container-lab"),
    (".hidden", "container-lab"), ("c1", ""), ("c1", "../etc"), ("c1", "/abs"), ("c1", "a//b"),
])
def test_bad_names(tmp_path, cid, parent):
    drv = v2_driver(tmp_path)
    with pytest.raises(InvalidArgument):
        drv.create(cid, Limits(), parent=parent)
    with pytest.raises(InvalidArgument):
        drv.open(cid, parent=parent)


def test_destroy_reports_a_busy_cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups.Cgroup, "kill_timeout", 0.1)
    drv = v2_driver(tmp_path)
    cg = drv.create("c1", Limits())
    (cg.paths["unified"] / "child").mkdir()                # rmdir -> EBUSY
    with pytest.raises(CgroupError, match="EBUSY"):
        cg.destroy()


# -- detect --------------------------------------------------------------------

def mountinfo(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text("22 1 0:21 / /proc rw,nosuid - proc proc rw\n" + "\n".join(lines) + "\n")
    return path


def v1_mountinfo(tmp_path: Path, base: Path) -> Path:
    return mountinfo(tmp_path, [
        f"31 23 0:28 / {base} rw - tmpfs tmpfs rw,mode=755",
        f"32 31 0:29 / {base}/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct",
        f"33 31 0:30 / {base}/memory rw shared:10 - cgroup cgroup rw,memory",
        f"34 31 0:31 / {base}/pids rw - cgroup cgroup rw,pids",
        f"35 31 0:32 / {base}/cpuset rw - cgroup cgroup rw,cpuset,clone_children",
        f"36 31 0:33 / {base}/systemd rw - cgroup cgroup rw,xattr,name=systemd",
        f"37 31 0:34 / {base}/unified rw - cgroup2 cgroup2 rw,nsdelegate",
        f"38 31 0:35 / {base}/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio",
    ])


def test_detect_v2(tmp_path):
    root = make_files(tmp_path / "cg", V2_ROOT)
    info = mountinfo(tmp_path, [f"30 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 "
                                "- cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"])
    drv = detect(root, info)
    assert isinstance(drv, V2Driver) and drv.name == "v2" and drv.root == root
    assert drv.supports() == {"memory": True, "pids": True, "cpu": True, "swap": True}
    assert drv.why_not() == {}


def test_detect_v1_hybrid(tmp_path):
    base = tmp_path / "cg"
    for sub in ("cpu,cpuacct", "memory", "pids", "cpuset", "systemd", "unified", "net_cls,net_prio"):
        (base / sub).mkdir(parents=True)
    (base / "unified" / "cgroup.controllers").write_text("")        # cgroup2 without controllers
    (base / "memory" / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    drv = detect(base, v1_mountinfo(tmp_path, base))
    assert isinstance(drv, V1Driver) and drv.name == "v1"
    assert drv.hierarchies == {"memory": base / "memory", "pids": base / "pids",
                               "cpu,cpuacct": base / "cpu,cpuacct"}
    assert drv.supports() == {"memory": True, "pids": True, "cpu": True, "swap": True}


def test_detect_v1_mount_point_with_space(tmp_path):
    base = tmp_path / "c g"
    (base / "memory").mkdir(parents=True)
    info = mountinfo(tmp_path, [f"33 31 0:30 / {str(base).replace(' ', chr(92) + '040')}/memory "
                                "rw - cgroup cgroup rw,memory"])
    drv = detect(base, info)
    assert isinstance(drv, V1Driver) and drv.hierarchies == {"memory": base / "memory"}
    assert drv.supports()["pids"] is False and "pids" in drv.why_not()["pids"]


def test_detect_none_without_cgroups(tmp_path):
    drv = detect(tmp_path / "cg", mountinfo(tmp_path, []))
    assert isinstance(drv, NoDriver) and drv.name == "none"
    assert drv.supports() == dict.fromkeys(("memory", "pids", "cpu", "swap"), False)
    assert all("no cgroup" in why for why in drv.why_not().values())


def test_detect_none_v2_without_controllers(tmp_path):
    root = make_files(tmp_path / "cg", {"cgroup.controllers": ""})
    drv = detect(root, mountinfo(tmp_path, [f"30 23 0:26 / {root} rw - cgroup2 cgroup2 rw"]))
    assert isinstance(drv, NoDriver) and "no controllers" in drv.reason


def test_detect_none_when_not_writable(tmp_path, monkeypatch):
    root = make_files(tmp_path / "cg", V2_ROOT)
    monkeypatch.setattr(cgroups.detection.os, "access", lambda path, mode: False)
    drv = detect(root, mountinfo(tmp_path, [f"30 23 0:26 / {root} rw - cgroup2 cgroup2 rw"]))
    assert isinstance(drv, NoDriver) and "not writable" in drv.reason


def test_detect_none_v1_not_writable(tmp_path, monkeypatch):
    base = tmp_path / "cg"
    monkeypatch.setattr(cgroups.detection.os, "access", lambda path, mode: False)
    drv = detect(base, v1_mountinfo(tmp_path, base))
    assert isinstance(drv, NoDriver) and "not writable" in drv.reason


# -- NoDriver ------------------------------------------------------------------

def test_nodriver_says_so():
    drv = NoDriver("rootless without a delegated cgroup")
    cg = drv.create("c1", Limits(memory=64 * M, pids=20))
    assert cg.warnings == ("memory limit NOT applied: rootless without a delegated cgroup",
                           "pids limit NOT applied: rootless without a delegated cgroup")
    assert drv.create("c2", Limits()).warnings == ()
    assert cg.procs_files() == [] and cg.pids() == []
    assert all(v is None for v in cg.usage().values())               # unknown, not 0
    assert not cg.oom_killed()
    cg.destroy()
    drv.open("c1").destroy()
    assert drv.list_ids() == [] and drv.container_mounts() == []
    assert drv.remove_parent_if_empty() is True


# -- container_mounts ------------------------------------------------------------

def test_container_mounts_v2(tmp_path):
    assert v2_driver(tmp_path).container_mounts() == [
        Mount("cgroup", "sys/fs/cgroup", "cgroup2", 15, "")]


def test_container_mounts_v1(tmp_path):
    ro = cgroups.MS_RDONLY | cgroups.MS_NOSUID | cgroups.MS_NODEV | cgroups.MS_NOEXEC
    assert ro == 15
    mounts = v1_driver(tmp_path).container_mounts()
    assert mounts == [
        Mount("tmpfs", "sys/fs/cgroup", "tmpfs", ro, "mode=755"),
        Mount("cgroup", "sys/fs/cgroup/memory", "cgroup", ro, "memory"),
        Mount("cgroup", "sys/fs/cgroup/pids", "cgroup", ro, "pids"),
        Mount("cgroup", "sys/fs/cgroup/cpu,cpuacct", "cgroup", ro, "cpu,cpuacct"),
        Symlink("cpu,cpuacct", "sys/fs/cgroup/cpu"),
        Symlink("cpu,cpuacct", "sys/fs/cgroup/cpuacct"),
    ]
    assert mounts[1].as_dict() == {"source": "cgroup", "target": "sys/fs/cgroup/memory",
                                   "fstype": "cgroup", "flags": 15, "data": "memory"}
    assert mounts[-1].as_dict() == {"symlink": "cpu,cpuacct", "target": "sys/fs/cgroup/cpuacct"}


# -- real cgroups on this machine (root) -------------------------------------------

class Real:
    """A real driver, a unique parent, and every process started, for cleanup."""

    def __init__(self, driver, parent):
        self.driver, self.parent, self.procs = driver, parent, []

    def popen(self, cg, argv, **kw) -> subprocess.Popen:
        """Start argv already inside ``cg``: the child writes "0" (itself) to
        each cgroup.procs between fork and exec, before it allocates anything."""
        files = [str(f) for f in cg.procs_files()]

        def join():
            for f in files:
                fd = os.open(f, os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)

        p = subprocess.Popen(argv, preexec_fn=join, **kw)
        self.procs.append(p)
        return p

    def dirs(self) -> list[Path]:
        return [root / self.parent for root in self.driver._roots()]


@pytest.fixture
def real():
    if os.geteuid() != 0:
        pytest.skip("real cgroups need root (writes under /sys/fs/cgroup)")
    driver = detect()
    if not (driver.supports()["memory"] and driver.supports()["pids"]):
        pytest.skip(f"no writable memory+pids cgroup controllers here: {driver.why_not()}")
    r = Real(driver, f"container-lab-test-{secrets.token_hex(4)}")
    try:
        yield r
    finally:
        for p in r.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for cid in driver.list_ids(r.parent):
            driver.open(cid, r.parent).destroy()
        driver.remove_parent_if_empty(r.parent)
        assert not any(d.exists() for d in r.dirs()), "test cgroups left behind"


@pytest.mark.root
def test_real_limits_usage_and_destroy(real):
    drv = real.driver
    cg = drv.create("limits", Limits(memory=32 * M, pids=20, cpus=0.5), parent=real.parent)
    assert cg.warnings == ()
    if drv.name == "v1":
        mem, pids, cpu = cg._dir("memory"), cg._dir("pids"), cg._dir("cpu")
        assert read(mem / "memory.limit_in_bytes").strip() == str(32 * M)
        if (mem / "memory.memsw.limit_in_bytes").exists():
            assert read(mem / "memory.memsw.limit_in_bytes").strip() == str(32 * M)
        assert read(pids / "pids.max").strip() == "20"
        assert read(cpu / "cpu.cfs_quota_us").strip() == "50000"
        assert read(cpu / "cpu.cfs_period_us").strip() == "100000"
    else:
        d = cg.paths["unified"]
        assert read(d / "memory.max").strip() == str(32 * M)
        assert read(d / "pids.max").strip() == "20"
        assert read(d / "cpu.max").strip() == "50000 100000"
        if (d / "memory.swap.max").exists():
            assert read(d / "memory.swap.max").strip() == "0"

    inside = real.popen(cg, ["sleep", "30"])               # joins itself before exec
    joined = subprocess.Popen(["sleep", "30"])             # joined from outside
    real.procs.append(joined)
    cg.join(joined.pid)
    assert cg.pids() == sorted([inside.pid, joined.pid])
    u = cg.usage()
    assert u["pids_current"] == 2 and u["pids_limit"] == 20
    assert u["memory_limit"] == 32 * M and u["memory_current"] > 0
    assert u["cpu_usage_ns"] is not None and u["oom_kills"] == 0 and u["pids_max_hits"] == 0
    assert not cg.oom_killed()

    cg.destroy()
    assert inside.wait(5) == -signal.SIGKILL and joined.wait(5) == -signal.SIGKILL
    assert not any(p.exists() for p in cg.paths.values())
    cg.destroy()                                           # idempotent
    assert drv.list_ids(real.parent) == []
    assert drv.remove_parent_if_empty(real.parent)
    assert not any(d.exists() for d in real.dirs())


@pytest.mark.root
def test_real_memory_hog_is_oom_killed(real):
    cg = real.driver.create("hog", Limits(memory=32 * M, pids=20), parent=real.parent)
    hog = real.popen(cg, [sys.executable, "-c", "b = b'x' * (200 << 20); print('survived')"],
                     stdout=subprocess.PIPE)
    out, _ = hog.communicate(timeout=60)
    assert hog.returncode == -signal.SIGKILL, out
    assert cg.oom_killed()
    assert cg.usage()["oom_kills"] >= 1
    cg.destroy()
    assert not any(p.exists() for p in cg.paths.values())


FORK_LOOP = """
import os, signal, time
kids = []
while True:
    try:
        pid = os.fork()
    except BlockingIOError:          # EAGAIN: pids.max reached
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
print(len(kids), flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
"""


@pytest.mark.root
def test_real_fork_loop_hits_pids_limit(real):
    cg = real.driver.create("forks", Limits(memory=64 * M, pids=20), parent=real.parent)
    p = real.popen(cg, [sys.executable, "-c", FORK_LOOP], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert 0 < int(out) < 20                               # the parent counts as one of 20
    assert cg.usage()["pids_max_hits"] > 0
    cg.destroy()
    assert not any(path.exists() for path in cg.paths.values())


@pytest.mark.root
def test_real_kill_all_empties_a_busy_cgroup(real):
    cg = real.driver.create("busy", Limits(pids=50), parent=real.parent)
    script = "import os, time\nfor _ in range(5):\n    os.fork()\ntime.sleep(30)\n"
    p = real.popen(cg, [sys.executable, "-c", script])
    wait_until(lambda: len(cg.pids()) >= 32, message="32 processes in the cgroup")
    assert len(cg.pids()) == 32                            # 2**5 processes
    assert cg.kill_all() is True
    assert cg.pids() == []
    assert p.wait(5) == -signal.SIGKILL
    cg.destroy()
    assert not cg.exists()
