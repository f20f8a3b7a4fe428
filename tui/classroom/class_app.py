"""``container-lab class`` in a terminal: the room's seats, live (a Textual app).

One row per seat -- name, language, doors, lesson and step, steps done, last
checks, minutes since the last step was done (highlighted past
``STUCK_MINUTES`` while a session is open), containers, memory against the
budget -- read again every second (:func:`tui.classroom.roster.roster`, in a
worker thread). ``x`` ends the highlighted seat (its containers removed, its
progress kept); ``q`` quits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

from tui.i18n import detect_language, t

from .roster import roster

STUCK_MINUTES = 10
COLUMNS = ("class.col.seat", "class.col.lang", "class.col.doors", "class.col.lesson", "class.col.step",
           "class.col.done", "class.col.checks", "class.col.minutes", "class.col.containers", "class.col.memory")


def minutes_since(when: str | None, now: dt.datetime | None = None) -> int | None:
    if not when:
        return None
    try:
        then = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return max(0, int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds() // 60))


def row(seat: dict, lang: str) -> list:
    minutes = minutes_since(seat.get("last_activity"))
    stuck = minutes is not None and minutes >= STUCK_MINUTES and seat.get("sessions")
    mem = (seat.get("usage") or {}).get("memory_current") or 0
    budget = (seat.get("budget") or {}).get("memory") or 0
    cells = [seat["name"], seat.get("language") or "-", ",".join(seat.get("doors") or []) or "-",
             seat.get("lesson") or "-", seat.get("step") or "-", str(seat.get("steps_done", 0)),
             ",".join(seat.get("last_checks") or []) or "-", "-" if minutes is None else str(minutes),
             str(len(seat.get("containers") or [])), f"{mem >> 20}/{budget >> 20} MiB"]
    style = "bold red" if stuck else ""
    return [Text(c, style=style) for c in cells]


class ClassApp(App[None]):
    TITLE = "container-lab class"
    BINDINGS = [("x", "end_seat", "End seat"), ("q", "quit", "Quit")]

    def __init__(self, state: Path | None = None):
        super().__init__()
        self.state, self.lang = state, detect_language()

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key in COLUMNS:
            table.add_column(t(self.lang, key), key=key)
        self.refresh_roster()
        self.set_interval(1.0, self.refresh_roster)

    @work(thread=True, exclusive=True)
    def refresh_roster(self) -> None:
        data = roster(self.state)
        self.call_from_thread(self.show, data)

    def show(self, data: dict) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for seat in data["seats"]:
            table.add_row(*row(seat, self.lang), key=seat["name"])
        if data["seats"]:
            table.move_cursor(row=min(keep, len(data["seats"]) - 1))
        self.sub_title = data["engine_error"] or t(self.lang, "class.subtitle", count=len(data["seats"]))

    @work(thread=True)
    def action_end_seat(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        name = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        from engine.client import Client

        try:
            removed = Client(autostart=False).call("seat_rm", name=name).get("removed", [])
            self.call_from_thread(self.notify, t(self.lang, "class.ended_seat", name=name, count=len(removed)))
        except Exception as e:  # noqa: BLE001 - shown, the view goes on
            self.call_from_thread(self.notify, str(e), severity="error")
