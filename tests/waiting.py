"""Waiting for a condition in a test: poll it until it holds, within a deadline.

A fixed ``time.sleep`` before an assertion is too short on a busy machine and
too long on an idle one; :func:`wait_until` returns as soon as the condition
holds and, when it never does, fails saying what was awaited and what was
last seen.
"""

from __future__ import annotations

import time
from pathlib import Path


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message=""):
    """Call ``predicate()`` until it returns something truthy, and return that.

    Fails (AssertionError) after ``timeout`` seconds with ``message`` (what was
    awaited: a string, or a function called then, to describe the state at the
    deadline) and the last value the predicate returned. Its last call ends
    after the deadline, so a slow predicate still gets its chance."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = (message() if callable(message) else message) or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last seen: {value!r}")
        time.sleep(interval)


def child_commands(pid: int) -> list[list[str]]:
    """The argv of each child of host process ``pid`` (its first thread's
    children), [] once it is gone. A forked child that has not exec'd yet shows
    its parent's argv."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    argvs = []
    for child in children:
        try:
            raw = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue                    # gone meanwhile
        argvs.append(raw.rstrip(b"\0").decode(errors="replace").split("\0"))
    return argvs


def gone(pid: int) -> bool:
    """Whether host process ``pid`` has exited (gone, or a zombie not reaped yet)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X")
