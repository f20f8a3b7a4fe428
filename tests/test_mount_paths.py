"""Where volumes land and what they allow.

- A mount target is resolved once from the container's root (RESOLVE_IN_ROOT):
  an image's absolute symlinks (Debian's /var/run -> /run, an
  /etc/resolv.conf -> /run/...) resolve as inside the container, and a
  hostile /escape -> / never leads to the host.
- ``:ro`` is read-only all the way down (and every volume nosuid, nodev):
  a submount of the source is no way around it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import cl, needs_root
from image_support import derived_image

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


@pytest.fixture
def image():
    made = []

    def make(ref, *entries, **kw):
        made.append(derived_image(ref, *entries, **kw))
        return ref
    yield make
    for ref in made:
        cl("rmi", ref)


def test_a_volume_under_debians_var_run_symlink(tmp_path, image):
    ref = image("debianish:1", ("run", "d"), ("var", "d"), ("var/run", "s", "/run"))
    (tmp_path / "hello").write_text("through /var/run\n")
    proc = cl("run", "--rm", "-v", f"{tmp_path}:/var/run/foo", ref,
              "sh", "-c", "cat /var/run/foo/hello; cat /run/foo/hello; readlink /var/run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["through /var/run", "through /var/run", "/run"]


def test_an_image_whose_resolv_conf_is_an_absolute_symlink_starts(image):
    ref = image("resolvedish:1", ("run", "d"), ("run/systemd", "d"), ("run/systemd/resolve", "d"),
                ("etc/resolv.conf", "s", "/run/systemd/resolve/stub-resolv.conf"))
    proc = cl("run", "--rm", ref, "sh", "-c",
              "readlink /etc/resolv.conf; test -f /run/systemd/resolve/stub-resolv.conf && echo bound")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["/run/systemd/resolve/stub-resolv.conf", "bound"]


@pytest.mark.parametrize("link", ["/", "../../../../..", "/proc/self/root"])
def test_a_hostile_escape_symlink_stays_inside(tmp_path, image, link):
    ref = image("escape:1", ("escape", "s", link))
    marker = "/tmp/clt-escape-marker"
    src = tmp_path / "src"
    src.mkdir()
    proc = cl("run", "--rm", "-v", f"{src}:/escape{marker}", ref, "sh", "-c", f"test -d {marker} && echo inside")
    try:
        assert not os.path.exists(marker), "the volume was made on the host"
        if link == "/proc/self/root":
            # Inside the image's root, before /proc is mounted, this names the
            # image's own /proc directory: the volume lands there, hidden by /proc.
            assert proc.returncode == 1 and proc.stdout == "", proc.stderr
        else:
            assert proc.returncode == 0 and proc.stdout.strip() == "inside", proc.stderr
    finally:
        if os.path.isdir(marker):
            os.rmdir(marker)


def test_a_symlinked_proc_dev_or_sys_is_still_refused(image):
    for name in ("proc", "dev", "sys"):
        ref = image(f"linked{name}:1", (name, "s", "/tmp"))
        proc = cl("run", "--rm", ref, "true")
        assert proc.returncode == 125 and f"the image's /{name} is a symlink" in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0


# -- :ro all the way down ------------------------------------------------------------

@pytest.fixture
def source_with_submount(tmp_path):
    """A host directory with a tmpfs mounted inside (dev and suid allowed
    there) holding a copy of /dev/null: a real submount, as /sys/fs/cgroup has."""
    src = tmp_path / "src"
    sub = src / "sub"
    sub.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,dev,suid", "lab-sub", str(sub)], check=True)
    try:
        subprocess.run(["mknod", "-m", "666", str(sub / "null"), "c", "1", "3"], check=True)
        (sub / "file").write_text("original\n")
        yield src
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


SHOW = ("findmnt -rn -o TARGET,OPTIONS | grep '^/v' | sort; "
        "echo changed > /v/sub/file && echo wrote=yes || echo wrote=no; "
        "head -c1 /v/sub/null >/dev/null && echo dev=yes || echo dev=no")


def _mounts(out: str) -> dict[str, set[str]]:
    return {line.split()[0]: set(line.split()[1].split(",")) for line in out.splitlines()
            if line.startswith("/v")}


def test_a_read_only_volume_is_read_only_nosuid_and_nodev_down_to_its_submounts(source_with_submount):
    proc = cl("run", "--rm", "-v", f"{source_with_submount}:/v:ro", "lab", "sh", "-c", SHOW)
    assert proc.returncode == 0, proc.stderr
    mounts = _mounts(proc.stdout)
    assert set(mounts) == {"/v", "/v/sub"}, proc.stdout
    for target, opts in mounts.items():
        assert {"ro", "nosuid", "nodev"} <= opts, (target, opts)
    assert "wrote=no" in proc.stdout and "dev=no" in proc.stdout
    assert (source_with_submount / "sub" / "file").read_text() == "original\n"


def test_a_read_write_volume_is_nosuid_and_nodev_down_to_its_submounts(source_with_submount):
    proc = cl("run", "--rm", "-v", f"{source_with_submount}:/v", "lab", "sh", "-c", SHOW)
    assert proc.returncode == 0, proc.stderr
    mounts = _mounts(proc.stdout)
    for target, opts in mounts.items():
        assert {"rw", "nosuid", "nodev"} <= opts, (target, opts)
    assert "wrote=yes" in proc.stdout and "dev=no" in proc.stdout


def test_the_cgroup_tree_mounted_read_only_cannot_raise_a_limit():
    """The brief's own case: -v /sys/fs/cgroup:/cg:ro, then a write to a
    pids.max through the submount of its hierarchy (cgroup v1) or the tree (v2)."""
    proc = cl("run", "--rm", "--pids-limit", "50", "-v", "/sys/fs/cgroup:/cg:ro", "lab", "sh", "-c",
              "f=$(find /cg -name pids.max -path '*container-lab*' 2>/dev/null | head -1); "
              "echo file=${f:+found}; echo 4000 > $f && echo raised=yes || echo raised=no; "
              "findmnt -rn -o TARGET,OPTIONS | grep '^/cg' | grep -vc '\\bro\\b'")
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.split()
    assert "file=found" in lines and "raised=no" in lines, proc.stdout
    assert lines[-1] == "0", "a mount under /cg is not read-only: " + proc.stdout


def test_the_transcript_shows_the_recursive_attributes(tmp_path):
    cl("run", "--name", "rotrans", "-v", f"{tmp_path}:/v:ro", "lab", "true", check=True)
    try:
        text = cl("inspect", "--transcript", "rotrans").stdout
        assert "mount -o remount,bind,ro=recursive,nosuid,nodev /v" in text, text
        record = json.loads(cl("inspect", "rotrans").stdout)[0]
        assert record["config"]["volumes"] == [{"source": str(tmp_path), "target": "/v", "readonly": True}]
    finally:
        cl("rm", "rotrans")
