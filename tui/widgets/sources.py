"""Where the lab panel's data comes from: the engine, or a recorded scene.

A *source* is what :class:`LabSource` says: an object with these methods
(all called on a worker thread, never on the app's loop):

- ``containers()`` -> the ``Client.ps(all=True)`` records;
- ``snapshot(ref)`` -> ``Client.snapshot(ref)`` (see :mod:`engine.observe`);
- ``transcript(ref)`` -> the start's stages (``inspect(..., transcript=True)``);
- ``diff(ref)`` -> the writable layer's changes, ``[(kind, path)]``;
- ``layers(ref)`` -> its image's layers and its writable layer on top, each
  with its step and changes (``Client.layers``, see :mod:`engine.images.layers`);
- ``config(ref)`` -> the container's config (its limits);
- ``history(ref)`` -> earlier snapshots, oldest first, to seed the sparklines
  (one with only ``time`` and ``resources`` counts for those alone; the
  live engine has none: ``[]``);
- ``subscribe(after=None)`` -> a :class:`Subscription`, like
  :class:`engine.client.Subscription`.

:class:`EngineSource` asks the real engine; :class:`FixtureSource` plays a
scene recorded by :func:`record` from a JSON file (the snapshot tests use
it: same data every run, no engine). :func:`fetch` is one refresh of the
panel, read from a source into a :class:`Fetched`. No Textual here.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from .lab_model import default_selection, find_container


class Subscription(Protocol):
    """Engine events, one at a time: None when none came within ``timeout``."""

    def get(self, timeout: float | None = None) -> dict | None: ...

    def close(self) -> None: ...


@runtime_checkable
class LabSource(Protocol):
    """What the lab panel reads (see the module docstring)."""

    lesson: str | None           # whose containers alone it lists (None: every one it has)

    def containers(self) -> list[dict]: ...

    def snapshot(self, ref: str) -> dict: ...

    def transcript(self, ref: str) -> list[dict]: ...

    def config(self, ref: str) -> dict: ...

    def history(self, ref: str) -> list[dict]: ...

    def diff(self, ref: str) -> list[tuple[str, str]]: ...

    def layers(self, ref: str) -> list[dict]: ...

    def subscribe(self, after: int | None = None) -> Subscription: ...


class EngineSource:
    """The real engine, through :class:`engine.client.Client`; with ``session``, only the
    containers that app session started (labelled ``course.session``, see :mod:`lessons.lab`)."""

    SESSION_LABEL, LESSON_LABEL = "course.session", "course.lesson"

    def __init__(self, client=None, *, session: str | None = None, lesson: str | None = None):
        if client is None:
            from engine.client import Client
            client = Client()
        self.client = client
        self.session = session
        self.lesson = lesson                 # with session: that lesson's containers alone
        self._configs: dict[str, dict] = {}
        self._stacks: dict = {}              # an image's layers, read once (Client.layers' cache)
        self._lock = threading.Lock()

    def containers(self) -> list[dict]:
        found = self.client.ps(all=True)
        if self.session is None:
            return found
        return [c for c in found if (c.get("labels") or {}).get(self.SESSION_LABEL) == self.session
                and (self.lesson is None or (c.get("labels") or {}).get(self.LESSON_LABEL) == self.lesson)]

    def snapshot(self, ref: str) -> dict:
        return self.client.snapshot(ref)

    def transcript(self, ref: str) -> list[dict]:
        record = self.client.inspect(ref, transcript=True)
        with self._lock:
            self._configs[record["id"]] = record.get("config") or {}
        return (record.get("transcript") or {}).get("stages") or []

    def config(self, ref: str) -> dict:
        """The container's config (kept: it does not change while it exists)."""
        with self._lock:
            if ref in self._configs:
                return self._configs[ref]
        record = self.client.inspect(ref)
        with self._lock:
            self._configs[record["id"]] = record.get("config") or {}
        return self._configs[record["id"]]

    def history(self, ref: str) -> list[dict]:
        """None kept: the live engine's sparklines start now."""
        return []

    def diff(self, ref: str) -> list[tuple[str, str]]:
        return self.client.diff(ref, record=False)      # the panel's polling is no user's docker diff

    def layers(self, ref: str) -> list[dict]:
        """The image part is walked once per image; the writable layer each time."""
        with self._lock:
            if len(self._stacks) > 8:
                self._stacks.clear()
        return self.client.layers(ref, cache=self._stacks)

    def subscribe(self, after: int | None = None):
        """Engine events from shortly before now (the last 200), then live."""
        if after is None:
            after = max(0, self.client.cursor() - 200)
        return self.client.subscribe(after=after)


class _Replay:
    """A subscription that hands out a fixed list of events, then nothing."""

    def __init__(self, events: list[dict]):
        self._events = list(events)

    def get(self, timeout: float | None = None) -> dict | None:
        if self._events:
            return self._events.pop(0)
        if timeout:
            threading.Event().wait(min(timeout, 0.05))
        return None

    def close(self) -> None:
        self._events = []


class FixtureSource:
    """A scene recorded by :func:`record`: the same answers every time.

    The file holds ``containers``, and per container id ``snapshots`` (a
    history, oldest first; the last is "now"), ``transcripts``, ``diffs``,
    ``layers``, ``configs``, plus ``events``."""

    lesson: str | None = None            # a recorded scene lists what it recorded, whatever the lesson

    def __init__(self, path: str | Path | dict):
        self.scene = path if isinstance(path, dict) else json.loads(Path(path).read_text())
        self._ids = {c["name"]: c["id"] for c in self.scene["containers"]}

    def _id(self, ref: str) -> str:
        if ref in self._ids:
            return self._ids[ref]
        for cid in self._ids.values():
            if cid.startswith(ref):
                return cid
        raise KeyError(f"no such container: {ref}")

    def containers(self) -> list[dict]:
        return json.loads(json.dumps(self.scene["containers"]))

    def snapshot(self, ref: str) -> dict:
        return self.scene["snapshots"][self._id(ref)][-1]

    def history(self, ref: str) -> list[dict]:
        return self.scene["snapshots"].get(self._id(ref), [])[:-1]

    def transcript(self, ref: str) -> list[dict]:
        return self.scene.get("transcripts", {}).get(self._id(ref), [])

    def config(self, ref: str) -> dict:
        return self.scene.get("configs", {}).get(self._id(ref), {})

    def diff(self, ref: str) -> list[tuple[str, str]]:
        return [tuple(d) for d in self.scene.get("diffs", {}).get(self._id(ref), [])]

    def layers(self, ref: str) -> list[dict]:
        return json.loads(json.dumps(self.scene.get("layers", {}).get(self._id(ref), [])))

    def subscribe(self, after: int | None = None) -> _Replay:
        return _Replay([e for e in self.scene.get("events", []) if e.get("seq", 0) > (after or 0)])


def record(client, *, history: int = 1, interval: float = 0.5, events_after: int = 0,
           replace: dict[str, str] | None = None) -> dict:
    """A scene of every container ``client`` knows, for :class:`FixtureSource`:
    ``history`` snapshots of each running one, ``interval`` seconds apart.
    ``replace``: text to swap everywhere (a private root path for a stable one)."""
    import time

    containers = client.ps(all=True)
    scene = {"containers": containers, "snapshots": {}, "transcripts": {}, "diffs": {}, "layers": {},
             "configs": {}, "events": []}
    running = [c for c in containers if c.get("status") == "running"]
    for n in range(history):
        if n:
            time.sleep(interval)
        for c in running:
            scene["snapshots"].setdefault(c["id"], []).append(client.snapshot(c["id"]))
    for c in containers:
        record_ = client.inspect(c["id"], transcript=True)
        scene["transcripts"][c["id"]] = (record_.get("transcript") or {}).get("stages") or []
        scene["configs"][c["id"]] = record_.get("config") or {}
        if c.get("status") != "running":
            scene["snapshots"][c["id"]] = [{"id": c["id"], "name": c["name"], "status": c.get("status"),
                                            "processes": [], "namespaces": {}, "mounts": [],
                                            "network": None, "resources": None}]
        try:
            scene["diffs"][c["id"]] = [list(d) for d in client.diff(c["id"], record=False)]
        except Exception:  # noqa: BLE001 - a container without a writable layer: no diff
            scene["diffs"][c["id"]] = []
        try:
            scene["layers"][c["id"]] = client.layers(c["id"])
        except Exception:  # noqa: BLE001 - its image's layers unreadable: none recorded
            scene["layers"][c["id"]] = []
    ids = {c["id"] for c in containers}
    scene["events"] = [e for e in client.events(after=events_after) if e.get("id") in ids]
    text = json.dumps(scene, indent=1, ensure_ascii=False)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return json.loads(text)


# -- everything for one refresh -----------------------------------------------------------------

@dataclass
class Fetched:
    """What one refresh brought back from the source (plain data, from a worker thread)."""
    containers: list[dict] = field(default_factory=list)
    selected: str | None = None
    snapshot: dict | None = None
    diff: list | None = None
    layers: list | None = None
    layers_error: str | None = None
    transcript: list | None = None
    transcript_key: tuple | None = None
    config: dict | None = None
    error: str | None = None
    generation: int = 0


def fetch(source: LabSource, selected: str | None, *, fallback: str | None = None, tab: str,
          have_transcript: tuple | None = None, want_config: bool = True, want_layers: bool = True,
          generation: int = 0) -> Fetched:
    """One refresh: the containers, the snapshot of ``selected`` (else of
    ``fallback``, else of :func:`default_selection`), and what the shown tab
    needs besides (the layer diff for Mounts; the layers for Layers, when
    ``want_layers``; the transcript once per start).
    Called on a worker thread; never touches a widget. Errors come back in
    ``error``; a container that vanished meanwhile is no error."""
    out = Fetched(generation=generation)
    try:
        out.containers = list(source.containers())
    except Exception as e:  # noqa: BLE001 - shown in the panel, the next refresh tries again
        out.error = str(e) or type(e).__name__
        return out
    chosen = (find_container(out.containers, selected) or find_container(out.containers, fallback)
              or find_container(out.containers, default_selection(out.containers)))
    if chosen is None:
        return out
    out.selected = chosen["id"]
    try:
        if chosen.get("status") == "running" or (chosen.get("status") == "starting" and chosen.get("pid")):
            out.snapshot = source.snapshot(chosen["id"])        # half-built (run --explain): as built so far
        else:
            out.snapshot = {"id": chosen["id"], "name": chosen.get("name"), "status": chosen.get("status"),
                            "processes": [], "namespaces": {}, "mounts": [], "network": None, "resources": None}
        key = (chosen["id"], chosen.get("started", ""))
        if have_transcript != key:
            out.transcript = list(source.transcript(chosen["id"]) or [])
            out.transcript_key = key
        if want_config:
            out.config = source.config(chosen["id"])
        if tab == "mounts":
            out.diff = [tuple(d) for d in source.diff(chosen["id"])]
        if tab == "layers" and want_layers:
            try:
                out.layers = list(source.layers(chosen["id"]))
            except Exception as e:  # noqa: BLE001 - the store unreadable here: said in the tab, not the panel
                out.layers_error = str(e) or type(e).__name__
    except Exception as e:  # noqa: BLE001 - removed meanwhile, or the engine went away
        out.error = str(e) or type(e).__name__
    return out
