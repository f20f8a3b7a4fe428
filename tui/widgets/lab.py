"""LabPanel: the lesson's containers, live, beside the lesson.

At the top the containers -- the lesson's (by their ``course`` labels) and
the learner's own -- with their state; below, tabs on the selected one:
Processes, Namespaces, Mounts, Layers (the image's layers and the
writable one on top, each with what it changed), Network, Resources and
What happened (its start, stage by stage). See :mod:`tui.widgets.lab_model` for what each tab
holds; this module only moves data and lays it out.

How the data moves (attributes down, messages up):

- a timer ticks at ``rate`` Hz (2 by default) -- and does nothing while the
  panel is not on screen, so a hidden panel costs nothing;
- each tick starts a thread worker (``group="lab"``) that asks the
  *source* (:mod:`tui.widgets.sources`) for the containers and the
  selected one's snapshot, and posts :class:`LabPanel.Fetched` with plain
  data; the panel updates its lists on that message, on the app's loop;
- a second thread worker listens to the engine's event stream (OOM kills,
  limit hits, containers starting and exiting) and posts the events;
- the Layers tab reads an image's layers once (the source keeps them by
  image) and the writable layer at most every :data:`LAYERS_EVERY` seconds;
- with ``live=False`` (snapshot tests, a recorded scene) there is no timer
  and no thread: the source is read once, on the loop, and on each
  :meth:`select` or :meth:`show_tab`.

The app's API (:class:`tui.contracts.LabView`): ``LabPanel(lang="en", source=None)``,
:meth:`set_language`, :meth:`show_lesson`, :meth:`select`, :meth:`show_tab` and the message
:class:`LabPanel.ContainerSelected`.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from . import lab_model as model
from .rows import RowList
from .sources import Fetched as FetchedData
from .sources import LabSource, fetch
from .strings import tr

NARROW = 74                   # below this width (inside the border) the tabs stand in two rows: one row needs 74 cells
NEW_FOR = 2.0                 # seconds a new process stays highlighted
CHANGED_FOR = 6.0             # seconds a changed namespace stays highlighted
HISTORY = 120                 # snapshots kept per container for the sparklines
LAYERS_EVERY = 2.0            # seconds between two walks of the writable layer (Layers tab)


class LabPanel(Vertical):
    """The live lab panel (see the module docstring)."""

    DEFAULT_CSS = (Path(__file__).with_name("lab.tcss")).read_text(encoding="utf-8")

    class ContainerSelected(Message):
        """The panel now shows another container (the user chose it, or :meth:`select`)."""

        def __init__(self, panel: LabPanel, container_id: str, name: str) -> None:
            super().__init__()
            self.panel = panel
            self.container_id = container_id
            self.name = name

        @property
        def control(self) -> LabPanel:
            return self.panel

    class Fetched(Message):
        """A refresh's data, from the worker thread (plain data only)."""

        def __init__(self, data: FetchedData) -> None:
            super().__init__()
            self.data = data

    class EngineEvents(Message):
        """Events from the engine's stream, from the listening thread."""

        def __init__(self, events: list[dict]) -> None:
            super().__init__()
            self.events = events

    def __init__(self, lang: str = "en", source: LabSource | None = None, *, rate: float = 2.0, live: bool = True,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if source is None:
            from .sources import EngineSource
            source = EngineSource()
        self.lang = lang
        self.source = source
        self.rate = rate
        self.live = live
        self._containers: list[dict] = []
        self._selected: str | None = None          # container id shown
        self._wanted: str | None = None            # what select() asked for (may not exist yet)
        self._snap: dict | None = None
        self._prev: dict[str, dict] = {}
        self._history: dict[str, deque] = {}
        self._new: dict[int, float] = {}           # host PID -> highlighted until
        self._changed: dict[str, float] = {}       # namespace kind -> highlighted until
        self._transcripts: dict[tuple, list] = {}
        self._transcript_key: dict[str, tuple] = {}
        self._configs: dict[str, dict] = {}
        self._diffs: dict[str, list] = {}
        self._layers: dict[str, list] = {}
        self._layers_error: dict[str, str | None] = {}
        self._layers_at: dict[str, float] = {}     # container id -> when its layers were last asked for
        self._events: dict[str, deque] = {}
        self._error: str | None = None
        self._generation = 0
        self._applied = 0
        self._worker = None
        self._tab = "processes"
        self._narrow = False
        self._transcript_table: tuple = (None, None)
        self._process_table: tuple = (None, None)
        self._layer_table: tuple = (None, None)
        self.refreshes = 0                         # how many refreshes were applied (tests, bench)

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield RowList(cursor=True, id="lab-containers")
        yield Static("", id="lab-status")
        with TabbedContent(id="lab-tabs", initial=self._tab):
            for tab in model.TABS:
                with TabPane(tr(f"tab.{tab}", self.lang), id=tab):
                    # the note right under the rows; a long table scrolls above it
                    note = Static("", id=f"lab-note-{tab}", classes="lab-note")
                    yield RowList(id=f"lab-{tab}", classes="lab-rows", below=note)
                    yield note

    def on_mount(self) -> None:
        self.border_title = tr("lab.title", self.lang)
        if self.live:
            self.set_interval(1 / self.rate, self._tick, name="lab-refresh")
            self._listen()
        else:
            self._drain_events()
        self._request()

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.set_class(narrow, "-tabs-two-rows")
        if self._tab in ("transcript", "mounts"):     # wrapped to the width: wrap again
            self.call_after_refresh(self._redraw_tab, self._tab)

    # -- the app's API --------------------------------------------------------------------
    def set_language(self, lang: str) -> None:
        """Show every word in ``lang`` ("en" or "zh"), in place."""
        self.lang = lang
        if not self.is_mounted:
            return                                  # compose uses it
        self._label_tabs()
        self._redraw()

    def show_lesson(self, lesson_id: str) -> None:
        """That lesson's containers alone (a source for one app session lists its lesson's)."""
        self.source.lesson = lesson_id

    def select(self, ref: str) -> None:
        """Show container ``ref`` (id, id prefix or name); it may appear later."""
        self._wanted = ref
        if not self.is_mounted:
            return                                  # the first refresh looks for it
        found = model.find_container(self._containers, ref)
        if found is not None:
            self._choose(found["id"])
        self._request(force=True)

    def show_tab(self, name: str) -> None:
        """Bring tab ``name`` forward: one of ``lab_model.TABS``."""
        if name not in model.TABS:
            raise ValueError(f"unknown tab {name!r}: one of {', '.join(model.TABS)}")
        if not self.is_mounted:
            self._tab = name                        # compose opens it
            return
        self.query_one("#lab-tabs", TabbedContent).active = name
        self._switched(name)

    @property
    def selected(self) -> str | None:
        """The id of the container shown."""
        return self._selected

    @property
    def tab(self) -> str:
        return self._tab

    # -- refreshing ---------------------------------------------------------------------------
    def _visible(self) -> bool:
        """On screen now: displayed, on the current screen, inside the window."""
        try:
            return self.display and self.screen.is_current and self.is_on_screen
        except Exception:  # noqa: BLE001 - not mounted (any more)
            return False

    def _tick(self) -> None:
        if not self._visible():
            return                                  # paused while hidden
        if self._worker is not None and self._worker.is_running:
            return                                  # the previous refresh is still under way
        self._request()

    def _request(self, *, force: bool = False) -> None:
        """Fetch now: on a worker thread (live), or right here (``live=False``)."""
        self._generation += 1
        wanted = self._wanted or self._selected
        have = self._transcript_key.get(self._selected or "")
        want_config = not self._selected or self._selected not in self._configs
        want_layers = self._want_layers(force)
        if not self.live:
            data = fetch(self.source, wanted, fallback=self._selected, tab=self._tab,
                         have_transcript=have, want_config=True, generation=self._generation)
            self._seed_history(data)
            self._apply(data)
            return
        if not force and self._worker is not None and self._worker.is_running:
            return
        self._worker = self._fetch(wanted, self._selected, self._tab, have, want_config, want_layers,
                                   self._generation)

    def _want_layers(self, force: bool) -> bool:
        """Whether this refresh reads the layers: on the Layers tab, when asked
        (a new container, the tab just opened) or every :data:`LAYERS_EVERY` seconds."""
        if self._tab != "layers":
            return False
        now, key = time.monotonic(), self._wanted or self._selected or ""
        if not force and key in self._layers and now - self._layers_at.get(key, 0.0) < LAYERS_EVERY:
            return False
        self._layers_at[key] = now
        return True

    @work(thread=True, exclusive=True, group="lab", exit_on_error=False)
    def _fetch(self, wanted, fallback, tab, have, want_config, want_layers, generation) -> None:
        data = fetch(self.source, wanted, fallback=fallback, tab=tab, have_transcript=have,
                     want_config=want_config, want_layers=want_layers, generation=generation)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Fetched(data))

    def _seed_history(self, data: FetchedData) -> None:
        """A recorded scene's earlier snapshots, so sparklines and highlights show."""
        sid = data.selected
        if sid and sid not in self._history:
            for snap in self.source.history(sid):
                self._remember(sid, snap)

    @on(Fetched)
    def _on_fetched(self, message: Fetched) -> None:
        message.stop()
        self._apply(message.data)

    def _apply(self, data: FetchedData) -> None:
        if data.generation < self._applied:
            return                                  # overtaken by a newer refresh
        self._applied = data.generation
        self.refreshes += 1
        self._error = data.error
        if data.error and not data.containers:
            self._redraw()
            return
        self._containers = data.containers
        if data.selected is not None and (self._wanted is None or
                                          model.find_container(data.containers, self._wanted)):
            if self._wanted and model.find_container(data.containers, self._wanted)["id"] == data.selected:
                self._wanted = None
            self._choose(data.selected)
        elif data.selected is None and not data.containers:
            self._selected, self._snap = None, None
        sid = data.selected
        if sid is not None and sid == self._selected:
            if data.snapshot is not None:
                self._take_snapshot(sid, data.snapshot)
            if data.transcript_key is not None:
                self._transcripts[data.transcript_key] = data.transcript or []
                self._transcript_key[sid] = data.transcript_key
            if data.config is not None:
                self._configs[sid] = data.config
            if data.diff is not None:
                self._diffs[sid] = data.diff
            if data.layers is not None or data.layers_error is not None:
                self._layers[sid] = data.layers
                self._layers_error[sid] = data.layers_error
        self._redraw()

    def _choose(self, cid: str) -> None:
        if cid == self._selected:
            return
        self._selected = cid
        self._snap = self._prev.get(cid)
        found = model.find_container(self._containers, cid)
        self.query_one("#lab-containers", RowList).move_to_key(cid)
        self.post_message(self.ContainerSelected(self, cid, (found or {}).get("name", cid)))

    def _remember(self, cid: str, snap: dict) -> None:
        """Keep ``snap``'s usage in the history of ``cid``, and ``snap`` as the
        one to compare the next with (if it is a whole snapshot)."""
        hist = self._history.setdefault(cid, deque(maxlen=HISTORY))
        if snap.get("resources") is not None and snap.get("time") is not None:
            hist.append({"id": cid, "time": snap["time"], "resources": snap["resources"]})
        if "processes" in snap:
            self._prev[cid] = snap

    def _take_snapshot(self, cid: str, snap: dict) -> None:
        now = time.monotonic()
        before = self._prev.get(cid)
        for host_pid in model.new_processes(before, snap):
            self._new[host_pid] = now + NEW_FOR
        for kind in model.namespace_changes(before, snap):
            self._changed[kind] = now + CHANGED_FOR
        self._remember(cid, snap)
        self._snap = snap

    # -- engine events ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="lab-events", exit_on_error=False)
    def _listen(self) -> None:
        """Follow the engine's events until the panel goes away (reconnecting if need be)."""
        worker = get_current_worker()
        sub = None
        while not worker.is_cancelled:
            try:
                if sub is None:
                    sub = self.source.subscribe()
                batch = []
                event = sub.get(timeout=0.5)
                while event is not None and len(batch) < 200:
                    batch.append(event)
                    event = sub.get(timeout=0)
                if batch:
                    self.post_message(self.EngineEvents(batch))
            except Exception:  # noqa: BLE001 - the supervisor went away: try again shortly
                if sub is not None:
                    sub.close()
                sub = None
                worker.cancelled_event.wait(2.0)
        if sub is not None:
            sub.close()

    def _drain_events(self) -> None:
        sub = self.source.subscribe()
        events = []
        while (event := sub.get(timeout=0)) is not None:
            events.append(event)
        sub.close()
        self._store_events(events)

    @on(EngineEvents)
    def _on_engine_events(self, message: EngineEvents) -> None:
        message.stop()
        if self._store_events(message.events) and self.live:
            self._request(force=True)               # a container came or went: show it now
        elif self._tab == "resources":
            self._redraw_tab("resources")

    def _store_events(self, events: list[dict]) -> bool:
        """Keep each event under its container; True if the list of containers changed."""
        lifecycle = False
        for event in events:
            if event.get("id"):
                self._events.setdefault(event["id"], deque(maxlen=100)).append(event)
            lifecycle |= event.get("kind") in ("created", "started", "exited", "removed", "exec")
        return lifecycle

    # -- drawing ---------------------------------------------------------------------------------
    @on(TabbedContent.TabActivated, "#lab-tabs")
    def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        event.stop()
        self._switched(event.pane.id or "processes")

    def _switched(self, tab: str) -> None:
        if tab == self._tab:
            return
        self._tab = tab
        self._redraw_tab(tab)
        if tab in ("mounts", "layers") and self._selected:
            self._request(force=True)                # the layer diff, the layers: fetched for these tabs only

    @on(RowList.Highlighted, "#lab-containers")
    def _on_container_highlighted(self, event: RowList.Highlighted) -> None:
        event.stop()
        if event.key and event.key != self._selected:
            self._wanted = None
            self._choose(event.key)
            self._redraw()
            self._request(force=True)

    def _label_tabs(self) -> None:
        tabs = self.query_one("#lab-tabs", TabbedContent)
        for tab in model.TABS:              # the names the lessons use, at every width
            tabs.get_tab(tab).label = tr("tab." + tab, self.lang)

    def _redraw(self) -> None:
        """Everything shown, from the data in hand (no fetching)."""
        lang = self.lang
        found = model.find_container(self._containers, self._selected)
        title = tr("lab.title.selected", lang, name=found.get("name", "")) if found else tr("lab.title", lang)
        if self.border_title != title:
            self.border_title = title
        containers = self.query_one("#lab-containers", RowList)
        containers.show(model.container_table(self._containers, lang), empty=tr("lab.empty", lang))
        containers.move_to_key(self._selected)
        status = self.query_one("#lab-status", Static)
        message = ""
        if self._error:
            message = tr("lab.unreachable", lang, error=self._error)
        elif found is not None and found.get("status") == "starting":
            message = tr("lab.starting", lang, name=found.get("name", ""))
        elif found is not None and found.get("status") != "running":
            message = tr("lab.not_running", lang, name=found.get("name", ""),
                         status=model.status_text(found, lang))
        elif self._containers and found is None:
            message = tr("lab.none_selected", lang)
        _set_text(status, message)
        self._redraw_tab(self._tab)

    def _redraw_tab(self, tab: str) -> None:
        lang = self.lang
        snap = self._snap if self._snap and self._snap.get("id") == self._selected else None
        now = time.monotonic()
        if tab == "processes":
            new = frozenset(pid for pid, until in self._new.items() if until > now or not self.live)
            # 500 sleeping processes look the same twice a second: build their rows once.
            key = (lang, new, model.process_signature(snap))
            if self._process_table[0] != key:
                self._process_table = (key, model.process_table(snap, lang, new=new))
            table = self._process_table[1]
        elif tab == "namespaces":
            changed = {k for k, until in self._changed.items() if until > now or not self.live}
            table = model.namespace_table(snap, lang, changed=changed)
        elif tab == "mounts":
            rows = self.query_one(f"#lab-{tab}", RowList)
            width = (rows.scrollable_content_region.width or self.size.width or 60) - 1
            table = model.mount_table(snap, self._diffs.get(self._selected or ""), lang, width)
        elif tab == "layers":
            sid = self._selected or ""
            layers, error = self._layers.get(sid), self._layers_error.get(sid)
            drawn, table = self._layer_table            # drawn: (layers, lang, error) it was made of
            if drawn is None or drawn[0] is not layers or drawn[1:] != (lang, error):
                table = model.layer_table(layers, lang, error=error)
                self._layer_table = ((layers, lang, error), table)
        elif tab == "network":
            table = model.network_table(snap, lang)
        elif tab == "resources":
            cpus = (self._configs.get(self._selected or "") or {}).get("cpus")
            table = model.resource_table(list(self._history.get(self._selected or "", ())),
                                         list(self._events.get(self._selected or "", ())), lang,
                                         cpu_limit=cpus)
        else:
            key = self._transcript_key.get(self._selected or "")
            rows = self.query_one(f"#lab-{tab}", RowList)
            width = (rows.scrollable_content_region.width or self.size.width or 60) - 1
            if self._transcript_table[0] != (key, lang, width):
                table = model.transcript_table(self._transcripts.get(key) if key else None, lang, width)
                self._transcript_table = ((key, lang, width), table)
            table = self._transcript_table[1]
        self.query_one(f"#lab-{tab}", RowList).show(table)
        note = self.query_one(f"#lab-note-{tab}", Static)
        _set_text(note, table.note)
        # Forget highlights that are over.
        if self.live:
            self._new = {p: u for p, u in self._new.items() if u > now}
            self._changed = {k: u for k, u in self._changed.items() if u > now}


def _set_text(static: Static, text: str) -> None:
    """Show ``text`` (hide the widget when empty) -- only if it changed: a new
    text means a new layout, which is not free at 2 Hz."""
    if getattr(static, "_lab_text", None) == text:
        return
    static._lab_text = text
    static.update(text)
    static.display = bool(text)
