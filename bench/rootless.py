#!/usr/bin/env python3
"""Rootless start-up: container-lab as a normal user, side by side with
podman's rootless mode and bubblewrap as the same user, and with
container-lab as root -- in ONE run, interleaved.

    sudo .venv/bin/python bench/rootless.py [--runs N]

What is timed (wall time of the whole command, a fresh process each run):

* ``cl-rootless``  ``python3 -m engine.cli run --rm --network none lab true`` as
                   the bench user (Debian's python3 on a compiled copy of this
                   tree; its supervisor already running, in a user namespace of
                   the user's with a subordinate range): no limits (no delegated
                   cgroup on this machine, most likely).
* ``cl-rootless-bridge``  the same on the default network: a veth pair to the
                   bridge in the engine's own network namespace (pasta's).
* ``cl-root``      ``container-lab run --rm --network none lab true`` as root
                   (the venv's entry point): the same container with cgroup limits.
* ``podman``       ``podman --runtime crun run --rm --cgroups disabled --network
                   none --rootfs ROOTFS:O true`` as the bench user (rootless
                   podman: its own user namespace from the same subordinate
                   range, an overlay over the same files; no cgroup, as ours has
                   none without delegation; runc will not run without one). On
                   a hybrid machine crun refuses to start while a cgroup2 is
                   mounted beside v1: it runs in a mount namespace without
                   /sys/fs/cgroup/unified, as bench/startup.py runs it.
* ``bwrap``        ``bwrap --unshare-all --bind ROOTFS / --proc /proc --dev /dev
                   true`` as the bench user: namespaces only, no overlay, no
                   image, no supervisor.

ROOTFS is the lab image's layer as the bench user's engine unpacked it. The
user, its range, the copy and everything the engines made are removed at the
end. Installs podman and bubblewrap with apt-get when missing.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER = "clt-bench"
SUBID = 600000
PACKAGES = ("markdown_it", "mdit_py_plugins", "mdurl", "pyroute2", "dns")


def sh(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def setup(base: Path) -> tuple[dict, int, int]:
    for tool, pkg in (("podman", "podman"), ("bwrap", "bubblewrap"), ("newuidmap", "uidmap")):
        if not shutil.which(tool):
            sh("apt-get", "install", "-y", "-qq", pkg, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.run(["userdel", "-r", USER], capture_output=True)
    home = base / "home"
    sh("useradd", "--home-dir", str(home), "--shell", "/bin/sh", USER)
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = [ln for ln in Path(path).read_text().splitlines(keepends=True) if not ln.startswith(USER + ":")]
        Path(path).write_text("".join(lines) + f"{USER}:{SUBID}:65536\n")
    pw = pwd.getpwnam(USER)
    home.mkdir(mode=0o700)
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700)
    for d in (home, run_dir):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    src = base / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("engine",):            # (+ pyroute2 and dnspython below, for the bridge)
        shutil.copytree(REPO / part, src / part, ignore=ignore)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    for name in PACKAGES:
        if (site / name).is_dir():
            shutil.copytree(site / name, src / name, ignore=ignore)
    # Compiled, as `pip install` leaves a package: the user cannot write here.
    sh("/usr/bin/python3", "-m", "compileall", "-q", str(src))
    sh("chmod", "-R", "a+rX", str(base))
    env = {"HOME": str(home), "USER": USER, "LOGNAME": USER, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "XDG_RUNTIME_DIR": str(run_dir), "LANG": "C.UTF-8", "PYTHONPATH": str(src)}
    return env, pw.pw_uid, pw.pw_gid


def as_user(env, uid, gid, argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, user=uid, group=gid, extra_groups=[], cwd=env["HOME"],
                          capture_output=True, text=True, **kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="runs per tool (default 30)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/rootless.py: needs root (it makes the bench user); run it with sudo", file=sys.stderr)
        return 1
    for var in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"):
        os.environ.pop(var, None)
    # pasta needs /dev/net/tun open to users, as Debian's udev leaves it (some machines keep it 0600).
    tun = Path("/dev/net/tun")
    tun_mode = tun.stat().st_mode & 0o777 if tun.exists() else None
    if tun_mode is not None and tun_mode != 0o666:
        tun.chmod(0o666)
    base = Path(tempfile.mkdtemp(prefix="clt-bench-rootless-", dir="/tmp"))
    os.chmod(base, 0o755)
    root_env = {**os.environ, "CONTAINER_LAB_ROOT": str(base / "root-engine")}
    try:
        env, uid, gid = setup(base)
        cl = ["/usr/bin/python3", "-m", "engine.cli"]
        warm = as_user(env, uid, gid, [*cl, "run", "--rm", "lab", "true"])
        if warm.returncode != 0:
            print(f"rootless engine failed: {warm.stderr}", file=sys.stderr)
            return 1
        layers = Path(env["HOME"]) / ".local/share/container-lab/images/layers"
        rootfs = next(p for p in layers.iterdir() if p.is_dir())
        subprocess.run([str(REPO / ".venv/bin/container-lab"), "run", "--rm", "--network", "none", "lab", "true"],
                       env=root_env, check=True, capture_output=True)
        commands = {
            "cl-rootless": lambda: as_user(env, uid, gid, [*cl, "run", "--rm", "--network", "none", "lab", "true"]),
            "cl-rootless-bridge": lambda: as_user(env, uid, gid, [*cl, "run", "--rm", "lab", "true"]),
            "cl-root": lambda: subprocess.run([str(REPO / ".venv/bin/container-lab"), "run", "--rm", "--network",
                                               "none", "lab", "true"], env=root_env, capture_output=True),
            "podman": lambda: subprocess.run(
                ["unshare", "-m", "sh", "-c", 'umount /sys/fs/cgroup/unified 2>/dev/null; exec setpriv --reuid "$0" '
                 '--regid "$1" --clear-groups podman --runtime crun run --rm --cgroups disabled --network none '
                 '--rootfs "$2":O true', str(uid), str(gid), str(rootfs)],
                env=env, cwd=env["HOME"], capture_output=True, text=True),
            "bwrap": lambda: as_user(env, uid, gid, ["bwrap", "--unshare-all", "--bind", str(rootfs), "/",
                                                     "--proc", "/proc", "--dev", "/dev", "true"]),
        }
        for name, run in list(commands.items()):
            r = run()
            if r.returncode != 0:
                print(f"{name}: not run ({(r.stderr or '').strip().splitlines()[-1:]})")
                del commands[name]
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for i in range(args.runs):
            order = names[i % len(names):] + names[:i % len(names)]      # rotate: noise falls on all alike
            for name in order:
                t0 = time.perf_counter()
                r = commands[name]()
                elapsed = time.perf_counter() - t0
                if r.returncode == 0:
                    times[name].append(elapsed * 1000)
        base_median = statistics.median(times["cl-rootless"])
        print(f"{'tool':<19} {'median ms':>10} {'p10':>8} {'p90':>8} {'ratio':>7}   (runs: {args.runs}, load "
              f"{os.getloadavg()[0]:.1f})")
        for name, values in times.items():
            values.sort()
            med = statistics.median(values)
            p10, p90 = values[len(values) // 10], values[(len(values) * 9) // 10]
            print(f"{name:<19} {med:>10.1f} {p10:>8.1f} {p90:>8.1f} {med / base_median:>7.2f}")
        return 0
    finally:
        subprocess.run(["pkill", "-9", "-u", USER], capture_output=True)
        time.sleep(0.3)
        subprocess.run([sys.executable, "-c", "from engine.client import Client; Client(autostart=False).shutdown()"],
                       env={**root_env, "PYTHONPATH": str(REPO)}, capture_output=True)
        subprocess.run(["userdel", "-f", USER], capture_output=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            lines = [ln for ln in Path(path).read_text().splitlines(keepends=True) if not ln.startswith(USER + ":")]
            Path(path).write_text("".join(lines))
        shutil.rmtree(base, ignore_errors=True)
        if tun_mode is not None and tun_mode != 0o666:
            tun.chmod(tun_mode)


if __name__ == "__main__":
    raise SystemExit(main())
