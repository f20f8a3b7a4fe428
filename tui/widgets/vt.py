"""The terminal's pure parts: keys to bytes, pyte's screen to Rich segments.

:class:`TerminalScreen` is a :class:`pyte.Screen` that keeps the lines
scrolled off its top (the scrollback) and the answers a program asked the
terminal for (a cursor position report, say). :func:`key_bytes` turns a
Textual key into what a terminal would send for it. :func:`line_segments`
draws one line of the screen, or of the scrollback, as Rich segments with
the program's colours.

No Textual here: the widget (:mod:`tui.widgets.terminal`) glues them to
the pty and to the screen.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

import pyte
from pyte.screens import Margins
from rich.segment import Segment
from rich.style import Style

RELEASE_KEY = "ctrl+right_square_bracket"   # Ctrl-] : back to the lesson, never sent on
RELEASE_KEY_SHOWN = "ctrl+]"
APP_CURSOR = 1 << 5                           # DECCKM as pyte keeps private modes (mode << 5)
BRACKETED_PASTE = 2004 << 5

_CSI_KEYS = {"up": "A", "down": "B", "right": "C", "left": "D"}
_KEYS = {
    "enter": b"\r", "tab": b"\t", "shift+tab": b"\x1b[Z", "backspace": b"\x7f", "ctrl+h": b"\x08",
    "escape": b"\x1b", "delete": b"\x1b[3~", "insert": b"\x1b[2~", "pageup": b"\x1b[5~",
    "pagedown": b"\x1b[6~", "home": b"\x1b[H", "end": b"\x1b[F",
    "f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f4": b"\x1bOS", "f5": b"\x1b[15~",
    "f6": b"\x1b[17~", "f7": b"\x1b[18~", "f8": b"\x1b[19~", "f9": b"\x1b[20~", "f10": b"\x1b[21~",
    "f11": b"\x1b[23~", "f12": b"\x1b[24~",
    "ctrl+@": b"\x00", "ctrl+space": b"\x00", "ctrl+backslash": b"\x1c",
    "ctrl+circumflex_accent": b"\x1e", "ctrl+underscore": b"\x1f",
}
_MODIFIERS = {"shift": 2, "alt": 3, "shift+alt": 4, "ctrl": 5, "ctrl+shift": 6, "ctrl+alt": 7}


def key_bytes(key: str, character: str | None = None, *, app_cursor: bool = False) -> bytes | None:
    """What a terminal sends for Textual ``key`` (with its ``character``), or
    None for a key that sends nothing. ``app_cursor``: the program asked for
    application cursor keys (``ESC [ ? 1 h``), so arrows send ``ESC O A``."""
    if key == RELEASE_KEY:
        return None
    if key in _KEYS:
        return _KEYS[key]
    if key in _CSI_KEYS:
        return ("\x1bO" if app_cursor else "\x1b[").encode() + _CSI_KEYS[key].encode()
    mods, _, base = key.rpartition("+")
    if base in _CSI_KEYS and mods in _MODIFIERS:
        return f"\x1b[1;{_MODIFIERS[mods]}{_CSI_KEYS[base]}".encode()
    if mods == "ctrl" and len(base) == 1 and base.isalpha():
        return bytes([ord(base.lower()) - ord("a") + 1])       # ctrl+c -> 0x03, ctrl+d -> 0x04
    if mods == "alt":
        rest = key_bytes(base, character if character and len(character) == 1 else base)
        return b"\x1b" + rest if rest else None
    if character and character.isprintable():
        return character.encode("utf-8")
    if character and len(character) == 1 and ord(character) < 32:
        return character.encode()
    return None


class TerminalScreen(pyte.Screen):
    """A pyte screen with scrollback, and with the replies a program asked for."""

    def __init__(self, columns: int, lines: int, *, history: int = 2000):
        self.scrollback: deque = deque(maxlen=history)
        self.replies: list[str] = []
        super().__init__(columns, lines)

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self.scrollback.append(self.buffer[top])       # pyte drops this line object right after
        super().index()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Like pyte's, but a screen that gets shorter keeps the cursor's line:
        the empty lines under the cursor go first, then lines from the top --
        into the scrollback, as a terminal does. (pyte drops the top lines
        however high the cursor is, so a new shell's prompt would vanish.)"""
        lines = lines or self.lines
        if lines < self.lines:
            top = max(0, self.cursor.y - (lines - 1))
            if top:
                for y in range(top):
                    self.scrollback.append(self.buffer[y])
                moved = {y - top: self.buffer[y] for y in range(top, self.lines) if y in self.buffer}
                self.buffer.clear()
                self.buffer.update(moved)
                self.cursor.y -= top
            for y in [y for y in self.buffer if y >= lines]:
                del self.buffer[y]
            self.dirty.update(range(lines))
            self.lines = lines
            self.set_margins()
        super().resize(lines, columns)

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    def take_replies(self) -> bytes:
        out, self.replies = "".join(self.replies), []
        return out.encode()

    @property
    def app_cursor(self) -> bool:
        return APP_CURSOR in self.mode

    @property
    def bracketed_paste(self) -> bool:
        return BRACKETED_PASTE in self.mode


_NAMES = {"brown": "yellow", "brightbrown": "bright_yellow", "bfightmagenta": "bright_magenta"}


@lru_cache(maxsize=1024)
def _color(name: str) -> str | None:
    if name == "default":
        return None
    if name in _NAMES:
        return _NAMES[name]
    if name.startswith("bright"):
        return "bright_" + name[6:]
    if len(name) == 6 and all(c in "0123456789abcdefABCDEF" for c in name):
        return "#" + name.lower()
    return name


@lru_cache(maxsize=4096)
def char_style(fg: str, bg: str, bold: bool, italics: bool, underscore: bool, strikethrough: bool,
               reverse: bool, blink: bool) -> Style:
    """The Rich style of one pyte character's attributes."""
    return Style(color=_color(fg), bgcolor=_color(bg), bold=bold or None, italic=italics or None,
                 underline=underscore or None, strike=strikethrough or None, reverse=reverse or None,
                 blink=blink or None)


def line_segments(line, columns: int, *, cursor_x: int | None = None,
                  cursor_style: Style | None = None) -> list[Segment]:
    """One pyte line (``{x: Char}``) as segments, ``columns`` cells wide; the
    cell at ``cursor_x`` drawn with ``cursor_style`` added."""
    segments: list[Segment] = []
    default = line.default if hasattr(line, "default") else pyte.screens.Char(" ")
    run: list[str] = []
    run_style = None
    get = line.get
    for x in range(columns):
        ch = get(x, default)
        if ch.data == "":                       # the second half of a wide character
            continue
        style = char_style(ch.fg, ch.bg, ch.bold, ch.italics, ch.underscore, ch.strikethrough, ch.reverse,
                           ch.blink)
        if x == cursor_x and cursor_style is not None:
            style = style + cursor_style
            if run:
                segments.append(Segment("".join(run), run_style))
                run = []
            segments.append(Segment(ch.data, style))
            run_style = None
            continue
        if style is not run_style and run:
            segments.append(Segment("".join(run), run_style))
            run = []
        run_style = style
        run.append(ch.data)
    if run:
        segments.append(Segment("".join(run), run_style))
    return segments


def screen_text(screen: pyte.Screen) -> str:
    """The screen's text, line by line, trailing spaces dropped (for tests and benches)."""
    return "\n".join(line.rstrip() for line in screen.display)
