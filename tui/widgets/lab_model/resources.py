"""The Resources tab: memory, processes and CPU against their limits, with
their recent history, then the container's events (OOM kills and limit hits
stand out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..strings import counted, tr
from ..table import Bar, Cell, Column, Row, Spark, Table, sized
from .formatting import clock, command_text, human_bytes


@dataclass(frozen=True)
class Gauge:
    """One resource: use, limit, the fraction used and its recent history."""
    key: str
    label: str
    value: float | None
    limit: float | None
    text: str
    history: tuple[float, ...] = ()

    @property
    def fraction(self) -> float:
        if not self.value or not self.limit:
            return 0.0
        return max(0.0, min(1.0, self.value / self.limit))

    @property
    def level(self) -> str:
        """"full" at 100 %, "high" from 80 %, else "ok"."""
        f = self.fraction
        return "full" if f >= 0.999 else "high" if f >= 0.8 else "ok"


def cpu_rates(history: Sequence[dict]) -> list[float]:
    """CPU used between consecutive snapshots of ``history``, in cores."""
    out = []
    for before, after in zip(history, history[1:]):
        try:
            used = after["resources"]["cpu_usage_ns"] - before["resources"]["cpu_usage_ns"]
            out.append(max(0.0, used / 1e9 / (after["time"] - before["time"])))
        except (KeyError, TypeError, ZeroDivisionError):
            continue
    return out


def gauges(history: Sequence[dict], lang: str, *, cpu_limit: float | None = None) -> list[Gauge]:
    """Memory, processes and CPU of the newest snapshot in ``history`` (oldest
    first), each with its limit and its history. ``cpu_limit``: cores (the
    container's ``--cpus``), None when unlimited. Empty without usage data."""
    if not history or not (history[-1].get("resources")):
        return []
    res = history[-1]["resources"]
    mem, mem_limit = res.get("memory_current"), res.get("memory_limit")
    pids, pids_limit = res.get("pids_current"), res.get("pids_limit")

    def of(used: str, limit) -> str:
        return tr("res.of", lang, used=used, limit=limit) if limit else tr("res.no_limit", lang, used=used)

    mem_hist = tuple(float(s["resources"].get("memory_current") or 0) for s in history if s.get("resources"))
    pid_hist = tuple(float(s["resources"].get("pids_current") or 0) for s in history if s.get("resources"))
    rates = cpu_rates(history)
    cpu_now = rates[-1] if rates else None
    cores = (lambda v: tr("res.cores", lang, cores=f"{v:.2f}"))
    cpu_text = (of(cores(cpu_now), cores(cpu_limit) if cpu_limit else None) if cpu_now is not None
                else tr("res.unknown", lang))
    return [
        Gauge("memory", tr("res.memory", lang), mem, mem_limit,
              of(human_bytes(mem), human_bytes(mem_limit) if mem_limit else None) if mem is not None
              else tr("res.unknown", lang), mem_hist),
        Gauge("pids", tr("res.pids", lang), pids, pids_limit,
              of(str(pids), str(pids_limit) if pids_limit else None) if pids is not None
              else tr("res.unknown", lang), pid_hist),
        Gauge("cpu", tr("res.cpu", lang), cpu_now, cpu_limit, cpu_text, tuple(rates)),
    ]


def event_text(event: dict, lang: str) -> tuple[str, str] | None:
    """One engine event as (text, style) for the events list, None if not shown."""
    kind = event.get("kind")
    if kind in ("oom", "pids-limit-hit"):
        return counted(f"ev.{kind}", lang, event.get("count", 1)), "error" if kind == "oom" else "warn"
    if kind == "exited":
        if event.get("oom_killed"):
            return tr("ev.exited_oom", lang, code=event.get("exit_code")), "error"
        return tr("ev.exited", lang, code=event.get("exit_code")), "dim"
    if kind == "exec":
        return tr("ev.exec", lang, cmd=command_text(event.get("argv"))), "dim"
    if kind == "exec-exited":
        return tr("ev.exec-exited", lang, code=event.get("exit_code")), "dim"
    if kind == "kill":
        return tr("ev.kill", lang, signal=event.get("signal")), "dim"
    if kind in ("started", "created", "removed"):
        return tr(f"ev.{kind}", lang), "dim"
    return None


def resource_table(history: Sequence[dict], events: Sequence[dict], lang: str, *,
                   cpu_limit: float | None = None) -> Table:
    """The gauges (label, bar, value) with a sparkline row under memory and
    CPU, then the container's events, newest first (OOM kills and limit hits
    stand out)."""
    rows: list[Row] = []
    gs = gauges(history, lang, cpu_limit=cpu_limit)
    for g in gs:
        rows.append(Row((Cell(g.label, "label"), Bar(g.fraction, f"bar-{g.level}"),
                         Cell(g.text, "full" if g.level == "full" else "")), key=g.key))
        if g.key in ("memory", "cpu"):
            top = g.limit if g.key == "memory" and g.limit else max(g.history or (0.0,))
            if g.key == "cpu":
                top = max(max(g.history or (0.0,)), cpu_limit or 0.0) or 1.0
            rows.append(Row((Cell(tr("res.history", lang), "dim"), Spark(g.history, float(top or 0.0)), ""),
                            key=f"{g.key}:history"))
    if history and not gs:
        rows.append(Row((Cell(tr("res.none", lang), "dim"),), span=True))
    rows.append(Row((tr("res.events", lang),), style="section", span=True))
    shown = [(e, t) for e in events if (t := event_text(e, lang))]
    if not shown:
        rows.append(Row((Cell("  " + tr("res.no_events", lang), "dim"),), span=True))
    for n, (e, (text, style)) in reversed(list(enumerate(shown[-50:]))):      # the newest first
        rows.append(Row((Cell(f"{clock(e.get('time'))}  {text}", style),), span=True,
                        key=f"ev:{e.get('seq', n)}"))
    cols = (Column("", priority=0), Column("", flex=True, min_width=6, width=40),
            Column("", priority=0))
    return Table(sized(cols, rows), tuple(rows), tr("res.note", lang) if gs else "", header=False)
