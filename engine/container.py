"""A container's record: what it was asked to be, and what became of it.

The record is ``<data>/containers/<id>/container.json`` (schema version 1,
:class:`Record` below), written atomically on every change of state. Its
``status`` is a :class:`Status`, which says what each state allows.

``pid_start`` lets a restarted supervisor tell its container from an
unrelated process that reused the pid.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import TypedDict

from .errors import EngineError
from .events import now
from .records import write_json_atomic
from .spec import NAME_RE, ContainerConfig

VERSION = 1


class Status(StrEnum):
    """A container's state, and what each one allows (the supervisor asks these)."""

    CREATED = "created"         # made (run, create), never started
    STARTING = "starting"       # its first process is on its way to execve (run --explain: half-built)
    RUNNING = "running"
    EXITED = "exited"

    def can_start(self) -> bool:
        return self in (Status.CREATED, Status.EXITED)

    def can_exec(self) -> bool:
        return self is Status.RUNNING

    def can_kill(self) -> bool:
        return self is Status.RUNNING

    def can_remove(self) -> bool:
        """Without force: neither running nor half-built."""
        return self in (Status.CREATED, Status.EXITED)


STATES = tuple(Status)


class ImageRef(TypedDict):
    requested: str              # as the user wrote it: "ubuntu"
    ref: str                    # what it resolved to: "docker.io/library/ubuntu:latest"
    id: str                     # "sha256:..." (the config's digest)
    digest: str                 # the manifest's digest
    layers: list[str]           # layer directories, lowest first (shifted copies with --userns private)


class UserNamespace(TypedDict):
    base: int                   # host uid/gid of root inside
    size: int


class Process(TypedDict):
    argv: list[str]
    env: list[str]              # "KEY=VALUE"
    cwd: str
    user: str                   # "" for the image's (root)
    hostname: str
    lowerdir: str               # overlayfs lowerdir= value
    userns: UserNamespace | None    # --userns private


class Record(TypedDict):
    """``container.json``, as :meth:`Container.record` writes it. A record
    written before a container ran may lack ``started``, ``finished``,
    ``error``, ``cgroup`` and ``pid_start`` (see :func:`check_record`)."""

    version: int                # VERSION
    id: str                     # 64 hex digits, also the directory's name
    name: str
    config: dict                # ContainerConfig.to_dict()
    image: ImageRef
    process: Process
    status: Status
    pid: int                    # host pid of PID 1; 0 when not running
    pid_start: int              # its start time in clock ticks since boot
    exit_code: int | None
    oom_killed: bool
    error: str
    created: str                # RFC 3339 times
    started: str
    finished: str
    cgroup: dict[str, str]      # hierarchy -> cgroup directory
ID_RE = re.compile(r"[0-9a-f]{64}")


class DamagedRecord(ValueError):
    """A record that cannot be trusted: unreadable, or a field of the wrong shape."""


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strings(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# Each field a loaded record must have, and what it must look like. A record
# is written by the supervisor alone; one that does not look like this was
# damaged (a crash, a disk, a hand), and no field of it is used.
_FIELDS = {
    "name": lambda v: isinstance(v, str) and NAME_RE.match(v) is not None,
    "status": lambda v: v in STATES,
    "pid": lambda v: _integer(v) and 0 <= v < 1 << 22,
    "pid_start": lambda v: _integer(v) and v >= 0,
    "exit_code": lambda v: v is None or (_integer(v) and -255 <= v <= 255),
    "oom_killed": lambda v: isinstance(v, bool),
    "error": lambda v: isinstance(v, str),
    "created": lambda v: isinstance(v, str),
    "started": lambda v: isinstance(v, str),
    "finished": lambda v: isinstance(v, str),
    "image": lambda v: isinstance(v, dict) and _strings(v.get("layers", [])),
    "process": lambda v: isinstance(v, dict),
    "cgroup": lambda v: isinstance(v, dict),
}
_PROCESS = {
    "argv": lambda v: _strings(v) and len(v) > 0,
    "env": _strings,
    "cwd": lambda v: isinstance(v, str) and v.startswith("/"),
    "user": lambda v: isinstance(v, str),
    "hostname": lambda v: isinstance(v, str),
    "lowerdir": lambda v: isinstance(v, str),
    "userns": lambda v: v is None or (isinstance(v, dict) and _integer(v.get("base")) and _integer(v.get("size"))),
}


def check_record(rec, dirname: str) -> None:
    """Raise DamagedRecord naming the first field of ``rec`` that is not as
    the supervisor writes it (the id must be 64 hex digits and its directory's name)."""
    if not isinstance(rec, dict):
        raise DamagedRecord("not a JSON object")
    if rec.get("version") != VERSION:
        raise DamagedRecord(f"unknown record version {rec.get('version')!r}")
    if not (isinstance(rec.get("id"), str) and ID_RE.fullmatch(rec["id"]) and rec["id"] == dirname):
        raise DamagedRecord(f"its id {str(rec.get('id'))[:80]!r} is not its directory's name")
    for key, ok in _FIELDS.items():
        if key not in rec and key in ("started", "finished", "error", "cgroup", "pid_start"):
            continue           # written as they become known
        if key not in rec or not ok(rec[key]):
            raise DamagedRecord(f"field {key!r} is missing or malformed")
    process = rec["process"]
    for key, ok in _PROCESS.items():
        if not ok(process.get(key)) and not (key == "userns" and key not in process):
            raise DamagedRecord(f"field 'process.{key}' is missing or malformed")
    if rec["status"] == "running" and not rec["pid"]:
        raise DamagedRecord("it is running, but has no pid")


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # The command name may hold spaces and parentheses: split after the last ')'.
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):       # gone, or gone half-way through the read
        return None


class Container:
    """One container: its config and state, plus the supervisor's live handles."""

    def __init__(self, cid: str, name: str, config: ContainerConfig, cdir: Path):
        self.id = cid
        self.name = name
        self.config = config
        self.dir = cdir
        self.status = Status.CREATED
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
        self.volume_resolve = 0         # openat2 flags for volume sources: the starting client's policy

    @property
    def status(self) -> Status:
        """The state (what it allows: :class:`Status`); set from a Status or its string."""
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = Status(value)

    # -- the record ---------------------------------------------------------------
    def record(self) -> Record:
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
    def load(cls, cdir: Path) -> Container:
        """Read and check a record; raises OSError if it cannot be read,
        DamagedRecord (a ValueError) naming what is wrong if it is damaged."""
        import os
        import stat

        # Never a FIFO or a device where a file is expected: it would block the supervisor.
        fd = os.open(cdir / "container.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
                raise DamagedRecord("container.json is not a regular file of at most 1 MiB")
            with os.fdopen(os.dup(fd), "rb") as f:
                raw = f.read()
        finally:
            os.close(fd)
        try:
            rec = json.loads(raw)
        except ValueError as e:
            raise DamagedRecord(f"not JSON ({e})") from None
        check_record(rec, cdir.name)
        try:
            config = ContainerConfig.from_dict(rec.get("config")).validate()
        except EngineError as e:
            raise DamagedRecord(f"its config is damaged ({e})") from None
        c = cls(rec["id"], rec["name"], config, cdir)
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
