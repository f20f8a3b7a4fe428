"""The Processes tab: the container's processes as a tree, container PID
beside host PID, and which of them are new since the last refresh."""

from __future__ import annotations

from collections.abc import Sequence

from ..strings import tr
from ..table import Cell, CellType, Column, Row, Table, sized
from .formatting import command_text, human_bytes, sentences


def process_signature(snapshot: dict | None) -> tuple:
    """What :func:`process_table` shows of ``snapshot``: equal signatures, equal tables."""
    procs = (snapshot or {}).get("processes") or []
    return (snapshot is None, tuple((p["host_pid"], p["pid"], p.get("ppid"), p.get("uid"), p.get("uid_host"),
                                     p.get("state"), p.get("rss_kb"), tuple(p.get("cmd") or ())) for p in procs))


def process_tree(procs: Sequence[dict]) -> list[tuple[str, dict]]:
    """The processes in tree order, each with its tree prefix ("├─ ", "│  └─ " ...).

    PID 1 and its descendants come first; processes whose parent is not in
    the container (``exec``: ppid 0) are roots of their own after it. Never
    loops, however odd the parent links."""
    by_pid = {p["pid"]: p for p in procs}
    children: dict[int, list[dict]] = {}
    roots = []
    for p in sorted(procs, key=lambda p: p["pid"]):
        parent = p.get("ppid") or 0
        if parent and parent != p["pid"] and parent in by_pid:
            children.setdefault(parent, []).append(p)
        else:
            roots.append(p)
    out: list[tuple[str, dict]] = []
    seen: set[int] = set()
    # Iterative depth-first walk: (process, prefix for it, prefix for its children).
    stack = [(r, "", "") for r in reversed(roots)]
    while stack:
        p, prefix, child_prefix = stack.pop()
        if p["pid"] in seen:
            continue
        seen.add(p["pid"])
        out.append((prefix, p))
        kids = children.get(p["pid"], [])
        for n, kid in reversed(list(enumerate(kids))):
            last = n == len(kids) - 1
            stack.append((kid, child_prefix + ("└─ " if last else "├─ "),
                          child_prefix + ("   " if last else "│  ")))
    for p in procs:                  # a parent cycle: never reached from a root
        if p["pid"] not in seen:
            seen.add(p["pid"])
            out.append(("", p))
    return out


def user_name(uid: int | None) -> str:
    if uid is None:
        return "?"
    return {0: "root", 65534: "nobody"}.get(uid, str(uid))


def process_table(snapshot: dict | None, lang: str, *, new: frozenset | set = frozenset()) -> Table:
    """The processes of ``snapshot`` as a tree: container PID beside host PID,
    user, state, memory and command. ``new``: host PIDs started since the
    previous refresh (shown highlighted). Key: the host PID."""
    procs = (snapshot or {}).get("processes") or []
    mapped = any(p.get("uid") != p.get("uid_host") for p in procs)
    cols = [Column(tr("col.pid", lang), justify="right"),
            Column(tr("col.host_pid", lang), justify="right"),
            Column(tr("col.user", lang), priority=3)]
    if mapped:
        cols.append(Column(tr("col.host_user", lang), priority=4))
    cols += [Column(tr("col.state", lang), priority=2),
             Column(tr("col.rss", lang), priority=5, justify="right"),
             Column(tr("col.command", lang), flex=True, min_width=12)]
    rows = []
    for prefix, p in process_tree(procs):
        cmd = command_text(p.get("cmd"))
        if p["pid"] != 1 and not p.get("ppid") and p["host_pid"] != (snapshot or {}).get("pid"):
            cmd = f"{cmd} {tr('proc.exec', lang)}"       # (not the container's own command, in another's PID ns)
        state = p.get("state", "?")
        cells: list[CellType] = [Cell(str(p["pid"]), "pid"), Cell(str(p["host_pid"]), "host-pid"),
                                 user_name(p.get("uid"))]
        if mapped:
            cells.append(user_name(p.get("uid_host")))
        cells += [Cell(f"{state} {tr('state.' + state, lang)}" if f"state.{state}" in _STATES else state,
                       "warn" if state in ("Z", "D") else ""),
                  human_bytes((p.get("rss_kb") or 0) * 1024),
                  Cell(prefix + cmd, "")]
        style = "new" if p["host_pid"] in new else ""
        rows.append(Row(tuple(cells), style=style, key=str(p["host_pid"])))
    note = ""
    if procs:
        # said of the rows shown: PID 1 when it is one of them, else the lowest PID there is
        # (a container started with --pid container:OTHER has none of its own)
        first = next((p for p in procs if p["pid"] == 1), None)
        note = (tr("proc.count", lang, count=len(procs)) if len(procs) != 1 else tr("proc.count.one", lang))
        if first is not None:
            note = sentences(lang, note, tr("proc.pid1", lang, host_pid=first["host_pid"]))
        else:
            first = next((p for p in procs if p["host_pid"] == snapshot.get("pid")), None) \
                or min(procs, key=lambda p: p["pid"])
            note = sentences(lang, note, tr("proc.pidn", lang, pid=first["pid"], host_pid=first["host_pid"]),
                             tr("proc.no_pid1", lang))
        if mapped and first.get("uid") == 0:
            note = sentences(lang, note, tr("proc.note.userns", lang, uid=first.get("uid_host")))
    elif snapshot is not None:
        note = tr("proc.none", lang)
    return Table(sized(cols, rows), tuple(rows), note)


_STATES = {f"state.{s}" for s in "RSDZTtI"}


def new_processes(before: dict | None, after: dict | None) -> set[int]:
    """Host PIDs of the processes in ``after`` that were not in ``before``
    (same container; a reused PID with a new start time counts as new)."""
    if not before or not after or before.get("id") != after.get("id"):
        return set()
    was = {(p["host_pid"], p.get("start_ticks")) for p in before.get("processes") or []}
    return {p["host_pid"] for p in after.get("processes") or []
            if (p["host_pid"], p.get("start_ticks")) not in was}
