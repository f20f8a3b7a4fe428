"""TerminalView: a terminal inside the app, on an interactive container's pty.

The engine hands the caller the master side of the container's
pseudo-terminal (``Client().run(..., tty=True, interactive=True)`` or
``Client().exec(..., tty=True)`` -> ``Attached.pty``). This widget is the
other half of a terminal emulator around it:

- output: the app's event loop watches the fd (``loop.add_reader``) and
  feeds what arrives to a pyte screen (:class:`tui.widgets.vt.TerminalScreen`),
  which keeps colours, the cursor and the scrollback; only the lines that
  changed are drawn again;
- input: keys become the bytes a terminal sends (:func:`tui.widgets.vt.key_bytes`)
  -- printable text, Enter, Backspace, Tab, arrows, Home/End, Ctrl-letters
  including Ctrl-C and Ctrl-D, Escape -- written to the fd (buffered, never
  blocking the app);
- size: when the widget is resized, the pty gets the new size (TIOCSWINSZ,
  as ``engine.terminal`` does for the CLI) and the program its SIGWINCH;
- scrollback: shift+PageUp / shift+PageDown, or the mouse wheel;
- the way out: **Ctrl-]** posts :class:`TerminalView.ReleaseFocus` and is
  never sent to the container, so the terminal never traps the learner (the
  border title says so, in the learner's language);
- the end: when the container side closes (EOF / EIO), a thread worker
  waits for the exit code (``Attached.wait()``) and the widget posts
  :class:`TerminalView.Closed`.

The widget owns the fd from then on: it closes it when the container ends
or when the widget is removed (which hangs the container's shell up, as
closing a terminal window does).

Keys the app has bound with ``priority=True`` (Textual's ctrl+q quit, the
command palette's ctrl+p) are the app's before they are the terminal's.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from pathlib import Path

import pyte
from rich.style import Style
from textual import events, work
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from .strings import tr
from .vt import RELEASE_KEY, RELEASE_KEY_SHOWN, TerminalScreen, key_bytes, line_segments, screen_text

SCROLL_KEYS = {"shift+pageup": -1, "shift+pagedown": 1}
WHEEL_LINES = 3


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """Tell the pty (and so the program on it, with SIGWINCH) its new size."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class TerminalView(Widget, can_focus=True):
    """A terminal on a container's pty (see the module docstring)."""

    DEFAULT_CSS = (Path(__file__).with_name("terminal.tcss")).read_text(encoding="utf-8")
    COMPONENT_CLASSES = {"terminal--cursor", "terminal--cursor-blurred"}

    class ReleaseFocus(Message):
        """Ctrl-] was pressed: the learner wants to leave the terminal."""

        def __init__(self, terminal: TerminalView) -> None:
            super().__init__()
            self.terminal = terminal

        @property
        def control(self) -> TerminalView:
            return self.terminal

    class Closed(Message):
        """The container side of the terminal has gone; ``exit_code`` is None if unknown."""

        def __init__(self, terminal: TerminalView, exit_code: int | None) -> None:
            super().__init__()
            self.terminal = terminal
            self.exit_code = exit_code

        @property
        def control(self) -> TerminalView:
            return self.terminal

    def __init__(self, fd: int, *, attached=None, lang: str = "en", history: int = 2000,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.fd = fd
        self.attached = attached
        self.lang = lang
        self.vt = TerminalScreen(80, 24, history=history)
        self._stream = pyte.ByteStream(self.vt)
        self._scroll = 0                     # lines scrolled back into the history
        self._pending = bytearray()          # keys not yet written to the pty
        self._lines: dict[int, Strip] = {}   # drawn screen lines, by row
        self._cursor_row = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._writing = False
        self.closed = False
        self.exit_code: int | None = None
        self.bytes_in = 0                    # what came from the container (tests, benches)

    # -- the app's API ---------------------------------------------------------------
    def set_language(self, lang: str) -> None:
        """Show the border's words in ``lang``."""
        self.lang = lang
        self._titles()

    def type_text(self, text: str) -> None:
        """Send ``text`` to the program as if typed (the app's "show me" types this way)."""
        if self._scroll:
            self._scroll_by(self._scroll)
        self._send(text.encode())

    @property
    def text(self) -> str:
        """What the screen shows now, as text (trailing spaces dropped)."""
        return screen_text(self.vt)

    # -- the pty -------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._titles()
        os.set_blocking(self.fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._read)
        self._reading = True

    def on_unmount(self) -> None:
        self._stop_io()
        if not self.closed:
            self.closed = True
            self._close_fd()

    def _stop_io(self) -> None:
        if self._loop is not None:
            if self._reading:
                self._loop.remove_reader(self.fd)
            if self._writing:
                self._loop.remove_writer(self.fd)
        self._reading = self._writing = False

    def _close_fd(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _read(self) -> None:
        """The pty has output (or has closed): feed the screen, draw what changed."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:                      # EIO: every process on the terminal has gone
            data = b""
        if not data:
            self._ended()
            return
        self.bytes_in += len(data)
        self._stream.feed(data)
        replies = self.vt.take_replies()
        if replies:
            self._send(replies)
        self._redraw_changed()

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        """Write what is pending; what the pty does not take now waits for it to be writable."""
        while self._pending:
            try:
                n = os.write(self.fd, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                break
            del self._pending[:n]
        want = bool(self._pending)
        if want and not self._writing and self._loop is not None:
            self._loop.add_writer(self.fd, self._flush)
            self._writing = True
        elif not want and self._writing and self._loop is not None:
            self._loop.remove_writer(self.fd)
            self._writing = False

    def _ended(self) -> None:
        self._stop_io()
        self.closed = True
        self._close_fd()
        if self.attached is not None:
            self._wait_exit()
        else:
            self.post_message(self.Closed(self, None))

    @work(thread=True, group="terminal-exit", exit_on_error=False)
    def _wait_exit(self) -> None:
        code = None
        try:
            result = self.attached.wait()
            code = result.get("exit_code")
        except Exception:  # noqa: BLE001 - the supervisor went away: the code is unknown
            pass
        finally:
            try:
                self.attached.close()
            except Exception:  # noqa: BLE001
                pass
        self.post_message(self.Closed(self, code))

    def on_terminal_view_closed(self, message: Closed) -> None:
        """Note the end in the border (the message goes on up to the app)."""
        if message.terminal is self:
            self.exit_code = message.exit_code
            self._titles()

    # -- keys and mouse -----------------------------------------------------------------------
    async def on_key(self, event: events.Key) -> None:
        if event.key == RELEASE_KEY:
            event.stop()
            event.prevent_default()
            self.post_message(self.ReleaseFocus(self))
            return
        if event.key in SCROLL_KEYS:
            event.stop()
            event.prevent_default()
            self._scroll_by(SCROLL_KEYS[event.key] * max(1, self.vt.lines - 1))
            return
        if self.closed:
            return                            # nothing listens any more: the key is the app's
        data = key_bytes(event.key, event.character, app_cursor=self.vt.app_cursor)
        if data is None:
            return
        event.stop()
        event.prevent_default()
        if self._scroll:
            self._scroll_by(self._scroll)     # typing goes back to the live screen
        self._send(data)

    async def on_paste(self, event: events.Paste) -> None:
        if self.closed:
            return
        event.stop()
        text = event.text.replace("\r\n", "\r").replace("\n", "\r").encode()
        if self.vt.bracketed_paste:             # the shell asked to know a paste from typing
            text = b"\x1b[200~" + text + b"\x1b[201~"
        self._send(text)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._scroll_by(-WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._scroll_by(WHEEL_LINES)

    def _scroll_by(self, delta: int) -> None:
        """Negative: back into the history; positive: toward the live screen."""
        self._scroll = max(0, min(len(self.vt.scrollback), self._scroll - delta))
        self._lines.clear()
        self._titles()
        self.refresh()

    @property
    def scrolled_back(self) -> int:
        return self._scroll

    # -- size -----------------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        cols, rows = self.size.width, self.size.height
        if cols <= 0 or rows <= 0 or (rows, cols) == (self.vt.lines, self.vt.columns):
            return
        self.vt.resize(rows, cols)
        self._lines.clear()
        if not self.closed:
            try:
                set_window_size(self.fd, rows, cols)
            except OSError:
                pass
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------------
    def _titles(self) -> None:
        self.border_title = tr("term.title", self.lang, key=RELEASE_KEY_SHOWN)
        if self.closed and self.exit_code is not None:
            self.border_subtitle = tr("term.closed", self.lang, code=self.exit_code)
        elif self.closed:
            self.border_subtitle = tr("term.closed_unknown", self.lang)
        elif self._scroll:
            self.border_subtitle = tr("term.scrolled", self.lang, lines=self._scroll)
        else:
            self.border_subtitle = ""

    def _redraw_changed(self) -> None:
        """Draw again only the rows pyte marked dirty (and the cursor's old and new row)."""
        dirty = set(self.vt.dirty)
        self.vt.dirty.clear()
        dirty.add(self._cursor_row)
        dirty.add(self.vt.cursor.y)
        self._cursor_row = self.vt.cursor.y
        if self._scroll:
            self._lines.clear()
            self.refresh()
            return
        width = self.size.width
        regions = []
        for y in dirty:
            self._lines.pop(y, None)
            regions.append(Region(0, y, width, 1))
        if regions:
            self.refresh(*regions)

    def on_focus(self) -> None:
        self._lines.pop(self.vt.cursor.y, None)
        self.refresh()

    def on_blur(self) -> None:
        self._lines.pop(self.vt.cursor.y, None)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        vt = self.vt
        if self._scroll:
            history = vt.scrollback
            index = len(history) - self._scroll + y
            if index < len(history):
                line = history[index]
            elif index - len(history) < vt.lines:
                line = vt.buffer[index - len(history)]
            else:
                return Strip.blank(width, base)
            return Strip(line_segments(line, vt.columns)).apply_style(base).crop_extend(0, width, base)
        strip = self._lines.get(y)
        if strip is None:
            if y >= vt.lines:
                return Strip.blank(width, base)
            cursor_x = None
            if y == vt.cursor.y and not vt.cursor.hidden and not self.closed:
                cursor_x = vt.cursor.x
            cursor = self.get_component_rich_style(
                "terminal--cursor" if self.has_focus else "terminal--cursor-blurred", default=Style(reverse=True))
            strip = Strip(line_segments(vt.buffer[y], vt.columns, cursor_x=cursor_x, cursor_style=cursor))
            strip = strip.apply_style(base).crop_extend(0, width, base)
            self._lines[y] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
