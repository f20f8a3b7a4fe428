"""What every benchmark here shares: a private engine root, and the lines that
say on which machine and which commit a table was measured.

Import it before the engine: :func:`use_engine_root` must set the engine's
environment before ``engine.paths`` reads it.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def use_engine_root(root: Path, cgroup_parent: str) -> None:
    """Point the engine at ``root`` and ``cgroup_parent``, never at a learner's
    containers or cgroups, and make the checkout importable."""
    os.environ["CONTAINER_LAB_ROOT"] = str(root)
    os.environ["CONTAINER_LAB_CGROUP_PARENT"] = cgroup_parent
    os.environ.pop("CONTAINER_LAB_STATE_DIR", None)
    os.environ.pop("CONTAINER_LAB_DATA_DIR", None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1), interpolated between the two nearest samples."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def is_mount(path: Path) -> bool:
    """From mountinfo: os.path.ismount misses a bind mount within one file system."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].replace("\\040", " ") == target for line in f)


def machine() -> str:
    """Cores, distribution, kernel and cgroup layout, in one line."""
    v2root = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    layout = "cgroup v2" if v2root else (
        "cgroup v1 hybrid" if is_mount(Path("/sys/fs/cgroup/unified")) else "cgroup v1")
    distro = "Linux"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    return f"{os.cpu_count()} cores, {distro}, kernel {platform.release()}, {layout}"


def git_info() -> str:
    """The commit measured, and whether the engine had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "engine"],
                               capture_output=True, text=True).stdout.strip()
        return f"`{head}`" + (" + uncommitted engine changes" if dirty else "")
    except OSError:
        return "?"


def clean_engine(root: Path, cgroup_parent: str, *, keep_root: bool = False, log=print) -> None:
    """Remove every container of the bench's engine root, stop its supervisor,
    remove its networks and cgroup parent and (unless ``keep_root``) the root itself.
    Each step is tried even when an earlier one failed."""
    try:
        from engine.client import Client
        client = Client(autostart=False)
        if os.path.exists(client.socket_path):
            for c in client.ps(all=True):
                with contextlib.suppress(Exception):
                    client.remove(c["id"], force=True)
            client.shutdown()
    except Exception as e:  # noqa: BLE001 - keep cleaning
        log(f"  engine containers: {e}")
    try:
        # Its networks' bridges and nftables table: they outlive the root's files otherwise.
        from engine.supervisor.networks import remove_all_networks
        remove_all_networks(root / "lib")
    except Exception as e:  # noqa: BLE001
        log(f"  engine networks: {e}")
    try:
        from engine.cgroups import detect
        detect().remove_parent_if_empty(cgroup_parent)
    except Exception as e:  # noqa: BLE001
        log(f"  cgroup parent {cgroup_parent}: {e}")
    if not keep_root and not (root / "run" / "supervisor.sock").exists():
        shutil.rmtree(root, ignore_errors=True)


def _terminate(*_):
    raise KeyboardInterrupt


def begin(lock_file: Path, log=print):
    """What a benchmark checks before it starts: root, and no other benchmark
    (the lock, held as long as the returned file is open; None: say why and
    stop). Ctrl-C, kill and a closed terminal then all end in the caller's
    clean-up (SIGINT too when the shell that started us had it ignored)."""
    import fcntl
    import signal

    if os.geteuid() != 0:
        log("run me as root: containers with cgroup limits need it")
        return None
    lock = open(lock_file, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another benchmark holds {lock_file}")
        lock.close()
        return None
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    return lock


def run_meta(**extra) -> dict:
    """The header of a result: date, machine, commit, the command line, the load."""
    import time

    command = " ".join([sys.executable, os.path.relpath(os.path.abspath(sys.argv[0]), REPO), *sys.argv[1:]])
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "git": git_info(), "command": command,
            **extra, "load_before": os.getloadavg()[0]}
