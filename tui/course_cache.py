"""The course, loaded once and kept: a validated :class:`~lessons.model.Course`, cached.

Reading and checking the shipped course (ten lessons, two languages, every
command parsed by the engine's own parser) takes most of a second; the app
must draw its first screen in less. So the checked course is pickled into a
cache file named by a fingerprint of everything it came from -- each file of
the course folder and each module of the ``lessons`` package (path, size,
modification time), and the Python version. A course or framework edited
since gets a new fingerprint and is read and checked afresh; a cache that
cannot be read or written is simply not used. No Textual here.

Where: ``$CONTAINER_LAB_CACHE_DIR``, else ``$CONTAINER_LAB_ROOT/cache`` (tests,
sandboxes), else ``$XDG_CACHE_HOME/container-lab`` or ``~/.cache/container-lab``
-- the user's own; a file not owned by us, or writable by others, is never read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from pathlib import Path

import lessons
from lessons.model import Course

KEEP = 4            # cached courses kept (older ones are removed)


def cache_dir() -> Path:
    if env := os.environ.get("CONTAINER_LAB_CACHE_DIR"):
        return Path(env)
    if root := os.environ.get("CONTAINER_LAB_ROOT"):
        return Path(root) / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "container-lab"


def fingerprint(root: Path) -> str:
    """A digest of every file the course at ``root`` is made from, and of the code that reads it."""
    h = hashlib.sha256(f"{sys.version}\0{root}\0".encode())
    package = Path(lessons.__file__).resolve().parent
    for base, pattern in ((root, "**/*"), (package, "*.py")):
        for path in sorted(base.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                st = path.stat()
                h.update(f"{path.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:32]


def _trusted(path: Path) -> bool:
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(root: Path | str | None = None) -> Course:
    """The course at ``root`` (default: the shipped one), checked as ``course check`` does;
    raises :class:`lessons.loader.CourseError` listing its problems."""
    from lessons.content import content_dir

    root = Path(root if root is not None else content_dir()).resolve()
    key = fingerprint(root)
    path = cache_dir() / f"course-{key}.pickle"
    try:
        if _trusted(path):
            with open(path, "rb") as f:
                course = pickle.load(f)
            if isinstance(course, Course) and course.path == root:
                return course
    except Exception:  # noqa: BLE001 - no cache, or a bad one: read the course
        pass
    from lessons.loader import load_course  # markdown-it and the engine's parser: only on a miss

    course = load_course(root)
    _store(path, course)
    return course


def _store(path: Path, course: Course) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(course, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        old = sorted(path.parent.glob("course-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass
