"""The event log: what happened to which container, in order.

Lesson checks read it to see what the learner really did ("a container ran
from this image and exited 0", "an interactive shell was opened") and count
only what happened after their step began, by remembering a cursor -- the
sequence number of the last event seen.

Schema (version 1): one JSON object per line of ``<data>/events.jsonl``::

    {"v": 1, "seq": 42, "time": "2026-11-28T07:44:01.123456Z", "kind": "exited",
     "id": "<64 hex>", "name": "brave_turing", "labels": {"k": "v"},
     "image": {"requested": "ubuntu", "resolved": "lab:latest"},
     "argv": ["echo", "hi"], "tty": false, "exit_code": 0, ...}

``kind`` is one of :data:`KINDS`. ``seq`` grows by one per event, across
rotations, and is never reused. Kinds may add fields: ``exec`` and
``exec-exited`` carry ``exec_id``; ``kill`` carries ``signal``; ``oom`` and
``pids-limit-hit`` carry ``count``; ``network-connect`` carries ``network`` and
``address``, ``network-disconnect`` ``network``; ``started`` carries ``explained``
(true) when the container was started stage by stage (``run --explain``).
``diff`` records that a client read a container's changes (``docker diff``),
as Docker records ``top`` and ``export``. Readers ignore fields they do not know.

``image`` is an image's, not a container's: no ``id`` or ``name``, but
``action`` (``build``, ``pull``, ``push``, ``save``: the client does those
and tells the supervisor, see its ``image_event`` request), ``ref``,
``names``, ``image_id``/``digest`` when known, and for a build ``steps`` (its
instructions after FROM), ``cached`` (how many the build cache answered)
and ``dockerfile`` (the digest of the Dockerfile's text).

Only the supervisor writes (it is single-threaded, so ``seq`` needs no
lock); anyone may read. The file rotates at :data:`ROTATE_AT` bytes into
``events.jsonl.1``; readers look at both.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path

from .records import append_jsonl, read_jsonl

VERSION = 1
KINDS = ("created", "started", "exec", "exec-exited", "kill", "exited", "oom", "pids-limit-hit",
         "removed", "network-connect", "network-disconnect", "diff", "image")
ROTATE_AT = 4 * 1024 * 1024


def now() -> str:
    """The current time, RFC 3339 with microseconds, UTC."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def parse_time(text: str) -> float:
    """Seconds since the epoch for an RFC 3339 time (ours), a Unix timestamp,
    or a duration back from now like ``10m``, ``2h``, ``30s``."""
    from .errors import InvalidArgument

    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
            return time.time() - float(text[:-1]) * units[text[-1]]
        if text.replace(".", "", 1).isdigit():
            return float(text)
        base, _, frac = text.rstrip("Z").partition(".")
        stamp = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return stamp + (float("0." + frac) if frac else 0.0)
    except (ValueError, IndexError, OverflowError):
        raise InvalidArgument(f"invalid time '{text}': use 2026-11-28T07:44:01Z, a Unix time or 10m") from None


def event_time(event: dict) -> float:
    return parse_time(event["time"])


class EventLog:
    """Append (supervisor) and read (anyone) the event log."""

    def __init__(self, path: Path):
        self.path = path
        self.seq = max((e.get("seq", 0) for e in self.read()), default=0)
        self.listeners: list = []       # called with each new event (the supervisor's subscribers)

    def append(self, kind: str, **fields) -> dict:
        """Write one event; returns it."""
        self.seq += 1
        event = {"v": VERSION, "seq": self.seq, "time": now(), "kind": kind, **fields}
        append_jsonl(self.path, event, rotate_at=ROTATE_AT)
        for listener in self.listeners:
            listener(event)
        return event

    def read(self, *, after: int = 0) -> Iterator[dict]:
        """Events with ``seq > after``, oldest first."""
        return (e for e in read_jsonl(self.path) if isinstance(e.get("seq"), int) and e["seq"] > after)


def label_matches(labels: dict, wanted: str) -> bool:
    """docker's label filter: ``K`` (the label is set) or ``K=V`` (set to V)."""
    key, sep, value = wanted.partition("=")
    return labels.get(key) == value if sep else key in labels


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    """docker-style filters: the same key ORs its values, different keys AND.

    Keys: ``container`` (id prefix or name), ``name``, ``kind`` (alias
    ``event``), ``image``, ``label`` (``K`` or ``K=V``)."""
    for key, values in filters.items():
        if key in ("container", "name"):
            ok = any(event.get("name") == v or event.get("id", "").startswith(v) for v in values)
        elif key in ("kind", "event", "type"):
            ok = event.get("kind") in values
        elif key == "image":
            image = event.get("image") or {}
            ok = any(v in (image.get("requested"), image.get("resolved")) for v in values)
        elif key == "label":
            ok = any(label_matches(event.get("labels") or {}, v) for v in values)
        else:
            ok = False
        if not ok:
            return False
    return True
