"""A container's record: what it was asked to be, and what became of it.

The record is ``<data>/containers/<id>/container.json`` (schema version 1),
written atomically on every change of state::

    {"version": 1, "id": "<64 hex>", "name": "brave_turing",
     "config": {...ContainerConfig...},
     "image": {"requested": "ubuntu", "ref": "lab:latest", "id": "sha256:...",
               "digest": "sha256:...", "layers": ["<dir>", ...]},
     "process": {"argv": [...], "env": [...], "cwd": "/", "user": "",
                 "hostname": "...", "lowerdir": "...",
                 "userns": null | {"base": 100000, "size": 65536}},   # --userns private
     "status": "created" | "starting" | "running" | "exited",
     "pid": 4312, "pid_start": 123456,      # host pid and its start time (clock ticks)
     "exit_code": 0, "oom_killed": false, "error": "",
     "created": "...", "started": "...", "finished": "...",
     "cgroup": {"memory": "/sys/fs/cgroup/memory/container-lab/<id>", ...}}

``pid_start`` lets a restarted supervisor tell its container from an
unrelated process that reused the pid.
"""

from __future__ import annotations

import json
from pathlib import Path

from .events import now
from .records import write_json_atomic
from .spec import ContainerConfig

VERSION = 1
STATES = ("created", "starting", "running", "exited")   # "starting": run --explain, half-built


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return int(stat[stat.rindex(b")") + 2:].split()[19])


class Container:
    """One container: its config and state, plus the supervisor's live handles."""

    def __init__(self, cid: str, name: str, config: ContainerConfig, cdir: Path):
        self.id = cid
        self.name = name
        self.config = config
        self.dir = cdir
        self.status = "created"
        self.pid = 0
        self.pid_start = 0
        self.exit_code: int | None = None
        self.oom_killed = False
        self.error = ""
        self.created = now()
        self.started = ""
        self.finished = ""
        self.image: dict = {}
        self.process: dict = {}
        # Live handles, never persisted.
        self.cgroup = None
        self.pidfd = -1
        self.mntns = -1
        self.adopted = False            # running, but started by an earlier supervisor
        self.pty = -1                   # the supervisor's copy of the terminal master
        self.outputs: dict[int, str] = {}   # pipe fd -> stream, drained to the log
        self.attached: set = set()      # connections waiting for the exit event
        self.drain_pty = False
        self.warnings: list[str] = []   # limits asked for that this machine cannot apply
        self.seen = {"oom_kills": 0, "pids_max_hits": 0}
        self.stop_deadline: float | None = None
        self.starting = None            # a supervisor.Starting while started stage by stage

    # -- lifecycle guards (what each state allows) ------------------------------
    def can_start(self) -> bool:
        return self.status in ("created", "exited")

    def can_exec(self) -> bool:
        return self.status == "running"

    def can_kill(self) -> bool:
        return self.status == "running"

    # -- the record ---------------------------------------------------------------
    def record(self) -> dict:
        """The persisted record (schema version 1)."""
        return {
            "version": VERSION, "id": self.id, "name": self.name, "config": self.config.to_dict(),
            "image": self.image, "process": self.process, "status": self.status, "pid": self.pid,
            "pid_start": self.pid_start, "exit_code": self.exit_code, "oom_killed": self.oom_killed,
            "error": self.error, "created": self.created, "started": self.started,
            "finished": self.finished,
            "cgroup": {k: str(v) for k, v in (self.cgroup.paths.items() if self.cgroup else [])},
        }

    def save(self) -> None:
        # Atomic (rename) but not fsync'ed: on every start and exit an fsync
        # would cost milliseconds; ext4 and xfs flush a file replaced by rename
        # before the rename itself, and an unreadable record is skipped, never fatal.
        write_json_atomic(self.dir / "container.json", self.record(), durable=False)

    @classmethod
    def load(cls, cdir: Path) -> "Container":
        """Read a record; raises OSError, ValueError, KeyError or TypeError if unreadable."""
        rec = json.loads((cdir / "container.json").read_text())
        if rec.get("version") != VERSION:
            raise ValueError(f"unknown record version {rec.get('version')!r}")
        c = cls(rec["id"], rec["name"], ContainerConfig.from_dict(rec["config"]), cdir)
        for key in ("status", "pid", "pid_start", "exit_code", "oom_killed", "error", "created",
                    "started", "finished", "image", "process"):
            if key in rec:
                setattr(c, key, rec[key])
        return c

    def summary(self) -> dict:
        """The record without the config, plus the command and labels (for ps)."""
        return {k: v for k, v in self.record().items() if k != "config"} | {
            "command": self.process.get("argv", []), "labels": self.config.labels}

    def event_fields(self) -> dict:
        """What every event about this container carries."""
        return {"id": self.id, "name": self.name, "labels": self.config.labels,
                "image": {"requested": self.image.get("requested", self.config.image),
                          "resolved": self.image.get("ref", "")},
                "argv": self.process.get("argv", []), "tty": self.config.tty}
