"""The container list at the top of the lab panel: which containers, in what
order, which one to show, and the table of them (a row per container)."""

from __future__ import annotations

from collections.abc import Sequence

from ..strings import tr
from ..table import Cell, Column, Row, Table, sized
from .formatting import command_text, short_id

LABEL_COURSE, LABEL_LESSON, LABEL_STEP, LABEL_ORIGIN = "course", "course.lesson", "course.step", "course.origin"


def is_lesson_container(c: dict) -> bool:
    """Started by the lesson (its setup, "show me"), not typed by the learner."""
    labels = c.get("labels") or {}
    return LABEL_COURSE in labels and labels.get(LABEL_ORIGIN, "learner") != "learner"


def role(c: dict, lang: str) -> str:
    labels = c.get("labels") or {}
    if is_lesson_container(c):
        lesson, step = labels.get(LABEL_LESSON, ""), labels.get(LABEL_STEP, "")
        return tr("role.lesson_step", lang, lesson=lesson, step=step) if step else tr("role.lesson", lang, lesson=lesson)
    return tr("role.yours", lang)


def status_text(c: dict, lang: str) -> str:
    status = c.get("status") or "?"
    if status == "running":
        return tr("status.running", lang)
    if status == "created":
        return tr("status.created", lang)
    if status == "starting":
        return tr("status.starting", lang)
    if status == "exited":
        if c.get("oom_killed"):
            return tr("status.oom", lang)
        return tr("status.exited", lang, code=c.get("exit_code"))
    return tr("status.other", lang, status=status)


def order_containers(containers: Sequence[dict]) -> list[dict]:
    """The lesson's containers first, then the learner's; running before stopped;
    newest first within each."""
    def key(c):
        return (0 if is_lesson_container(c) else 1, 0 if c.get("status") == "running" else 1,
                _neg_time(c.get("created", "")))
    return sorted(containers, key=key)


def _neg_time(text: str) -> tuple:
    return tuple(-ord(ch) for ch in text)


def default_selection(containers: Sequence[dict]) -> str | None:
    """The container to show when none is chosen: the first running one in
    :func:`order_containers` order, else the first."""
    ordered = order_containers(containers)
    for c in ordered:
        if c.get("status") == "running":
            return c["id"]
    return ordered[0]["id"] if ordered else None


def find_container(containers: Sequence[dict], ref: str | None) -> dict | None:
    """The container ``ref`` names: its id, an id prefix, or its name."""
    if not ref:
        return None
    for c in containers:
        if c["id"] == ref or c.get("name") == ref:
            return c
    matches = [c for c in containers if c["id"].startswith(ref)]
    return matches[0] if len(matches) == 1 else None


def container_table(containers: Sequence[dict], lang: str) -> Table:
    """One row per container (key: its id), in :func:`order_containers` order."""
    rows = []
    for c in order_containers(containers):
        running = c.get("status") == "running"
        starting = c.get("status") == "starting"            # half-built (run --explain): shown, not dimmed
        image = (c.get("image") or {}).get("requested") or (c.get("image") or {}).get("ref") or ""
        mark = "● " if running else "◐ " if starting else "○ "
        rows.append(Row((Cell(mark + c.get("name", short_id(c["id"])), "name"),
                         role(c, lang),
                         Cell(status_text(c, lang), "ok" if running else "warn" if starting else "dim"),
                         image, command_text(c.get("command") or (c.get("process") or {}).get("argv"))),
                        style="" if running or starting else "dim", key=c["id"]))
    cols = (Column(tr("col.name", lang)), Column(tr("col.role", lang), priority=3),
            Column(tr("col.status", lang), priority=1), Column(tr("col.image", lang), priority=4),
            Column(tr("col.command", lang), priority=2, flex=True, min_width=10))
    return Table(sized(cols, rows, cap=40), tuple(rows))
