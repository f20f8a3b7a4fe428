"""What the lab panel shows, as plain rows: snapshot dicts in, tables out.

Every function here is pure (what fetches the data is :mod:`tui.widgets.sources`,
the table and its column fitting :mod:`tui.widgets.table`) -- engine data (``Client.ps``, ``Client.snapshot``,
``Client.diff``, a transcript's stages, events) and a language in, a
:class:`Table` out -- so they are tested without Textual and without an
engine. The widget (:mod:`tui.widgets.lab`) only lays the tables out, and
:class:`~tui.widgets.rows.RowList` draws them, dropping the columns of
highest ``priority`` first when the panel is narrow.

A row's ``style`` and a cell's ``style`` name a component class of the
RowList (``rows--<style>``), so every colour stays in the ``.tcss`` file.

No Textual here (a packaging test checks it).

Why one file of about 700 lines: it is one short pure function (or two) per
tab of the panel, all built from the same formatters and words, and read
together when a tab's look changes; the generic parts went to
:mod:`tui.widgets.table` and the reading of a source to :mod:`tui.widgets.sources`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rich.cells import cell_len

from engine.namespaces import KINDS as NAMESPACE_ORDER

from .strings import counted, tr
from .table import Bar, Cell, CellType, Column, Row, Spark, Table, sized

TABS = ("processes", "namespaces", "mounts", "network", "resources", "transcript")


# -- small formatters -----------------------------------------------------------------

def human_bytes(n: int | float | None, lang: str = "en") -> str:
    """1536 -> "1.5 KiB"; None -> "?"."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"


def clock(t: float | str | None) -> str:
    """An epoch time or an RFC 3339 time as local HH:MM:SS ("" if unknown)."""
    if t is None or t == "":
        return ""
    if isinstance(t, str):
        try:
            from engine.events import parse_time
            t = parse_time(t)
        except Exception:  # noqa: BLE001 - a malformed time shows as nothing
            return ""
    return time.strftime("%H:%M:%S", time.localtime(t))


def sentences(lang: str, *parts: str) -> str:
    """Sentences one after another: with a space in English, none after a Chinese "。"."""
    return ("" if lang == "zh" else " ").join(p for p in parts if p)


def short_id(text: str, n: int = 12) -> str:
    return text[:n]


def command_text(argv: Iterable[str] | None) -> str:
    """argv as one line, arguments with spaces quoted."""
    return _command_text(tuple(argv or ()))


@lru_cache(maxsize=4096)
def _command_text(argv: tuple[str, ...]) -> str:
    import shlex
    return " ".join(shlex.quote(a) if a and not a.startswith("[") else a for a in argv)


def process_signature(snapshot: dict | None) -> tuple:
    """What :func:`process_table` shows of ``snapshot``: equal signatures, equal tables."""
    procs = (snapshot or {}).get("processes") or []
    return (snapshot is None, tuple((p["host_pid"], p["pid"], p.get("ppid"), p.get("uid"), p.get("uid_host"),
                                     p.get("state"), p.get("rss_kb"), tuple(p.get("cmd") or ())) for p in procs))


# -- containers ---------------------------------------------------------------------------

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


# -- processes --------------------------------------------------------------------------------

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


# -- namespaces -------------------------------------------------------------------------------

def namespace_state(entry: dict) -> tuple:
    """What of one namespace entry is compared between refreshes. A namespace
    shared with the host is shared with every container that has the host's
    too, so which other containers those are is not news."""
    if entry.get("shared_with_host"):
        return (entry.get("inode"), True, ())
    return (entry.get("inode"), False, tuple(entry.get("shared_with") or ()))


def namespace_changes(before: dict | None, after: dict | None) -> set[str]:
    """The namespace kinds whose inode or sharing differs between two snapshots
    of the same container (none across different containers)."""
    if not before or not after or before.get("id") != after.get("id"):
        return set()
    old, new = before.get("namespaces") or {}, after.get("namespaces") or {}
    if not old or not new:
        return set()
    return {k for k in new if k in old and namespace_state(old[k]) != namespace_state(new[k])}


def namespace_status(entry: dict, lang: str) -> Cell:
    """"isolated" or "shared with host" / "shared with db" (with its style)."""
    others = entry.get("shared_with") or []
    if entry.get("shared_with_host"):
        return Cell(tr("ns.shared_host", lang), "shared")
    if others:
        return Cell(tr("ns.shared_with", lang, names=", ".join(others)), "shared")
    return Cell(tr("ns.isolated", lang), "isolated")


def namespace_table(snapshot: dict | None, lang: str, *, changed: set | frozenset = frozenset()) -> Table:
    """Each namespace kind: the container's inode beside the host's, isolated or
    shared (with the host or other containers), what it isolates. ``changed``:
    kinds that changed lately (highlighted). Key: the kind."""
    spaces = (snapshot or {}).get("namespaces") or {}
    kinds = [k for k in NAMESPACE_ORDER if k in spaces] + sorted(k for k in spaces if k not in NAMESPACE_ORDER)
    rows = []
    for kind in kinds:
        e = spaces[kind]
        status = namespace_status(e, lang)
        if kind in changed:
            status = Cell(f"{status.text} · {tr('ns.changed', lang)}", status.style)
        same = e.get("inode") == e.get("host")
        rows.append(Row((Cell(kind, "kind"), Cell(str(e.get("inode", "?")), "shared" if same else "isolated"),
                         Cell(str(e.get("host") or "?"), "dim"), status,
                         tr(f"ns.what.{kind}", lang) if f"ns.what.{kind}" in _NS_WHAT else ""),
                        style="changed" if kind in changed else "", key=kind))
    cols = (Column(tr("col.ns", lang)), Column(tr("col.ns_container", lang), justify="right"),
            Column(tr("col.ns_host", lang), justify="right", priority=1),
            Column(tr("col.ns_status", lang)),
            Column(tr("col.ns_what", lang), priority=2, flex=True, min_width=12))
    note = ""
    if rows:
        ref = (snapshot or {}).get("reference", "")
        where = tr("ns.ref.host", lang) if "PID 1" in ref else tr("ns.ref.self", lang)
        note = tr("ns.note", lang, reference=where)
    elif snapshot is not None:
        note = tr("ns.none", lang)
    return Table(sized(cols, rows), tuple(rows), note)


_NS_WHAT = {f"ns.what.{k}" for k in NAMESPACE_ORDER}


# -- mounts ---------------------------------------------------------------------------------

def overlay_of(snapshot: dict | None) -> dict | None:
    """The root overlay's ``{lower, upper, work}`` (lower: top layer first), or None."""
    for m in (snapshot or {}).get("mounts") or []:
        if m.get("target") == "/" and m.get("overlay"):
            return m["overlay"]
    return None


def layer_name(path: str) -> str:
    """A layer directory as its short digest (the store names layers by sha256)."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return base[:12] if len(base) >= 32 and all(ch in "0123456789abcdef" for ch in base) else path


def mount_table(snapshot: dict | None, diff: Sequence[Sequence[str]] | None, lang: str,
                width: int | None = None) -> Table:
    """The overlay spelled out -- image layers (read-only), the writable layer,
    its changes (``docker diff``) -- then the mount table as the container sees it.
    ``width``: the headings are wrapped to it (else each is one line)."""
    from engine import explain

    def heading(text: str) -> list[Row]:
        """A section heading: wrapped to ``width``, never cut."""
        lines = explain.wrap(text, max(12, width)) if width else [text]
        return [Row((line,), style="section", span=True) for line in lines]

    rows: list[Row] = []
    overlay = overlay_of(snapshot)
    if overlay:
        rows += heading(tr("mnt.layers", lang))
        lower = overlay.get("lower") or []
        for n, path in enumerate(lower):
            rows.append(Row((Cell(tr("mnt.layer", lang, n=len(lower) - n), "dim"),
                             Cell(layer_name(path), "layer"), "", Cell(path, "dim")), key=f"layer:{n}"))
        rows += heading(tr("mnt.upper", lang))
        rows.append(Row((Cell(tr("mnt.writable", lang), "dim"), Cell("upper", "upper"), "",
                         Cell(overlay.get("upper", ""), "dim")), key="upper"))
    if diff is not None:
        rows += heading(tr("mnt.changes", lang))
        if not diff:
            rows.append(Row((Cell("  " + tr("mnt.no_changes", lang), "dim"),), span=True))
        for kind, path in diff:
            style = {"A": "added", "C": "changed-file", "D": "deleted"}.get(kind, "")
            rows.append(Row((Cell(f"{kind} {tr('mnt.change.' + kind, lang)}" if kind in "ACD" else kind, style),
                             Cell(path, style), "", ""), key=f"diff:{path}"))
    mounts = (snapshot or {}).get("mounts") or []
    if mounts:
        rows += heading(tr("mnt.table", lang))
        rows.append(Row(tuple(tr(k, lang) for k in ("col.fstype", "col.target", "col.source", "col.options")),
                        style="subheader"))
    for m in mounts:
        rows.append(Row((Cell(m.get("fstype", ""), "overlay" if m.get("fstype") == "overlay" else ""),
                         Cell(m.get("target", ""), "target"), m.get("source", ""), Cell(m.get("options", ""), "dim")),
                        key=f"mount:{m.get('id')}"))
    cols = (Column(""), Column(""), Column("", priority=2), Column("", priority=1, flex=True, min_width=12))
    note = tr("mnt.note", lang) if overlay else (tr("mnt.none", lang) if snapshot is not None and not mounts else "")
    return Table(sized(cols, rows, cap=48), tuple(rows), note, header=False)


# -- network ----------------------------------------------------------------------------------

def network_table(snapshot: dict | None, lang: str) -> Table:
    """Interfaces, addresses and routes of the container's network namespace.
    Copes with a snapshot that has no ``network`` (an older engine) or None."""
    snap = snapshot or {}
    net = snap.get("network")
    if not isinstance(net, dict):
        why = snap.get("network_error")
        note = tr("net.unavailable", lang, why=why) if why and snap.get("status") == "running" else ""
        return Table((Column(tr("col.if", lang)),), (), note)
    def heading(*keys: str) -> Row:
        return Row(tuple(tr(k, lang) if k else "" for k in keys), style="subheader")

    rows: list[Row] = [Row((tr("net.interfaces", lang),), style="section", span=True),
                       heading("col.if", "col.kind", "col.if_state", "col.mtu", "col.mac", "col.rxtx")]
    for i in net.get("interfaces") or []:
        up = i.get("up")
        state = tr("if.up", lang) if up else tr("if.down", lang)
        kind = i.get("kind") or i.get("type") or ""
        rows.append(Row((Cell(i.get("name", "?"), "if"), kind, Cell(state, "ok" if up else "warn"),
                         str(i.get("mtu", "")), Cell(i.get("mac") or "", "dim"),
                         f"{human_bytes(i.get('rx_bytes'))} / {human_bytes(i.get('tx_bytes'))}"),
                        key=f"if:{i.get('index')}"))
    rows.append(Row((tr("net.addresses", lang),), style="section", span=True))
    rows.append(heading("col.if", "col.family", "col.address", "", "col.scope", ""))
    for a in net.get("addresses") or []:
        rows.append(Row((Cell(a.get("interface") or str(a.get("index", "")), "if"), a.get("family", ""),
                         Cell(f"{a.get('address')}/{a.get('prefixlen')}", "address"), "",
                         Cell(a.get("scope") or "", "dim"), ""),
                        key=f"addr:{a.get('address')}/{a.get('prefixlen')}"))
    rows.append(Row((tr("net.routes", lang),), style="section", span=True))
    routes = net.get("routes") or []
    if routes:
        rows.append(heading("col.dev", "col.family", "col.dst", "col.gateway", "col.scope", "col.prefsrc"))
    if not routes:
        rows.append(Row((Cell("  " + tr("net.no_routes", lang), "dim"),), span=True))
    for r in routes:
        via = r.get("gateway") or ""
        rows.append(Row((Cell(r.get("dev") or "", "if"), r.get("family", ""),
                         Cell(r.get("dst") or "", "address"), via, Cell(r.get("scope") or "", "dim"),
                         r.get("prefsrc") or ""),
                        key=f"route:{r.get('dst')}:{r.get('dev')}:{r.get('metric')}"))
    # Three lists share the columns; each section has its own heading row.
    cols = (Column(""), Column("", priority=2), Column(""), Column("", priority=3),
            Column("", priority=4), Column("", priority=5))
    ifaces = net.get("interfaces") or []
    if net.get("entered") is False:
        note = tr("net.note.host", lang)
    elif all((i.get("type") == "loopback" or i.get("name") == "lo") for i in ifaces):
        note = tr("net.note.none", lang)
    else:
        note = tr("net.note.own", lang)
    return Table(sized(cols, rows, cap=40), tuple(rows), note, header=False)


# -- resources -------------------------------------------------------------------------------

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


def counter_events(before: dict | None, after: dict | None) -> list[dict]:
    """OOM kills and pids-limit hits between two snapshots of one container,
    as engine-style events -- for a source with no event stream."""
    if not before or not after or before.get("id") != after.get("id"):
        return []
    out = []
    old, new = before.get("resources") or {}, after.get("resources") or {}
    for counter, kind in (("oom_kills", "oom"), ("pids_max_hits", "pids-limit-hit")):
        a, b = old.get(counter), new.get(counter)
        if a is not None and b is not None and b > a:
            out.append({"kind": kind, "id": after.get("id"), "count": b - a, "time": after.get("time")})
    return out


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


# -- what happened ------------------------------------------------------------------------------

def transcript_table(stages: Sequence[dict] | None, lang: str, width: int, *,
                     kernel_label: str = "", shell_label: str = "") -> Table:
    """The container's start, stage by stage: the title and time, the plain
    explanation (wrapped to ``width``), the equivalent shell commands and the
    kernel calls. Everything spans the line, so it is wrapped here."""
    from engine import explain

    if not stages:
        return Table((), (Row((Cell(tr("tr.none", lang), "dim"),), span=True),), "", header=False)
    width = max(20, width)
    rows: list[Row] = []
    total = 0.0
    for n, stage in enumerate(stages, 1):
        ms = stage.get("ms")
        total += ms or 0.0
        title = tr("tr.stage", lang, n=n, title=explain.stage_title(stage, lang))
        if ms is not None:
            title += "  " + tr("tr.ms", lang, ms=f"{ms:.1f}")
        for i, line in enumerate(explain.wrap(title, width)):
            rows.append(Row((line if i == 0 else "   " + line,), style="title", span=True, key=f"{stage.get('id')}:t{i}"))
        for line in explain.wrap(explain.stage_text(stage.get("id", ""), lang), width - 3):
            rows.append(Row(("   " + line,), style="text", span=True))
        for op in stage.get("ops") or []:
            if op.get("shell"):
                rows += _wrapped("   $ ", shorten_ids(op["shell"]), width, "shell")
        for op in stage.get("ops") or []:
            rows += _wrapped("   ⚙ ", shorten_ids(explain.kernel_call(op)), width, "kernel")
        rows.append(Row(("",), span=True))
    note = tr("tr.note", lang, count=len(stages), ms=f"{total:.1f}")
    return Table((), tuple(rows), note, header=False)


_LONG_ID = None


def shorten_ids(text: str) -> str:
    """Container and layer ids (64 hex digits) cut to 12, as ``docker ps`` shows them."""
    global _LONG_ID
    if _LONG_ID is None:
        import re
        _LONG_ID = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")
    return _LONG_ID.sub(r"\1…", text)


def wrap_command(text: str, width: int, *, long_word: int = 16) -> list[str]:
    """A command (or kernel call) in lines of at most ``width`` cells: broken
    at spaces, and inside a word longer than ``long_word`` (a path) when that
    word does not fit, so the line is filled instead of left short."""
    width = max(8, width)
    lines, line = [], ""
    for word in text.split(" "):
        sep = " " if line else ""
        if cell_len(line + sep + word) <= width:
            line += sep + word
            continue
        if cell_len(word) > long_word or cell_len(word) > width:
            room = width - cell_len(line + sep)
            if room > 4:
                cut = _cut(word, room)
                line += sep + word[:cut]
                word = word[cut:]
            lines.append(line)
            while cell_len(word) > width:
                cut = _cut(word, width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return lines


def _cut(word: str, room: int) -> int:
    """Where to break a word too long for ``room`` cells: before its last ``/`` that
    leaves at least half the room filled (a path breaks between its parts), else at the room."""
    at = word.rfind("/", 1, room)
    return at if at >= room // 2 else room


def _wrapped(lead: str, text: str, width: int, style: str) -> list[Row]:
    """``text`` after ``lead``, wrapped, continuation lines indented under it (the text
    after the first line wrapped as it is: a word broken there gets no space inside)."""
    pad = " " * (cell_len(lead) + 2)
    first = wrap_command(text, width - cell_len(lead))
    rest = []
    if len(first) > 1:
        after = text[len(first[0]):].lstrip(" ") if text.startswith(first[0]) else " ".join(first[1:])
        rest = wrap_command(after, width - len(pad))
    return [Row((lead + first[0],), style=style, span=True)] + [
        Row((pad + line,), style=style, span=True) for line in rest]
