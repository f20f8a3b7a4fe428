"""The check kinds about a container's processes as they run, registered on
import by :mod:`lessons.checks`:

- ``stats-read``: what a container uses was read (``docker stats``) since the
  step began [container].
- ``process-state``: a process in state S (``Z`` a zombie, ``T`` stopped, ``R``,
  ``S``, ``D``) is (not) among the container's processes, read from the
  kernel now; that none is, counts only once the container has run for
  ``settle`` seconds (default 2), so that a child that finishes a moment after
  the start has had its moment [container!, state!, present, settle].
"""

from __future__ import annotations

import time

from engine import events

from .checks import BOOL, INT, STR, Param, Result, check, verb_read
from .i18n import count, msg

STATES = ("R", "S", "D", "Z", "T", "t", "I")


@check("stats-read", container=Param(STR))
def _stats_read(view, cursor, args, lang) -> Result:
    return verb_read("stats-read", "stats", view, cursor, args, lang)


@check("process-state", container=Param(STR, required=True), state=Param(STR, required=True, choices=STATES),
       present=Param(BOOL), settle=Param(INT))
def _process_state(view, cursor, args, lang) -> Result:
    name, state, present = args["container"], args["state"], args.get("present", True)
    settle = args.get("settle", 2)
    expected = msg(lang, "exp.state.present" if present else "exp.state.absent", name=name, state=state)
    rec = view.container(name)
    if rec is None or rec.get("status") != "running":
        return Result("process-state", False, msg(lang, "saw.no_such" if rec is None else "saw.not_running",
                                                  name=name), expected)
    procs = view.process_states(rec["pid"])
    hits = [(pid, comm) for pid, st, comm in procs if st == state]
    if hits:
        saw = msg(lang, "saw.state.found", name=name, state=state, pid=hits[0][0], comm=hits[0][1],
                  count=count(lang, len(procs), "process"))
        return Result("process-state", present, saw, expected)
    saw = msg(lang, "saw.state.none", name=name, state=state, count=count(lang, len(procs), "process"))
    if not present:
        try:
            up = time.time() - events.parse_time(rec.get("started") or "")
        except Exception:       # no start time recorded: nothing to wait for
            up = settle
        if up < settle:
            return Result("process-state", False, msg(lang, "saw.state.too_soon", name=name, seconds=settle),
                          expected)
    return Result("process-state", not present, saw, expected)
