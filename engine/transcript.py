"""The transcript of a container's start: its stages in order, each with the
kernel operations done and the equivalent shell command.

Written by both sides of a start -- the supervisor's own stages (``limits``,
``fork``, ``cgroup``: :mod:`engine.supervisor.start`) and the child's
(:mod:`engine.runtime`) -- and saved as ``<container dir>/transcript.json``.
Read by ``inspect --transcript``, ``run --explain`` (:mod:`engine.explain`,
stage by stage) and the course's "What happened" view.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TypedDict

FILE = "transcript.json"
VERSION = 1


class Op(TypedDict):
    """One kernel operation: ``call`` (the kernel call), ``shell`` (the
    equivalent command), then call-specific detail (``source``, ``target``,
    ``fstype``, ``flags``, ``data`` for a mount; ``path``, ``value`` for a
    write; ``namespace``, ``flags`` for unshare/setns ...)."""

    call: str
    shell: str


class Stage(TypedDict):
    id: str                         # limits, fork, cgroup, namespaces, propagation, rootfs, ...
    title: str                      # in English; engine.explain has the translations
    ops: list[Op]
    ms: float                       # how long the stage took


class Saved(TypedDict):
    """``transcript.json``."""

    version: int                    # VERSION
    stages: list[Stage]


class Transcript:
    """Ordered stages, each with the kernel operations done and their shell twin.

    Saved as ``<container dir>/transcript.json`` for every start (schema version 1,
    :class:`Saved`)::

        {"version": 1, "stages": [
            {"id": "rootfs", "title": "Mount the image layers ...",
             "ops": [{"call": "mount", "shell": "mount -t overlay -o ... overlay /...",
                      "source": "overlay", "target": "...", "fstype": "overlay",
                      "flags": "nodev", "data": "lowerdir=...,upperdir=...,workdir=..."}]},
            ...]}

    Stage ids, in order: ``limits`` and ``fork`` (done by the supervisor), then
    :mod:`engine.runtime`'s ``cgroup``, ``namespaces``, ``propagation``, ``rootfs``,
    ``proc``, ``dev``, ``sys``, ``pivot_root``, ``hostname``, ``tty`` (with
    -t), ``seccomp`` (unless unconfined), ``capabilities``, ``init`` (with
    --init), ``exec``. Each op
    has ``call`` (the kernel call), ``shell`` (the equivalent command) and
    call-specific detail.
    """

    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self._t0: float | None = None

    def stage(self, sid: str, title: str) -> None:
        """Open a new stage (and close the previous one's clock)."""
        self._close()
        self.stages.append({"id": sid, "title": title, "ops": [], "ms": 0.0})
        self._t0 = time.perf_counter()

    def _close(self) -> None:
        if self.stages and self._t0 is not None:
            self.stages[-1]["ms"] = round((time.perf_counter() - self._t0) * 1000, 3)
            self._t0 = None

    def done(self) -> list[Stage]:
        """The stages, with the last one's time taken now."""
        self._close()
        return self.stages

    def op(self, call: str, shell: str, **detail) -> None:
        """Record one kernel operation in the current stage."""
        self.stages[-1]["ops"].append({"call": call, "shell": shell, **detail})


def save(container_dir: Path, stages: list[Stage]) -> None:
    """Write ``transcript.json`` (atomically; no fsync: it is a record of what happened, not state)."""
    from .records import write_json_atomic

    saved: Saved = {"version": VERSION, "stages": stages}
    write_json_atomic(container_dir / FILE, saved, durable=False)


def load(container_dir: Path) -> Saved | None:
    """``transcript.json`` of a container, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((container_dir / FILE).read_text())
    except (OSError, ValueError):
        return None
