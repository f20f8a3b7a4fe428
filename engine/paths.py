"""Where the engine keeps things.

- state (sockets, pid files, locks): ``/run/container-lab`` as root, else
  ``$XDG_RUNTIME_DIR/container-lab``; it vanishes at reboot, as it should.
- data (images, container layers, logs): ``/var/lib/container-lab`` as root,
  else ``$XDG_DATA_HOME/container-lab``; mode 0700, because image layers may
  hold setuid-root binaries that another user of a shared classroom server
  must never reach.
- the learner's own settings and progress: the XDG state dir of the person at
  the keyboard -- under ``sudo`` that is ``SUDO_USER``, not root.

``CONTAINER_LAB_ROOT`` moves state and data under one directory (tests and
instructors' sandboxes use it); ``CONTAINER_LAB_STATE_DIR`` and
``CONTAINER_LAB_DATA_DIR`` move each on its own.
"""

from __future__ import annotations

import os
import pwd
import stat

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from pathlib import Path

APP = "container-lab"


def is_root() -> bool:
    """True when running as the host's root (the full, rootful lab); the
    rootless engine, uid 0 in a user namespace of its user's, is not."""
    return os.geteuid() == 0 and host_uid() == 0


def host_uid() -> int:
    """The effective uid as the host sees it (see :func:`engine.userns.host_uid`)."""
    from .userns import host_uid

    return host_uid()


# The *_path functions return plain strings: the CLI's start-up path uses them
# and must not pay for importing pathlib (~8 ms); the *_dir ones wrap them.

def _root_override(sub: str) -> str | None:
    root = os.environ.get("CONTAINER_LAB_ROOT")
    return os.path.join(root, sub) if root else None


def state_path() -> str:
    """Runtime state: the supervisor's socket, pid file and locks."""
    if env := os.environ.get("CONTAINER_LAB_STATE_DIR"):
        return env
    if p := _root_override("run"):
        return p
    if is_root():
        return os.path.join("/run", APP)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/{APP}-{host_uid()}"
    return os.path.join(runtime, APP)


def data_path() -> str:
    """Images, container layers and logs."""
    if env := os.environ.get("CONTAINER_LAB_DATA_DIR"):
        return env
    if p := _root_override("lib"):
        return p
    if is_root():
        return os.path.join("/var/lib", APP)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, APP)


def state_dir() -> Path:
    """:func:`state_path` as a Path."""
    from pathlib import Path
    return Path(state_path())


def data_dir() -> Path:
    """:func:`data_path` as a Path."""
    from pathlib import Path
    return Path(data_path())


def untrusted_reason(path) -> str | None:
    """Why the directory ``path`` (the supervisor's socket's) must not be
    trusted, or None. Without XDG_RUNTIME_DIR a user's state dir is under
    /tmp, where anyone may make /tmp/container-lab-UID first and serve a
    socket there -- and receive the terminals the CLI passes along. So the
    directory, each directory above it and (for a symlink) where it leads
    must belong to this user or root, and none may be writable by group or
    others -- except, above the directory, a sticky one such as /tmp.
    Components not made yet are skipped (whoever makes them is checked then)."""
    uid = os.geteuid()
    path = os.path.abspath(os.fspath(path))
    for start in dict.fromkeys((path, os.path.realpath(path))):
        p = start
        while True:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                st = None
            except OSError as e:
                return f"{p}: {e.strerror}"
            if st is not None:
                if st.st_uid not in (uid, 0):
                    return (f"{p} belongs to uid {st.st_uid}, not to you (uid {uid}) or root: another user "
                            "may have made it to receive your terminal; remove it or set XDG_RUNTIME_DIR")
                sticky = st.st_mode & stat.S_ISVTX and p != start
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022 and not sticky:
                    who = {0o022: "group and others", 0o020: "group", 0o002: "others"}[st.st_mode & 0o022]
                    return (f"{p} is writable by {who}"
                            f" (mode {st.st_mode & 0o7777:04o}): another user could replace the supervisor's socket")
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
    return None


def ensure_private_dir(path, mode: int = 0o700):
    """Create ``path`` (and parents) and make sure it has exactly ``mode``;
    returns ``path`` as given (a str or a Path)."""
    os.makedirs(path, exist_ok=True)
    if (os.stat(path).st_mode & 0o7777) != mode:
        os.chmod(path, mode)
    return path


def learner_home() -> Path:
    """Home of the person at the keyboard: SUDO_USER's under sudo, else ours."""
    from pathlib import Path

    sudo_user = os.environ.get("SUDO_USER")
    if is_root() and sudo_user and sudo_user != "root":
        try:
            return Path(pwd.getpwnam(sudo_user).pw_dir)
        except KeyError:
            pass
    return Path.home()


def learner_state_dir() -> Path:
    """The learner's settings and progress (XDG state dir of the invoking user)."""
    from pathlib import Path

    if env := os.environ.get("CONTAINER_LAB_LEARNER_DIR"):
        return Path(env)
    sudo_user = os.environ.get("SUDO_USER")
    under_sudo = is_root() and sudo_user and sudo_user != "root"
    xdg = None if under_sudo else os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else learner_home() / ".local" / "state"
    return base / APP


def learner_owner() -> tuple[int, int] | None:
    """(uid, gid) to chown the learner's files to under sudo, else None."""
    sudo_user = os.environ.get("SUDO_USER")
    if is_root() and sudo_user and sudo_user != "root":
        try:
            pw = pwd.getpwnam(sudo_user)
        except KeyError:
            return None
        return pw.pw_uid, pw.pw_gid
    return None
