"""RowList: draws a :class:`~tui.widgets.table.Table`, one line at a time.

Textual's line API (like ``Log`` and ``DataTable``): only the lines on
screen are drawn, so a table of 500 processes costs no more to show than
one of 20, and a line that did not change comes from a cache. The columns
are fitted to the width at draw time (:func:`table.fit_columns`): in a
narrow panel the least important ones go first. The header stays on top
while the rows scroll under it. The text shown when there are no rows
(``empty``) wraps to the width.

With ``height: auto`` the list is as tall as its rows; give it a widget that
comes under it in the same parent (``below``, e.g. a note about the rows) and
it grows no taller than the parent leaves above that widget: a short table
has its note right under it, a long one scrolls with the note still in view.

Every colour is a component class (``rows--<style>``) in ``rows.tcss``.
With ``cursor=True`` the list has a highlighted row that the keys and the
mouse move, and it posts :class:`RowList.Highlighted` when the user moves it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from rich._wrap import divide_line
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .table import GAP, SPARK_CHARS, Bar, Cell, Row, Spark, Table, fit_columns

STYLES = ("header", "cursor", "section", "subheader", "dim", "new", "changed", "shared", "isolated",
          "ok", "warn", "error", "full", "title", "text", "shell", "kernel", "pid", "host-pid", "name",
          "kind", "label", "bar-ok", "bar-high", "bar-full", "bar-empty", "spark", "added",
          "changed-file", "deleted", "layer", "upper", "overlay", "target", "if", "address", "empty")


class RowList(ScrollView, can_focus=True):
    """A scrolling list of table rows with a fixed header (see module docstring)."""

    DEFAULT_CSS = (Path(__file__).with_name("rows.tcss")).read_text(encoding="utf-8")
    COMPONENT_CLASSES = {f"rows--{s}" for s in STYLES}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    class Highlighted(Message):
        """The user moved the cursor to the row with ``key``."""

        def __init__(self, row_list: RowList, key: str | None) -> None:
            super().__init__()
            self.row_list = row_list
            self.key = key

        @property
        def control(self) -> RowList:
            return self.row_list

    def __init__(self, *, cursor: bool = False, below=None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.cursor_enabled = cursor
        self.below = below                  # a widget under the list that keeps its place (see above)
        self.table = Table()
        self.empty = ""
        self._empty_wrapped: tuple = (None, [])
        self.cursor = 0
        self._layout: list[tuple[int, int]] = []
        self._layout_for: tuple[int, int] = (-1, -1)
        self._lines: OrderedDict = OrderedDict()
        self._styles: dict[str, Style] = {}
        self._base: Style | None = None

    # -- data in ---------------------------------------------------------------------
    def show(self, table: Table, *, empty: str = "") -> None:
        """Show ``table`` (the cursor stays on the row with the same key). An
        unchanged table is not drawn again: most refreshes change nothing."""
        if table == self.table and empty == self.empty:
            return
        key = self.cursor_key
        self.table, self.empty = table, empty
        if key is not None:
            self.cursor = self._index_of(key, self.cursor)
        self.cursor = max(0, min(self.cursor, len(table.rows) - 1))
        self._layout_for = (-1, -1)
        self._update_virtual_size()
        self.refresh()

    @property
    def header_lines(self) -> int:
        return 1 if self.table.header and self.table.columns else 0

    @property
    def cursor_key(self) -> str | None:
        rows = self.table.rows
        return rows[self.cursor].key if self.cursor_enabled and 0 <= self.cursor < len(rows) else None

    def move_to_key(self, key: str | None) -> None:
        """Put the cursor on the row with ``key`` (no message: the caller knows)."""
        if key is None:
            return
        index = self._index_of(key, self.cursor)
        if index != self.cursor:
            self.cursor = index
            self._scroll_to_cursor()
            self.refresh()

    def _index_of(self, key: str, default: int) -> int:
        for n, row in enumerate(self.table.rows):
            if row.key == key:
                return n
        return default

    def _empty_lines(self, width: int) -> list[str]:
        """The ``empty`` text wrapped to ``width`` (Chinese too: see tui.text.cjk)."""
        if not self.empty:
            return []
        if width <= 0:
            return [self.empty]
        key = (self.empty, width)
        if self._empty_wrapped[0] != key:
            cuts = [0, *divide_line(self.empty, width), len(self.empty)]
            self._empty_wrapped = (key, [self.empty[a:b].rstrip() for a, b in zip(cuts, cuts[1:]) if a < b])
        return self._empty_wrapped[1]

    def _line_count(self, width: int) -> int:
        return (len(self.table.rows) or len(self._empty_lines(width))) + self.header_lines

    def _update_virtual_size(self) -> None:
        width = self.scrollable_content_region.width
        size = Size(width, self._line_count(width))
        if size != self.virtual_size:            # setting it, even to the same, means a new layout
            self.virtual_size = size

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """(``height: auto``) Every line, or what the parent leaves above :attr:`below`."""
        height = self._line_count(width)
        below = self.below
        if below is not None and below.display and below.parent is self.parent:
            room = container.height - _height(below, container, viewport)
            height = min(height, max(1, room))
        return height

    def on_resize(self) -> None:
        self._layout_for = (-1, -1)
        self._update_virtual_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._lines.clear()

    # -- keys and mouse ------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if not self.cursor_enabled:
            self.scroll_to(y=self.scroll_offset.y + delta, animate=False)
            return
        self._set_cursor(self.cursor + delta)

    def action_edge(self, end: int) -> None:
        if not self.cursor_enabled:
            self.scroll_to(y=self.max_scroll_y if end else 0, animate=False)
            return
        self._set_cursor(len(self.table.rows) - 1 if end else 0)

    def _set_cursor(self, index: int) -> None:
        rows = self.table.rows
        if not rows:
            return
        index = max(0, min(index, len(rows) - 1))
        changed = index != self.cursor
        self.cursor = index
        self._scroll_to_cursor()
        self.refresh()
        if changed:
            self.post_message(self.Highlighted(self, rows[index].key))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - self.header_lines)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_click(self, event) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.cursor_enabled:
            return
        index = self.scroll_offset.y + offset.y - self.header_lines
        if 0 <= index < len(self.table.rows):
            self._set_cursor(index)
            if index == self.cursor:             # a click on the current row chooses it too
                self.post_message(self.Highlighted(self, self.table.rows[index].key))

    # -- drawing ----------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        """The component style ``rows--<name>``, whole (for rows: it has the background)."""
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(f"rows--{name}", default=Style()) if name else Style()
            self._styles[name] = style
        return style

    def _cell_style(self, name: str) -> Style:
        """The component style without its background, so a cell keeps its row's
        (a new process's row stays highlighted under its coloured PID)."""
        key = "cell:" + name
        style = self._styles.get(key)
        if style is None:
            whole = self._style(name)
            style = Style(color=whole.color, bold=whole.bold, dim=whole.dim, italic=whole.italic,
                          underline=whole.underline, strike=whole.strike, reverse=whole.reverse)
            self._styles[key] = style
        return style

    def _columns(self, width: int) -> list[tuple[int, int]]:
        key = (width, id(self.table))
        if self._layout_for != key:
            self._layout = fit_columns(self.table.columns, width)
            self._layout_for = key
        return self._layout

    def render_lines(self, crop):
        self._base = self.rich_style            # once per paint, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._base if self._base is not None else self.rich_style
        header = self.header_lines
        if header and y == 0:
            return self._cached(("header", self.table.columns, width), base,
                                lambda: self._draw_header(width, base))
        index = self.scroll_offset.y + y - header
        rows = self.table.rows
        if not rows and self.empty:
            lines = self._empty_lines(width)
            if 0 <= index < len(lines):
                return Strip([Segment(set_cell_size(lines[index], width), base + self._style("empty"))], width)
        if not 0 <= index < len(rows):
            return Strip.blank(width, base)
        row = rows[index]
        at_cursor = self.cursor_enabled and index == self.cursor
        layout = () if row.span else tuple(self._columns(width))
        return self._cached((row, at_cursor, width, layout), base,
                            lambda: self._draw_row(row, width, base, at_cursor))

    def _cached(self, key, base: Style, draw) -> Strip:
        """A drawn line from the cache: an unchanged row is not drawn again."""
        strip = self._lines.get(key)
        if strip is None:
            strip = draw()
            self._lines[key] = strip
            if len(self._lines) > 1024:
                self._lines.popitem(last=False)
        return strip

    def _draw_header(self, width: int, base: Style) -> Strip:
        style = base + self._style("header")
        segments = []
        for n, (i, w) in enumerate(self._columns(width)):
            col = self.table.columns[i]
            if n:
                segments.append(Segment(" " * GAP, style))
            segments.append(Segment(_fit(col.label, w, col.justify), style))
        return Strip(segments).extend_cell_length(width, style).crop(0, width)

    def _draw_row(self, row: Row, width: int, base: Style, at_cursor: bool) -> Strip:
        row_style = base + self._style(row.style)
        cursor = self._style("cursor") if at_cursor else None
        if cursor is not None:
            row_style += cursor
        segments: list[Segment] = []
        if row.span:
            cell = row.cells[0] if row.cells else ""
            text, style = (cell.text, cell.style) if isinstance(cell, Cell) else (str(cell), "")
            cell_style = row_style + self._cell_style(style) if style else row_style
            if cursor is not None:
                cell_style += cursor
            segments.append(Segment(set_cell_size(text, width), cell_style))
            return Strip(segments, width)
        for n, (i, w) in enumerate(self._columns(width)):
            if n:
                segments.append(Segment(" " * GAP, row_style))
            cell = row.cells[i] if i < len(row.cells) else ""
            segments.extend(self._draw_cell(cell, w, self.table.columns[i].justify, row_style, cursor))
        return Strip(segments).extend_cell_length(width, row_style).crop(0, width)

    def _draw_cell(self, cell, w: int, justify: str, row_style: Style, cursor: Style | None) -> list[Segment]:
        def styled(name: str) -> Style:
            style = row_style + self._cell_style(name) if name else row_style
            return style + cursor if cursor is not None else style

        if isinstance(cell, Bar):
            filled = round(max(0.0, min(1.0, cell.fraction)) * w)
            return [Segment("█" * filled, styled(cell.style)), Segment("░" * (w - filled), styled("bar-empty"))]
        if isinstance(cell, Spark):
            return [Segment(sparkline(cell.values, w, cell.top), styled(cell.style))]
        if isinstance(cell, Cell):
            return [Segment(_fit(cell.text, w, justify), styled(cell.style))]
        return [Segment(_fit(str(cell), w, justify), row_style)]


def _height(widget, container: Size, viewport: Size) -> int:
    """The height ``widget`` takes in a parent of size ``container``: its
    ``height: auto``, up to its max-height, with its margins."""
    styles = widget.styles
    gutter = styles.gutter
    height = widget.get_content_height(container, viewport, max(0, container.width - gutter.width)) + gutter.height
    if styles.max_height is not None and styles.max_height.is_cells:
        height = min(height, int(styles.max_height.value))
    return height + styles.margin.height


def _fit(text: str, width: int, justify: str = "left") -> str:
    """``text`` in exactly ``width`` cells: cut with an ellipsis, or padded."""
    n = len(text) if text.isascii() else cell_len(text)
    if n > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    pad = " " * (width - n)
    return pad + text if justify == "right" else text + pad


def sparkline(values, width: int, top: float = 0.0) -> str:
    """The newest ``width`` values as block characters, right-aligned; each
    scaled to ``top`` (or to the largest value when ``top`` is 0)."""
    shown = list(values)[-width:] if width > 0 else []
    top = top or max(shown or [0.0])
    levels = len(SPARK_CHARS) - 1
    chars = [SPARK_CHARS[max(0, min(levels, int(round(v / top * levels))))] if top > 0 else SPARK_CHARS[0]
             for v in shown]
    return " " * (width - len(chars)) + "".join(chars)
