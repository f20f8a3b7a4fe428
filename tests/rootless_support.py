"""Rootless tests: the engine run by real unprivileged users that the tests make.

Two users per pytest worker (names carry the worker, so workers never race):
``clt-rl-<w>`` with a subordinate range in /etc/subuid and /etc/subgid (uids
0..65535 in a container), ``clt-rs-<w>`` with none (the single mapping: root
inside is the user). Each gets a home and an XDG runtime dir of its own under
a temp dir, and runs Debian's ``/usr/bin/python3`` (the test venv's
interpreter may live where a user cannot read, as pyenv's under /root) on a
world-readable copy of the source tree, with the venv's third-party packages
copied beside it (pure Python, the same 3.11 ABI). At the end: every process
of the user killed, the users and their ranges removed, the temp dir gone.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from conftest import REPO

PYTHON = "/usr/bin/python3"
# What `course solve` and the app need beyond the standard library.
PACKAGES = ("markdown_it", "mdit_py_plugins", "mdurl", "rich", "textual", "pygments", "platformdirs",
            "typing_extensions", "linkify_it", "uc_micro", "pyte", "wcwidth", "pyroute2", "dns")


def worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0").replace("gw", "")


@contextmanager
def _users_locked():
    """One worker at a time edits the user database and /etc/subuid (useradd
    refuses while another holds its lock; the range files would lose a line)."""
    with open("/run/container-lab-test-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_user(name: str) -> None:
    subprocess.run(["pkill", "-9", "-u", name], capture_output=True)
    with _users_locked():
        _remove_user_locked(name)


def _remove_user_locked(name: str) -> None:
    # -f: a process of theirs may linger as a zombie on a machine whose init does not reap.
    subprocess.run(["userdel", "-f", name], capture_output=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(path).read_text().splitlines(keepends=True)
        except OSError:
            continue
        kept = [line for line in lines if not line.startswith(f"{name}:")]
        if kept != lines:
            Path(path).write_text("".join(kept))


class User:
    """An unprivileged user of the tests, and the CLI run as them."""

    def __init__(self, name: str, base: Path, subid: int | None):
        self.name = name
        _remove_user(name)                     # a crashed run's
        with _users_locked():
            subprocess.run(["useradd", "--no-create-home", "--home-dir", str(base / name), "--shell", "/bin/sh",
                            name], check=True, capture_output=True)
            for path in ("/etc/subuid", "/etc/subgid"):
                kept = [line for line in Path(path).read_text().splitlines(keepends=True)
                        if not line.startswith(f"{name}:")] if Path(path).exists() else []
                if subid is not None:
                    kept.append(f"{name}:{subid}:65536\n")
                Path(path).write_text("".join(kept))
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.subid = subid
        self.home = base / name
        self.run_dir = base / f"{name}-run"
        for d in (self.home, self.run_dir):
            d.mkdir(mode=0o700)
            os.chown(d, self.uid, self.gid)

    def env(self, src: Path, **extra) -> dict:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "XDG_RUNTIME_DIR": str(self.run_dir), "LANG": "C.UTF-8", "PYTHONPATH": str(src),
                "CONTAINER_LAB_SUPERVISOR_IDLE": "120", **extra}

    @property
    def data(self) -> Path:
        return self.home / ".local" / "share" / "container-lab"

    def close(self) -> None:
        _remove_user(self.name)
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return
        raise AssertionError(f"the test user {self.name} could not be removed")


class Rootless:
    """The users and the source copy of one worker."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="clt-rootless-", dir="/tmp"))
        os.chmod(self.base, 0o755)
        self.src = self.base / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in ("engine", "lessons", "tui", "content"):
            shutil.copytree(REPO / part, self.src / part, ignore=ignore)
        shutil.copy(REPO / "pyproject.toml", self.src)       # how lessons finds content/ in a checkout
        for site in (Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))):
            for name in PACKAGES:
                if (site / name).is_dir() and not (self.src / name).exists():
                    shutil.copytree(site / name, self.src / name, ignore=ignore)
        subprocess.run(["chmod", "-R", "a+rX", str(self.src)], check=True)
        # Names and ranges of this session's own: two test runs on one machine (a
        # developer's and CI's) must not remove each other's users.
        w, run = int(worker() or 0), os.getpid() % 1000
        self.users: list[User] = []
        self.ranged = self._user(f"clt-rl{run}-{w}", 400000 + (run * 4 + w) * 65536)
        self.single = self._user(f"clt-rs{run}-{w}", None)

    def _user(self, name: str, subid: int | None) -> User:
        u = User(name, self.base, subid)
        self.users.append(u)
        return u

    def run(self, user: User, *args: str, input: str | None = None, timeout: float = 90,
            module: str | None = "engine.cli", cwd: Path | None = None, **env) -> subprocess.CompletedProcess:
        """``container-lab ARGS`` as ``user`` (``python3 ARGS`` with ``module=None``)."""
        return subprocess.run([PYTHON, *(["-m", module] if module else []), *args], input=input, text=True, capture_output=True,
                              timeout=timeout, cwd=cwd or user.home, env=user.env(self.src, **env),
                              user=user.uid, group=user.gid, extra_groups=[])

    def close(self) -> None:
        for u in self.users:
            u.close()
        shutil.rmtree(self.base, ignore_errors=True)
