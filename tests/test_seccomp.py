"""The system call filter: the BPF program read back rule by rule, then real
containers whose calls the kernel refuses (or, unconfined, lets through)."""

from __future__ import annotations

import errno
import json

import pytest

from engine import seccomp
from engine.errors import InvalidArgument
from engine.spec import ContainerConfig, parse_security_opts

from conftest import cl, needs_root

ERRNO = seccomp.RET_ERRNO
EPERM, ENOSYS, ALLOW = ERRNO | errno.EPERM, ERRNO | errno.ENOSYS, seccomp.RET_ALLOW
CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x40000000, 17
THREAD_FLAGS = 0x3D0F00          # what glibc's pthread_create passes to clone


@pytest.mark.parametrize("machine", sorted(seccomp.NUMBERS))
def test_the_program_refuses_every_listed_call_and_nothing_else(machine):
    prog = seccomp.program(machine)
    arch, nums = seccomp.AUDIT_ARCH[machine], seccomp.NUMBERS[machine]
    names = seccomp.refused(machine)
    assert len(names) == len(set(names)) and {"unshare", "setns", "mount", "keyctl", "bpf"} <= set(names)
    for name in names:
        assert seccomp.run(prog, arch, nums[name]) == EPERM, name
    refused = {nums[n] for n in names} | {nums["clone"], nums["clone3"]}
    allowed = [nr for nr in range(460) if nr not in refused]
    assert all(seccomp.run(prog, arch, nr) == ALLOW for nr in allowed)
    # clone: forks and threads pass, a namespace does not; clone3 sends the C library back to clone.
    assert seccomp.run(prog, arch, nums["clone"], (SIGCHLD,)) == ALLOW
    assert seccomp.run(prog, arch, nums["clone"], (THREAD_FLAGS,)) == ALLOW
    assert seccomp.run(prog, arch, nums["clone"], (CLONE_NEWUSER | SIGCHLD,)) == EPERM
    assert seccomp.run(prog, arch, nums["clone"], (CLONE_NEWNET,)) == EPERM
    assert seccomp.run(prog, arch, nums["clone3"]) == ENOSYS
    # Another ABI has other numbers: nothing of it gets through a filter by number.
    other = seccomp.AUDIT_ARCH["aarch64" if machine == "x86_64" else "x86_64"]
    assert seccomp.run(prog, other, 0) == ENOSYS
    assert seccomp.run(prog, 0x40000003, 1) == ENOSYS          # AUDIT_ARCH_I386 (int 0x80)
    packed = seccomp.pack(prog)
    assert len(packed) == 8 * len(prog)


def test_x32_calls_are_refused_on_x86_64():
    prog = seccomp.program("x86_64")
    assert seccomp.run(prog, seccomp.AUDIT_ARCH["x86_64"], seccomp.X32_SYSCALL_BIT | 0) == ENOSYS


def test_no_program_for_an_unknown_architecture():
    assert seccomp.program("riscv64") is None and seccomp.refused("riscv64") == []


@pytest.mark.parametrize("opts, fields", [
    (["seccomp=unconfined"], {"seccomp": "unconfined"}),
    (["seccomp:unconfined"], {"seccomp": "unconfined"}),
    (["no-new-privileges"], {"no_new_privileges": True}),
    (["no-new-privileges=false"], {"no_new_privileges": False}),
    (["no-new-privileges:true", "seccomp=unconfined"], {"no_new_privileges": True, "seccomp": "unconfined"}),
])
def test_security_opts(opts, fields):
    assert parse_security_opts(opts) == fields
    ContainerConfig("lab", **fields).validate()


@pytest.mark.parametrize("opt, words", [
    ("seccomp=/tmp/profile.json", "profiles from a file are not supported"),
    ("apparmor=unconfined", "apparmor is not supported"),
    ("no-new-privileges=maybe", "invalid --security-opt"),
    ("privileged", "invalid --security-opt"),
])
def test_bad_security_opts_are_named(opt, words):
    with pytest.raises(InvalidArgument, match=words):
        parse_security_opts([opt])


def test_a_bad_seccomp_mode_in_a_config_is_refused():
    with pytest.raises(InvalidArgument, match="invalid seccomp mode"):
        ContainerConfig("lab", seccomp="off").validate()


# -- real containers ------------------------------------------------------------------

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t '"


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_container_cannot_make_or_join_namespaces_or_load_keys():
    proc = cl("run", "--rm", "lab", "sh", "-c",
              f"{STATUS}; unshare --user true; echo user=$?; unshare --net true; echo net=$?; "
              "nsenter -t 1 -u true; echo join=$?; echo fork-and-pipe-still-work | cat")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert "Seccomp:2" in lines and "NoNewPrivs:0" in lines
    assert {"user=1", "net=1", "join=1", "fork-and-pipe-still-work"} <= set(lines)
    assert proc.stderr.count("Operation not permitted") == 3, proc.stderr


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_unconfined_and_no_new_privileges():
    proc = cl("run", "--rm", "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges",
              "lab", "sh", "-c", f"{STATUS}; unshare --user true; echo user=$?")
    assert proc.returncode == 0, proc.stderr
    assert {"Seccomp:0", "NoNewPrivs:1", "user=0"} <= set(proc.stdout.split())


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_exec_and_init_get_the_containers_filter_and_the_transcript_says_so():
    cl("run", "-d", "--init", "--name", "filtered", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", "open", "--security-opt", "seccomp=unconfined", "lab", "sleep", "300", check=True)
    try:
        inside = cl("exec", "filtered", "sh", "-c",
                    "grep -h Seccomp: /proc/1/status /proc/2/status /proc/self/status | tr -d '\\t '")
        assert inside.stdout.split().count("Seccomp:2") == 3, inside.stdout     # init, command, exec
        assert "Seccomp:0" in cl("exec", "open", "sh", "-c", STATUS).stdout.split()
        record = json.loads(cl("inspect", "filtered").stdout)
        record = record[0] if isinstance(record, list) else record
        assert json.dumps(record).count('"seccomp": "default"') >= 1
        text = cl("inspect", "--transcript", "filtered").stdout
        assert "[seccomp]" in text and "calls refused" in text
        assert text.index("[seccomp]") < text.index("[capabilities]")
        assert "[seccomp]" not in cl("inspect", "--transcript", "open").stdout
    finally:
        cl("rm", "-f", "filtered", "open")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_bad_security_opt_is_a_one_line_error():
    proc = cl("run", "--rm", "--security-opt", "seccomp=/nonexistent.json", "lab", "true")
    assert proc.returncode == 125
    assert proc.stderr.strip().count("\n") == 0 and "profiles from a file are not supported" in proc.stderr


# -- socket families (Docker's profile: no AF_VSOCK, and here no AF_ALG either) ----------

AF_INET, AF_UNIX, AF_ALG, AF_VSOCK = 2, 1, 38, 40


@pytest.mark.parametrize("machine", sorted(seccomp.NUMBERS))
def test_the_program_refuses_vsock_and_alg_sockets_and_no_other_family(machine):
    prog, arch = seccomp.program(machine), seccomp.AUDIT_ARCH[machine]
    nr = seccomp.NUMBERS[machine]["socket"]
    assert seccomp.run(prog, arch, nr, (AF_VSOCK, 1, 0)) == EPERM
    assert seccomp.run(prog, arch, nr, (AF_ALG, 5, 0)) == EPERM
    for family in [f for f in range(64) if f not in (AF_VSOCK, AF_ALG)]:
        assert seccomp.run(prog, arch, nr, (family, 1, 0)) == ALLOW, family
    # The family is an int: the kernel reads its low 32 bits, and so does the filter.
    assert seccomp.run(prog, arch, nr, ((1 << 32) | AF_VSOCK, 1, 0)) == EPERM
    # socketpair, connect ... are not socket: untouched.
    assert seccomp.run(prog, arch, nr + 1, (AF_VSOCK,)) == ALLOW


SOCKETS_C = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    int families[] = {40, 38, 2, 1};
    const char *names[] = {"vsock", "alg", "inet", "unix"};
    int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM, SOCK_STREAM};
    for (int i = 0; i < 4; i++) {
        int fd = socket(families[i], types[i], 0);
        printf("%s=%s\n", names[i], fd >= 0 ? "ok" : strerror(errno));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def sockets_probe(tmp_path_factory):
    """A static program that opens a socket of each family (the lab image has no compiler)."""
    import shutil
    import subprocess

    if not shutil.which("cc"):
        pytest.skip("needs a C compiler (cc) to build the probe")
    d = tmp_path_factory.mktemp("probe")
    (d / "sockets.c").write_text(SOCKETS_C)
    subprocess.run(["cc", "-static", "-O1", "-o", str(d / "sockets"), str(d / "sockets.c")], check=True)
    (d / "sockets.c").unlink()
    return d


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_container_cannot_open_vsock_or_alg_sockets(sockets_probe):
    # AF_VSOCK reaches the hypervisor whatever the network namespace: --network none must hold.
    proc = cl("run", "--rm", "--network", "none", "-v", f"{sockets_probe}:/probe:ro", "lab", "/probe/sockets")
    assert proc.returncode == 0, proc.stderr
    got = dict(line.split("=", 1) for line in proc.stdout.split("\n") if "=" in line)
    assert got["vsock"] == "Operation not permitted" and got["alg"] == "Operation not permitted", got
    assert got["inet"] == "ok" and got["unix"] == "ok", got
    # Unconfined, the kernel itself answers (this machine has vsock): the filter made the difference.
    open_ = cl("run", "--rm", "--security-opt", "seccomp=unconfined", "-v", f"{sockets_probe}:/probe:ro",
               "lab", "/probe/sockets")
    assert "vsock=Operation not permitted" not in open_.stdout, open_.stdout
    text = cl("run", "--name", "vsockscript", "lab", "true", check=True) and \
        cl("inspect", "--transcript", "vsockscript").stdout
    cl("rm", "vsockscript")
    assert "AF_VSOCK and AF_ALG sockets refused" in text
