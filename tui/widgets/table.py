"""The generic table the lab panel's tabs are made of, and how its columns fit a width.

A :class:`Table` is columns and rows of plain cells (text, a :class:`Cell`
with a style, a :class:`Bar`, a :class:`Spark`); :func:`fit_columns`
decides which columns a width keeps and how wide each is, and
:class:`~tui.widgets.rows.RowList` draws the result. What goes in the
tables is :mod:`tui.widgets.lab_model`'s business.

No Textual here (a packaging test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rich.cells import cell_len

SPARK_CHARS = "▁▂▃▄▅▆▇█"
GAP = 1                      # cells between two columns


# -- the table model ----------------------------------------------------------------

class Cell(NamedTuple):
    """A piece of text with a style of its own (a component class suffix)."""
    text: str
    style: str = ""


class Bar(NamedTuple):
    """A gauge bar that fills its column: ``fraction`` of it is used."""
    fraction: float
    style: str = "bar"


class Spark(NamedTuple):
    """A sparkline that fills its column with the newest ``values``, scaled to ``top``."""
    values: tuple[float, ...]
    top: float = 0.0
    style: str = "spark"


CellType = str | Cell | Bar | Spark


@dataclass(frozen=True)
class Column:
    """One column: its header, natural width, and how soon it is dropped."""
    label: str
    width: int = 0                 # natural width in cells (header and widest cell)
    priority: int = 0              # 0: always kept; higher numbers are dropped first
    justify: str = "left"          # "left" or "right"
    flex: bool = False             # takes what is left over (truncated when short)
    min_width: int = 0             # a flex column is dropped below this


@dataclass(frozen=True)
class Row:
    """One line: a cell per column, or one cell across the line (``span``)."""
    cells: tuple[CellType, ...]
    style: str = ""
    key: str | None = None
    span: bool = False


@dataclass(frozen=True)
class Table:
    """Columns, rows, and a short note shown under them."""
    columns: tuple[Column, ...] = ()
    rows: tuple[Row, ...] = ()
    note: str = ""
    header: bool = True


def text_of(cell: CellType) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Cell):
        return cell.text
    return ""


def sized(columns: Sequence[Column], rows: Sequence[Row], *, cap: int = 60) -> tuple[Column, ...]:
    """The columns with their natural widths measured over the rows (at most ``cap``)."""
    widths = [cell_len(c.label) for c in columns]
    for row in rows:
        if row.span:
            continue
        for i, cell in enumerate(row.cells):
            text = text_of(cell)
            n = len(text) if text.isascii() else cell_len(text)
            if n > widths[i]:
                widths[i] = n
    return tuple(Column(c.label, max(c.width, min(w, cap)), c.priority, c.justify, c.flex, c.min_width)
                 for c, w in zip(columns, widths))


def fit_columns(columns: Sequence[Column], width: int) -> list[tuple[int, int]]:
    """Which columns fit in ``width`` cells, and how wide each is: ``[(index, width)]``.

    Columns are dropped highest ``priority`` first (of equal ones, the one
    further right first) until the rest fit at their natural widths -- a flex
    column counts its ``min_width`` -- and the flex column then takes the
    spare cells. Priority-0 columns are never dropped: when even they do not
    fit, the rightmost are cut."""
    keep = list(range(len(columns)))

    def need(indices) -> int:
        total = sum((columns[i].min_width or columns[i].width) if columns[i].flex else columns[i].width
                    for i in indices)
        return total + GAP * max(0, len(indices) - 1)

    for i in sorted(keep, key=lambda i: (columns[i].priority, i), reverse=True):
        if need(keep) <= width:
            break
        if columns[i].priority > 0:
            keep.remove(i)
    spare = max(0, width - need(keep))
    out = []
    for i in keep:
        c = columns[i]
        w = c.width
        if c.flex:
            w = (c.min_width or c.width) + spare
            spare = 0
        out.append((i, max(1, w)))
    used = sum(w for _, w in out) + GAP * max(0, len(out) - 1)
    while out and used > width:
        i, w = out[-1]
        cut = min(w - 1, used - width)
        if cut <= 0:
            out.pop()
            used -= w + GAP
            continue
        out[-1] = (i, w - cut)
        used -= cut
    return out
