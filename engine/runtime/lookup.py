"""The exec stage's look-ups, made in the container's own files, as docker makes them.

The user and its groups come from the container's /etc/passwd and /etc/group
(never the host's; they may be anything -- a FIFO, a device, huge -- so they
are read with care), the command from the PATH of the container's
environment, with docker's messages and exit codes when either is missing.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from .spec import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND

if TYPE_CHECKING:
    from .builder import Builder


def _env_dict(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env


DB_LIMIT = 4 << 20         # bytes read at most of the container's /etc/passwd or /etc/group


def _read_db(path: str) -> tuple[list[list[str]], str]:
    """The entries of the container's ``path`` (passwd or group) and, if it
    cannot be used, why. The file belongs to the container: it may be a FIFO
    or a device, so it is opened without blocking and read only if it is a
    regular file of reasonable size. A missing file has no entries."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], ""
    except OSError as e:
        return [], f"{path}: {os.strerror(e.errno).lower()}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return [], f"{path} is not a regular file"
        if st.st_size > DB_LIMIT:
            return [], f"{path} is larger than {DB_LIMIT >> 20} MiB"
        chunks, size = [], 0
        while size <= DB_LIMIT and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        if size > DB_LIMIT:
            return [], f"{path} is larger than {DB_LIMIT >> 20} MiB"
    except OSError as e:
        return [], f"{path}: {os.strerror(e.errno).lower()}"
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")], ""


def _resolve_user(spec: str | None, b: Builder) -> tuple[int, int, list[int], str]:
    """uid, gid, supplementary groups and home for ``USER[:GROUP]``, read from
    the container's own /etc/passwd and /etc/group (never the host's)."""
    user, _, group = (spec or "0").partition(":")
    passwd, passwd_problem = _read_db("/etc/passwd")
    groups_db, group_problem = _read_db("/etc/group")
    entry = next((e for e in passwd if len(e) >= 6 and (e[0] == user or e[2] == user)), None)
    if entry:
        uid, gid, home, name = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    elif user.isdigit():
        uid, gid, home, name = int(user), int(user), "/", None
    else:
        b.fail(f"unable to find user {user}: " + (passwd_problem or "no matching entries in passwd file"))
    if group:
        g = next((e for e in groups_db if len(e) >= 3 and (e[0] == group or e[2] == group)), None)
        if g:
            gid = int(g[2])
        elif group.isdigit():
            gid = int(group)
        else:
            b.fail(f"unable to find group {group}: " + (group_problem or "no matching entries in group file"))
    supplementary = sorted({gid} | {int(e[2]) for e in groups_db
                                    if len(e) >= 4 and name and name in e[3].split(",")})
    return uid, gid, supplementary, home


def _find_executable(cmd: str, path: str, b: Builder) -> str:
    """Look ``cmd`` up as execvp would, with docker's messages and exit codes."""
    if "/" in cmd:
        if not os.path.exists(cmd):
            b.fail(f'exec: "{cmd}": stat {cmd}: no such file or directory', EXIT_NOT_FOUND)
        if os.path.isdir(cmd):
            b.fail(f'exec: "{cmd}": is a directory: permission denied', EXIT_CANNOT_EXEC)
        if not os.access(cmd, os.X_OK):
            b.fail(f'exec: "{cmd}": permission denied', EXIT_CANNOT_EXEC)
        return cmd
    denied = None
    for d in path.split(":"):
        candidate = os.path.join(d or ".", cmd)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied:
        b.fail(f'exec: "{cmd}": permission denied', EXIT_CANNOT_EXEC)
    b.fail(f'exec: "{cmd}": executable file not found in $PATH', EXIT_NOT_FOUND)
