"""The embedded terminal: keys to bytes, pyte to the screen, and real tty containers.

The snapshot tests feed canned output (colours, bold, reverse, 256 and true
colour, wide characters) through a local pty, so they draw the same every
run; the others attach the widget to real interactive containers started
through the engine and type into them with a Pilot.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pyte
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input

from tui.widgets.strings import tr
from tui.widgets.terminal import TerminalView
from tui.widgets.vt import RELEASE_KEY, TerminalScreen, char_style, key_bytes, line_segments

from conftest import cl, needs_root
from waiting import child_commands

SIZE = (80, 24)                    # the app; the terminal inside its border is 78x22
WINSIZE = (22, 78)


# -- keys to bytes, pyte to segments (no Textual, no engine) -------------------------------------

@pytest.mark.parametrize("key, character, expected", [
    ("a", "a", b"a"), ("A", "A", b"A"), ("space", " ", b" "), ("中", "中", "中".encode()),
    ("enter", "\r", b"\r"), ("backspace", "\x7f", b"\x7f"), ("tab", "\t", b"\t"), ("escape", "\x1b", b"\x1b"),
    ("ctrl+c", None, b"\x03"), ("ctrl+d", None, b"\x04"), ("ctrl+z", None, b"\x1a"), ("ctrl+l", None, b"\x0c"),
    ("up", None, b"\x1b[A"), ("left", None, b"\x1b[D"), ("home", None, b"\x1b[H"), ("end", None, b"\x1b[F"),
    ("ctrl+right", None, b"\x1b[1;5C"), ("alt+b", "b", b"\x1bb"), ("delete", None, b"\x1b[3~"),
    ("f1", None, b"\x1bOP"), ("shift+tab", None, b"\x1b[Z"),
])
def test_keys_become_what_a_terminal_sends(key, character, expected):
    assert key_bytes(key, character) == expected


def test_application_cursor_keys_and_the_release_key():
    assert key_bytes("up", None, app_cursor=True) == b"\x1bOA"
    assert key_bytes(RELEASE_KEY, "\x1d") is None            # never sent to the container
    assert key_bytes("f24", None) is None


def test_pyte_attributes_become_rich_styles():
    screen = TerminalScreen(20, 3)
    pyte.ByteStream(screen).feed(b"\x1b[1;31mred\x1b[0m \x1b[7mrev\x1b[0m \x1b[38;5;208mo\x1b[38;2;1;2;3mt\x1b[0m")
    segs = line_segments(screen.buffer[0], 20, cursor_x=4, cursor_style=char_style("default", "default", False,
                                                                                      False, True, False, False, False))
    by_text = {s.text: s.style for s in segs}
    assert by_text["red"].color.name == "red" and by_text["red"].bold
    assert by_text["r"].underline and by_text["r"].reverse          # the cursor cell, on "rev"
    assert by_text["ev"].reverse
    assert by_text["o"].color.triplet.hex == "#ff8700"               # 256-colour 208
    assert by_text["t"].color.triplet.hex == "#010203"
    assert "".join(s.text for s in segs).rstrip() == "red rev ot"


def test_scrollback_keeps_lines_scrolled_off_and_a_shorter_screen_keeps_the_prompt():
    screen = TerminalScreen(10, 3)
    stream = pyte.ByteStream(screen)
    stream.feed(b"1\r\n2\r\n3\r\n4\r\n5")
    assert ["".join(c.data for c in line.values()).strip() for line in screen.scrollback] == ["1", "2"]
    screen = TerminalScreen(10, 5)
    pyte.ByteStream(screen).feed(b"$ ")
    screen.resize(3, 10)
    assert screen.display[0].startswith("$ ") and screen.cursor.y == 0


# -- snapshots of canned output ----------------------------------------------------------------------

CANNED = (b"\x1b[1;32mlearner@lab\x1b[0m:\x1b[1;34m/\x1b[0m# ls --color\r\n"
          b"\x1b[1;34mbin\x1b[0m  \x1b[1;36mlib\x1b[0m  \x1b[1;32mrun.sh\x1b[0m  \x1b[31mcore\x1b[0m  "
          b"\x1b[7mreverse\x1b[0m  \x1b[4munderline\x1b[0m\r\n"
          b"\x1b[38;5;208m256 colours\x1b[0m  \x1b[38;2;10;200;120mtrue colour\x1b[0m  "
          b"\x1b[43;30m on yellow \x1b[0m\r\n" + "中文和 wide characters\r\n".encode() +
          b"\x1b[1;32mlearner@lab\x1b[0m:\x1b[1;34m/\x1b[0m# ")


class CannedApp(App):
    """A TerminalView on a local pty that has already printed ``CANNED``."""

    def __init__(self, lang: str = "en"):
        super().__init__()
        self.lang = lang
        self.master, self.slave = os.openpty()
        os.write(self.slave, CANNED)

    def compose(self) -> ComposeResult:
        yield TerminalView(self.master, lang=self.lang)

    def on_unmount(self) -> None:
        os.close(self.slave)


@pytest.fixture(autouse=True)
def _colors_on(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


async def _settle(pilot) -> None:
    view = pilot.app.query_one(TerminalView)
    assert await until(pilot, lambda: view.bytes_in >= len(CANNED), timeout=5)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_snapshot_colours_cursor_and_wide_characters(snap_compare, lang):
    assert snap_compare(CannedApp(lang), terminal_size=SIZE, run_before=_settle)


# -- real containers ------------------------------------------------------------------------------------

def run(coro):
    return asyncio.run(coro)


async def until(pilot, predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(step)
    return predicate()


class TermApp(App):
    """A terminal on a real container, and an Input to go back to (as the lesson would be)."""

    def __init__(self, attached, lang: str = "en"):
        super().__init__()
        self.attached, self.lang = attached, lang
        self.seen: list = []

    def compose(self) -> ComposeResult:
        yield TerminalView(self.attached.pty, attached=self.attached, lang=self.lang)
        yield Input(id="lesson")

    def on_mount(self) -> None:
        self.query_one(TerminalView).focus()

    def on_terminal_view_closed(self, message: TerminalView.Closed) -> None:
        self.seen.append(("closed", message.exit_code))

    def on_terminal_view_release_focus(self, message: TerminalView.ReleaseFocus) -> None:
        self.seen.append(("release",))
        self.query_one("#lesson").focus()


def start(name: str, cmd: list[str]):
    from engine.client import Client
    from engine.spec import ContainerConfig

    cl("rm", "-f", name)
    return Client().run(ContainerConfig(image="lab", name=name, cmd=cmd, tty=True, interactive=True,
                                        remove=True), winsize=WINSIZE)


async def type_text(pilot, text: str) -> None:
    for ch in text:
        await pilot.press({" ": "space", "\r": "enter"}.get(ch, ch))


def screen_lines(view: TerminalView) -> list[str]:
    return view.text.splitlines()


@pytest.fixture
def container(lab_image, request):
    name = f"clt-term-{request.node.name[5:30].replace('_', '-').strip('-')}"
    made = []

    def make(cmd):
        made.append(start(name, cmd))
        return made[-1]
    yield make
    cl("rm", "-f", name)
    assert name not in cl("ps", "-a").stdout


@needs_root
def test_typing_echo_hi_shows_hi_and_ctrl_d_closes_with_the_exit_code(container):
    attached = container(["sh"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "#" in view.text)
            await type_text(pilot, "echo hi\r")
            assert await until(pilot, lambda: "hi" in screen_lines(view)), view.text
            await pilot.press("ctrl+d")
            assert await until(pilot, lambda: ("closed", 0) in app.seen, timeout=10), app.seen
            assert view.closed and view.border_subtitle == tr("term.closed", "en", code=0)
    run(scenario())


@needs_root
def test_the_exit_code_of_the_shell_arrives_with_closed(container):
    attached = container(["sh"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "#" in view.text)
            await type_text(pilot, "exit 3\r")
            assert await until(pilot, lambda: ("closed", 3) in app.seen, timeout=10), app.seen
    run(scenario())


@needs_root
def test_ctrl_bracket_releases_focus_and_sends_nothing(container):
    attached = container(["cat", "-v"])          # would show a Ctrl-] it received as ^]

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: Path(f"/proc/{attached.pid}/comm").read_text() == "cat\n")
            await type_text(pilot, "a")
            await pilot.press(RELEASE_KEY)
            await pilot.pause()
            assert app.seen == [("release",)]
            assert app.focused is app.query_one("#lesson")          # the lesson has the keys now
            await type_text(pilot, "typed")
            assert app.query_one("#lesson", Input).value == "typed"
            view.focus()
            await type_text(pilot, "b\r")
            assert await until(pilot, lambda: "ab" in screen_lines(view)), view.text
            assert "^]" not in view.text and "typed" not in view.text
            assert tr("term.title", "en", key="ctrl+]") == view.border_title
    run(scenario())


@needs_root
def test_ctrl_c_and_tab_go_to_the_container_not_the_app(container):
    attached = container(["bash", "--norc"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "$" in view.text or "#" in view.text)
            await type_text(pilot, "sleep 100\r")
            assert await until(pilot, lambda: child_commands(attached.pid) == [["sleep", "100"]])
            await pilot.press("ctrl+c")
            await type_text(pilot, "echo back\r")
            # Within 10 s, so sleep 100 was interrupted.
            assert await until(pilot, lambda: "back" in screen_lines(view), timeout=10), view.text
            await type_text(pilot, "ech")
            await pilot.press("tab")                              # completion, not the focus chain
            assert await until(pilot, lambda: view.text.rstrip().endswith("echo"), timeout=5), view.text
            assert app.focused is view and app.is_running
    run(scenario())


@needs_root
def test_a_paste_reaches_the_shell_bracketed_when_it_asked(container):
    from textual import events

    attached = container(["bash", "--norc"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "#" in view.text)
            assert await until(pilot, lambda: view.vt.bracketed_paste, timeout=5)   # readline asks for it
            view.post_message(events.Paste("echo pasted"))
            await pilot.pause()
            await pilot.press("enter")
            assert await until(pilot, lambda: "pasted" in screen_lines(view)), view.text
            assert "200~" not in view.text                       # the brackets were understood
    run(scenario())


@needs_root
def test_resizing_the_terminal_changes_stty_size_inside(container):
    attached = container(["sh"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "#" in view.text)
            await type_text(pilot, "stty size\r")
            size = f"{view.size.height} {view.size.width}"         # 80x24 less the Input and a border
            assert size == "19 78"
            assert await until(pilot, lambda: size in screen_lines(view)), view.text
            await pilot.resize_terminal(100, 30)
            await pilot.pause()
            rows, cols = view.size.height, view.size.width
            assert (rows, cols) == (30 - 3 - 2, 100 - 2)
            await type_text(pilot, "clear; stty size\r")
            assert await until(pilot, lambda: f"{rows} {cols}" in screen_lines(view)), view.text
    run(scenario())


@needs_root
def test_scrollback_with_shift_pageup_and_back(container):
    attached = container(["sh"])

    async def scenario():
        app = TermApp(attached)
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TerminalView)
            assert await until(pilot, lambda: "#" in view.text)
            await type_text(pilot, "seq 100\r")
            assert await until(pilot, lambda: "100" in screen_lines(view))
            assert "50" not in screen_lines(view)
            await pilot.press("shift+pageup", "shift+pageup")
            await pilot.pause()
            shown = [view.render_line(y).text.strip() for y in range(view.size.height)]
            assert view.scrolled_back > 0 and "50" in shown
            assert view.border_subtitle == tr("term.scrolled", "en", lines=view.scrolled_back)
            await pilot.press("shift+pagedown", "shift+pagedown")
            await pilot.pause()
            assert view.scrolled_back == 0
            await pilot.press("shift+pageup")
            await type_text(pilot, "e")                           # typing returns to the live screen
            assert view.scrolled_back == 0
    run(scenario())
