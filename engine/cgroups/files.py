"""Reading and writing cgroup control files, shared by every layout.

A control file is read whole and written in one write(2); a missing file reads
as None (the kernel lacks that feature), a failed write is a CgroupError that
names the errno. Also: making the parent directories, and the check that a
container's cgroup name cannot point outside its parent.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

from engine.errors import CgroupError, InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _errno_text(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    return f"{name} ({e.strerror})"


def _write(path: Path, value: str) -> None:
    """Write a control file in one write(2). Never creates it: on a cgroup file
    system every control file already exists, so a missing one is an error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {_errno_text(e)}") from e


class _Log(list):
    """The control-file writes a create() made, in order, as (path, value):
    the supervisor's transcript shows them as ``echo value > path``."""

    def write(self, path: Path, value: str) -> None:
        _write(path, value)
        self.append((path, value))


def _read(path: Path) -> str | None:
    """A control file's text, or None when it does not exist."""
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _read_max(path: Path) -> int | None:
    """A v2 limit file: a number, or "max" (and missing) meaning None."""
    text = _read(path)
    if text is None or text.strip() == "max":
        return None
    return int(text.split()[0])


def _read_key(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat keyed file ("oom_kill 3" lines)."""
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


def _read_keyed(path: Path) -> dict[str, int]:
    """Every "key value" line of a flat keyed file (memory.stat); {} when missing."""
    text = _read(path) or ""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _read_pids(path: Path) -> set[int]:
    text = _read(path)
    return {int(p) for p in text.split()} if text else set()


def _mkdir_p(root: Path, rel: str, mkdir: Callable[[Path], None]) -> None:
    """Make each directory of ``rel`` under ``root`` that is missing."""
    path = root
    for part in rel.split("/"):
        path = path / part
        try:
            mkdir(path)
        except FileExistsError:
            pass
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {path}: {_errno_text(e)}") from e


def _check_names(cid: str, parent: str) -> None:
    """Refuse names that could point anywhere but one directory under the parent."""
    if not _NAME.fullmatch(cid or ""):
        raise InvalidArgument(f"invalid cgroup name: {cid!r}")
    if not parent or not all(_NAME.fullmatch(p) for p in parent.split("/")):
        raise InvalidArgument(f"invalid cgroup parent: {parent!r}")
