"""The What-happened tab: the container's start, stage by stage -- what each
stage did, the equivalent shell commands and the kernel calls -- wrapped to
the panel's width (long paths broken at their slashes)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len

from ..strings import tr
from ..table import Cell, Row, Table


def transcript_table(stages: Sequence[dict] | None, lang: str, width: int) -> Table:
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
