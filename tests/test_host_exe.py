"""No process a container can see or reach runs a host file (CVE-2019-5736's class).

Every container process starts as a fork of the supervisor, a Python process.
The attacks replayed here, each against real containers:

* a ``#!/proc/self/exe`` script made the target of an ``exec``: the kernel
  resolves the ``#!`` line in the supervisor's fork, so its interpreter starts
  inside the container -- it must be the supervisor's sealed copy, never the
  host's interpreter file, and a write through ``/proc/PID/exe`` must fail;
* ``--init``: PID 1 must be tini run from a sealed copy, not a fork of the
  supervisor (whose memory holds every container's ``-e`` secrets), and still
  reap orphans, pass SIGTERM on and exit as the command did;
* the first process, paused between its stages in a PID namespace it shares:
  not dumpable, so its memory (the supervisor's) cannot be read.

The probes are small static C programs built here with gcc and bound into
the containers read-only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import secrets
import select
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from conftest import REPO, cl, needs_root
from waiting import wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

SEALED = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE

# memgrep PID HEX...: search the readable memory of PID for each needle (given
# in hex, so a needle never sits in any process's command line as it is).
MEMGREP = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t unhex(const char *s, char *out) {
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        char b[3] = {s[0], s[1], 0};
        out[n++] = (char)strtol(b, NULL, 16);
    }
    return n;
}

int main(int argc, char **argv) {
    char path[64], line[512];
    if (argc < 3) return 2;
    snprintf(path, sizeof path, "/proc/%s/maps", argv[1]);
    FILE *maps = fopen(path, "r");
    if (!maps) { printf("error: %s: %s\n", path, strerror(errno)); return 2; }
    snprintf(path, sizeof path, "/proc/%s/mem", argv[1]);
    int mem = open(path, O_RDONLY);
    if (mem < 0) { printf("error: %s: %s\n", path, strerror(errno)); return 2; }
    int n = argc - 2;
    char *needle[n]; size_t len[n]; int found[n];
    for (int i = 0; i < n; i++) {
        needle[i] = malloc(strlen(argv[i + 2]));
        len[i] = unhex(argv[i + 2], needle[i]);
        found[i] = 0;
    }
    const size_t chunk = 1 << 20, overlap = 4096;
    char *buf = malloc(chunk + overlap);
    size_t total = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi; char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r') continue;
        if (strstr(line, "[vvar") || strstr(line, "[vsyscall]")) continue;
        for (unsigned long at = lo; at < hi; at += chunk) {
            size_t want = hi - at < chunk + overlap ? hi - at : chunk + overlap;
            ssize_t got = pread(mem, buf, want, (off_t)at);
            if (got <= 0) break;
            total += (size_t)got;
            for (int i = 0; i < n; i++)
                if (!found[i] && memmem(buf, (size_t)got, needle[i], len[i])) found[i] = 1;
        }
    }
    printf("read %zu bytes\n", total);
    for (int i = 0; i < n; i++) printf("%s %s\n", argv[i + 2], found[i] ? "found" : "absent");
    return 0;
}
"""

# exeprobe PATH: open PATH (e.g. /proc/1/exe) as an attacker would, print its
# seals, then reopen that handle for writing and append one byte.
EXEPROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char self[64];
    if (argc < 2) return 2;
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) { printf("open=%s\n", strerror(errno)); return 2; }
    printf("seals=%d\n", fcntl(fd, F_GET_SEALS));
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int w = open(self, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w < 0) { printf("write=%s\n", strerror(errno)); return 0; }
    if (write(w, "", 1) == 1) printf("write=ok\n");
    else printf("write=%s\n", strerror(errno));
    return 0;
}
"""


@pytest.fixture(scope="module")
def helpers(tmp_path_factory) -> Path:
    """The probes, built static (they run in any image) into a directory to bind."""
    if shutil.which("gcc") is None:
        pytest.skip("needs Debian's gcc and libc6-dev to build the probes")
    out = tmp_path_factory.mktemp("helpers")
    for name, source in (("memgrep", MEMGREP), ("exeprobe", EXEPROBE)):
        (out / f"{name}.c").write_text(source)
        proc = subprocess.run(["gcc", "-static", "-O2", "-o", str(out / name), str(out / f"{name}.c")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    out.chmod(0o755)
    return out


@pytest.fixture
def names():
    """Container names for one test, removed whatever happens."""
    made: list[str] = []

    def name(base: str) -> str:
        made.append(f"hx-{base}-{os.getpid()}")
        return made[-1]
    yield name
    for n in made:
        cl("rm", "-f", n)


def interpreter() -> str:
    """The real file of the interpreter the supervisor runs (a venv's python is a symlink)."""
    return os.path.realpath(sys.executable)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def inspect(name: str) -> dict:
    return json.loads(cl("inspect", name, check=True).stdout)[0]


def pids_in_namespace(ns_inode: int) -> list[int]:
    """Host pids of the processes in the PID namespace ``ns_inode``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == ns_inode:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def inner_pid(host_pid: int) -> int:
    """The pid ``host_pid`` has in its own (innermost) PID namespace."""
    status = Path(f"/proc/{host_pid}/status").read_text()
    return int(re.search(r"^NSpid:\s*(.*)$", status, re.M).group(1).split()[-1])


def probe(name: str, target: str) -> dict[str, str]:
    """Run exeprobe on ``target`` inside container ``name``."""
    proc = cl("exec", name, "/helpers/exeprobe", target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines())


def python_binds() -> tuple[list[str], list[str]]:
    """-v options and -e options with which the host's interpreter, once it
    runs inside a container, finds its libraries and stdlib (read-only) and
    so stays alive: the attack needs it only for a moment, a test for longer."""
    stdlib = sysconfig.get_path("stdlib")
    volumes = ["-v", f"{stdlib}:/pyhome/lib/{os.path.basename(stdlib)}:ro"]
    ldd = subprocess.run(["ldd", interpreter()], capture_output=True, text=True, check=True).stdout
    for lib in re.findall(r"=> (/\S+)", ldd):
        volumes += ["-v", f"{lib}:/pylibs/{os.path.basename(lib)}:ro"]
    return volumes, ["-e", "PYTHONHOME=/pyhome", "-e", "LD_LIBRARY_PATH=/pylibs"]


def test_exec_of_a_proc_self_exe_script_runs_a_sealed_copy_not_the_host_interpreter(helpers, names):
    """The red team's attack (b): `#!/proc/self/exe` as the container's sh."""
    before = sha256(interpreter())
    volumes, env = python_binds()
    name = names("shebang")
    cl("run", "-d", "--name", name, "-v", f"{helpers}:/helpers:ro", *volumes, "lab", "sleep", "300", check=True)
    script = ("printf '#!/proc/self/exe -S\\nimport time\\nopen(\"/tmp/ran\", \"w\").close()\\n"
              "time.sleep(300)\\n' > /usr/bin/evil && chmod 755 /usr/bin/evil && ln -sf /usr/bin/evil /usr/bin/sh")
    cl("exec", name, "bash", "-c", script, check=True)
    cl("exec", "-d", *env, name, "sh", "-c", "true", check=True)

    ns = inspect(name)["namespaces"]["pid"]["container"]

    def evil() -> int | None:
        for pid in pids_in_namespace(ns):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:3] == [b"/proc/self/exe", b"-S", b"/usr/bin/sh"] and os.path.exists(f"/proc/{pid}/root/tmp/ran"):
                return pid
        return None
    pid = wait_until(evil, timeout=20, message="the #!/proc/self/exe script to run in the container")

    # The host's view: the interpreter running in the container is not the host's file ...
    exe = os.stat(f"/proc/{pid}/exe")
    assert not same_file(exe, os.stat(interpreter())), "the host's interpreter runs inside the container"
    # ... but the supervisor's sealed copy of it: its bytes, sealed against any write.
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALED == SEALED
    finally:
        os.close(fd)
    assert sha256(f"/proc/{pid}/exe") == before

    # From inside: a handle to it cannot be written.
    seen = probe(name, f"/proc/{inner_pid(pid)}/exe")
    assert int(seen["seals"]) & SEALED == SEALED and seen["write"] != "ok", seen
    assert sha256(interpreter()) == before


def test_init_is_a_sealed_copy_of_tini_that_the_container_cannot_write(helpers, names):
    """The red team's attack (a): `exec 3>>/proc/1/exe` under --init."""
    tini = "/usr/bin/tini-static"
    before = sha256(interpreter()), sha256(tini)
    name = names("init")
    cl("run", "-d", "--init", "--name", name, "-v", f"{helpers}:/helpers:ro", "lab", "sleep", "300", check=True)
    pid = inspect(name)["pid"]
    exe = os.stat(f"/proc/{pid}/exe")
    assert not same_file(exe, os.stat(interpreter())) and not same_file(exe, os.stat(tini))
    assert sha256(f"/proc/{pid}/exe") == before[1]          # tini's bytes, from memory
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:")
    seen = probe(name, "/proc/1/exe")
    assert int(seen["seals"]) & SEALED == SEALED and seen["write"] != "ok", seen
    shell = cl("exec", name, "sh", "-c", "exec 3>>/proc/1/exe && echo opened")
    assert shell.returncode != 0 and "opened" not in shell.stdout
    assert (sha256(interpreter()), sha256(tini)) == before


def test_init_memory_holds_no_other_containers_secret(helpers, names):
    """Attack 2: PID 1 under --init was a fork of the supervisor, with every
    container's configuration in its memory."""
    other, own = f"pw-{secrets.token_hex(12)}", f"own-{secrets.token_hex(12)}"
    holder = names("holder")
    cl("run", "-d", "--name", holder, "-e", f"DB_PASSWORD={other}", "lab", "sleep", "300", check=True)
    proc = cl("run", "--rm", "--init", "-e", f"OWN={own}", "-v", f"{helpers}:/helpers:ro", "lab",
              "/helpers/memgrep", "1", own.encode().hex(), other.encode().hex())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The probe reads PID 1 (its own environment is there) ...
    assert f"{own.encode().hex()} found" in proc.stdout, proc.stdout
    # ... and another container's password is not.
    assert f"{other.encode().hex()} absent" in proc.stdout, proc.stdout


def test_the_first_process_is_not_dumpable_before_it_execs(helpers, names):
    """A first process joining another container's PID namespace is seen there
    while it is built: paused after its capabilities are dropped, it is still
    a copy of the supervisor, and its memory must stay out of reach."""
    from engine.client import Client
    from engine.spec import ContainerConfig

    other = f"pw-{secrets.token_hex(12)}"
    holder, peer = names("holder2"), names("peer")
    cl("run", "-d", "--name", holder, "-e", f"DB_PASSWORD={other}", "lab", "sleep", "300", check=True)
    cl("run", "-d", "--name", peer, "-v", f"{helpers}:/helpers:ro", "lab", "sleep", "300", check=True)
    start = Client().run_stepwise(ContainerConfig("lab", cmd=["true"], pid_mode=f"container:{peer}", remove=True))
    probed = None
    try:
        while (report := start.next_stage()) is not None:
            if report["paused"] and report["stage"]["id"] == "capabilities":
                probed = cl("exec", peer, "/helpers/memgrep", str(inner_pid(start.pid)), other.encode().hex())
            if report["paused"]:
                start.proceed()
        assert start.wait()["exit_code"] == 0
    finally:
        start.close()
    assert probed is not None, "the start never paused after its capabilities stage"
    assert "found" not in probed.stdout, probed.stdout
    assert probed.returncode == 2 and "Permission denied" in probed.stdout, probed.stdout


def test_init_reaps_orphans_forwards_sigterm_and_returns_the_exit_code(names):
    from engine.client import Client

    assert cl("run", "--rm", "--init", "lab", "sh", "-c", "exit 7").returncode == 7
    name = names("duties")
    # (true &) leaves an orphan: its parent subshell exits at once, so it is
    # handed to PID 1, which must reap it when it exits.
    cl("run", "-d", "--init", "--name", name, "lab", "sh", "-c", "(true &); (true &); exec sleep 300", check=True)
    info = inspect(name)
    pid, ns = info["pid"], info["namespaces"]["pid"]["container"]
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"init", b"--"]
    assert sha256(f"/proc/{pid}/exe") == sha256("/usr/bin/tini-static")

    def only_init_and_sleep() -> bool:
        comms = sorted(Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()
                       for p in pids_in_namespace(ns))
        return comms == ["init", "sleep"]
    wait_until(only_init_and_sleep, timeout=20, message="the orphans to be reaped (only the init and sleep left)")
    Client().kill(name, 15)         # sleep has no handler: SIGTERM ends it, via the init
    assert cl("wait", name).stdout.strip() == "143"


def test_init_with_a_terminal_makes_the_command_the_foreground_job():
    """-t --init: the command's process group, not tini's, owns the terminal (so
    Ctrl-C reaches the command once); PID 1 runs from the sealed copy."""
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "engine.cli", "run", "--rm", "-t", "--init", "lab",
                                  "sh", "-c", "readlink /proc/1/exe; ps -o pid=,pgid=,tpgid=,args= -p 1,2"])
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:         # EIO: the other side has closed
            break
        if not data:
            break
        out += data
    os.close(master)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    lines = out.decode().replace("\r", "").splitlines()
    assert lines[0].startswith("/memfd:"), lines
    rows = {int(f[0]): f for f in (line.split(None, 3) for line in lines[1:] if line.strip())}
    assert rows[1][3].startswith("init -- sh -c") and rows[2][3].startswith("sh -c")
    tpgid = int(rows[2][2])
    assert tpgid == int(rows[2][1]) == 2 and int(rows[1][1]) != tpgid, rows


def test_init_missing_says_to_install_tini(tmp_path):
    """Where tini is not installed, `run --init` fails with one line naming the
    package: a supervisor of its own, in a mount namespace where tini-static is
    hidden under /dev/null."""
    from engine import sealed

    hidden = sorted({os.path.join(d, n) for d in sealed.INIT_DIRS for n in sealed.INIT_NAMES
                     if os.path.exists(os.path.join(d, n))})
    assert hidden, "tini-static is not installed (Debian's tini package)"
    root = tmp_path / "root"
    env = {**os.environ, "CONTAINER_LAB_ROOT": str(root)}
    hide = " && ".join(f"mount --bind /dev/null {path}" for path in hidden)
    try:
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{hide} && exec "$@"',
                               "sh", sys.executable, "-m", "engine.cli", "run", "--rm", "--init", "lab", "true"],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 125, proc.stdout + proc.stderr
        assert proc.stderr.strip() == f"container-lab: {sealed.INIT_MISSING}", proc.stderr
        left = subprocess.run([sys.executable, "-m", "engine.cli", "ps", "-aq"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert left.returncode == 0 and left.stdout == "", left.stdout + left.stderr
    finally:
        subprocess.run([sys.executable, "-c", "from engine.client import Client; Client(autostart=False).shutdown()"],
                       env=env, cwd=REPO, timeout=60)


def test_doctor_says_when_tini_is_missing(monkeypatch):
    from engine import doctor, sealed

    monkeypatch.setattr(sealed, "INIT_NAMES", ("tini-static-not-installed",))
    monkeypatch.setattr(sealed, "_init", None)
    with pytest.raises(OSError) as e:
        sealed.init_copy()
    assert str(e.value) == sealed.INIT_MISSING and "\n" not in str(e.value) and "tini" in str(e.value)
    report = doctor.diagnose()
    check = next(c for c in report["checks"] if c["id"] == "init")
    assert check == {"id": "init", "ok": False, "detail": sealed.INIT_MISSING}
    assert report["ok"]                    # containers still run; only --init cannot


def test_the_supervisor_runs_from_a_sealed_copy_of_its_interpreter():
    from engine.client import Client

    Client().ping()
    pid = _supervisor_pid()
    exe = os.stat(f"/proc/{pid}/exe")
    assert not same_file(exe, os.stat(interpreter()))
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALED == SEALED
    finally:
        os.close(fd)
    # It found its virtual environment and our package, as the original would have.
    assert sha256(f"/proc/{pid}/exe") == sha256(interpreter())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[0] == sys.executable.encode() and b"engine.supervisor" in argv


def _supervisor_pid() -> int:
    """The pid of this test session's supervisor: the peer of its socket."""
    import socket
    import struct

    from engine.client import Client

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(Client(autostart=False).socket_path)
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]
