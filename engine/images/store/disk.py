"""The store's file-system chores: an OSError reported as a one-line
ImageError, fsync of a file tree and of directories (so a rename publishes
only what is on disk), a layer's size, and whether a work directory under
``tmp/`` is still in use.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import ImageError


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Report an OSError as an ImageError: '<what>: <reason>'."""
    try:
        yield
    except OSError as e:
        raise ImageError(f"{what}: {e.strerror or e}" + (f" ({e.filename})" if e.filename else "")) from e


def _in_use(work: Path) -> bool:
    """Whether the work dir ``work`` is flocked by a live process (see :meth:`ImageStore.work_dir`)."""
    try:
        fd = os.open(work / ".owner", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tree_size(root: Path) -> int:
    from engine.images.describe import layer_size

    return layer_size(root)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (symlinks, devices and
    fifos -- whiteouts among them -- live in their directory)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode):
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(dirpath))
