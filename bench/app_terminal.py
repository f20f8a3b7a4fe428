"""Keystroke-to-echo latency of the embedded terminal, typed through a Pilot.

    sudo .venv/bin/python bench/app_terminal.py [--chars 200] [--shell bash]

Starts a real interactive container (``bash --norc`` by default: readline
echoes each key itself, as a learner's shell does; ``--shell cat`` leaves
the echo to the pty's line discipline) through the engine, attaches a
:class:`tui.widgets.terminal.TerminalView` to its pty in a headless app,
and types ``--chars`` characters with ``pilot.press``. Each sample is the
time from just before ``press`` to the moment the character is on the pyte
screen (the key went through Textual to the widget, was written to the pty,
the shell echoed it, the app's loop read it back and fed it to pyte) --
taken at the read that brought the echo, since ``press`` itself returns only
after Pilot has waited for the app to be idle (two 20 ms sleeps at least);
how long ``press`` took is reported beside it, for scale.
Reports the median, 90th percentile and maximum; the target is a 50 ms
median. The container is removed at the end, and the bench's engine root
(``/tmp/clab-bench-term``) with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path("/tmp/clab-bench-term")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clean_engine, use_engine_root  # noqa: E402

use_engine_root(ROOT, "clab-bench-term")

from textual.app import App, ComposeResult  # noqa: E402

from engine.client import Client  # noqa: E402
from engine.spec import ContainerConfig  # noqa: E402
from tui.widgets.terminal import TerminalView  # noqa: E402


class TermApp(App):
    def __init__(self, attached):
        super().__init__()
        self.attached = attached

    def compose(self) -> ComposeResult:
        yield TerminalView(self.attached.pty, attached=self.attached)


class Echo:
    """Notes when the typed text first shows on the pyte screen: every read of
    the pty is checked, so the time is the echo's, not when ``press`` returns
    (Pilot waits for the app to be idle after each key: two 20 ms sleeps at least)."""

    def __init__(self):
        self.view: TerminalView | None = None
        self.row, self.typed, self.at = 0, "", None

    def expect(self, view: TerminalView, typed: str) -> None:
        self.view, self.row, self.typed, self.at = view, view.vt.cursor.y, typed, None

    def check(self, view: TerminalView) -> None:
        if view is self.view and self.at is None and view.vt.display[self.row].rstrip().endswith(self.typed):
            self.at = time.perf_counter()


ECHO = Echo()
_read = TerminalView._read


def _read_and_check(self) -> None:
    _read(self)
    ECHO.check(self)


TerminalView._read = _read_and_check


async def measure(attached, chars: int) -> tuple[list[float], list[float]]:
    app = TermApp(attached)
    echo, press = [], []
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(TerminalView)
        deadline = time.monotonic() + 10
        while view.bytes_in == 0 and time.monotonic() < deadline:       # the prompt
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        alphabet = string.ascii_lowercase
        typed = ""
        for n in range(chars):
            if n and n % 60 == 0:                     # a fresh line now and then: the screen stays simple
                await pilot.press("ctrl+u")
                typed = ""
                await asyncio.sleep(0.05)
            ch = alphabet[n % len(alphabet)]
            typed += ch
            ECHO.expect(view, typed)
            start = time.perf_counter()
            await pilot.press(ch)
            press.append((time.perf_counter() - start) * 1000)
            while ECHO.at is None:
                await asyncio.sleep(0.0002)
                if time.perf_counter() - start > 5:
                    raise SystemExit(f"no echo of {ch!r} after 5 s: {view.vt.display[ECHO.row]!r}")
            echo.append((ECHO.at - start) * 1000)
        await pilot.press("ctrl+u", "ctrl+d")
        await asyncio.sleep(0.3)
    return echo, press


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[int(len(samples) * 0.9) - 1]
    return (f"median {statistics.median(samples):.1f} ms, p90 {p90:.1f} ms, max {samples[-1]:.1f} ms, "
            f"min {samples[0]:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=200)
    parser.add_argument("--shell", choices=("bash", "cat"), default="bash")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (real namespaces and cgroups)", file=sys.stderr)
        return 1
    client = Client()
    name = "bench-term"
    cmd = ["bash", "--norc", "--noprofile"] if args.shell == "bash" else ["cat"]
    try:
        attached = client.run(ContainerConfig(image="lab", name=name, cmd=cmd, tty=True, interactive=True,
                                              remove=True), winsize=(38, 118))
        echo, press = asyncio.run(measure(attached, args.chars))
        print(f"{args.shell} in a container, {len(echo)} keys through pilot.press, headless 120x40, "
              f"{os.cpu_count()} cores")
        print(f"key to echo on the pyte screen:   {summary(echo)}")
        print(f"pilot.press returning (for scale): {summary(press)}")
    finally:
        clean_engine(ROOT, "clab-bench-term")
    return 0


if __name__ == "__main__":
    sys.exit(main())
