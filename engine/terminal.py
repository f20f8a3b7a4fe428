"""The foreground side of ``run -t``: the learner's terminal joined to the container's.

The supervisor hands us the master side of the container's pseudo-terminal
(opened inside the container's own /dev/pts). We put our terminal in raw
mode, copy keystrokes in and output out, pass window-size changes on, and
restore the terminal however the container ends.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import sys
import termios
import tty


def _winsize(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return (rows, cols) if rows and cols else None
    except OSError:
        return None


def _copy_window_size(src: int, master: int) -> None:
    size = _winsize(src)
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


def run_with_terminal(start, *, interactive: bool) -> int:
    """Attach this terminal to a container's: ``start(winsize)`` starts it (run,
    start -a or exec -t) and returns an attached handle with the pty master.
    Returns the exit code."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    interactive_tty = interactive and os.isatty(stdin)
    run = start(_winsize(stdout) or _winsize(stdin) or (24, 80))
    master = run.pty
    for line in run.warnings:
        print(f"WARNING: {line}", file=sys.stderr)
    saved = termios.tcgetattr(stdin) if interactive_tty else None
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_window_size(stdout, master))
    try:
        if saved is not None:
            tty.setraw(stdin)
        _pump(master, stdin if interactive else None, stdout)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)
    result = run.wait()
    run.close()
    if result.get("error"):
        print(f"container-lab: {result['error']}", file=sys.stderr)
    return int(result["exit_code"])


def _pump(master: int, stdin: int | None, stdout: int) -> None:
    """Copy until the container side of the terminal closes."""
    watch = [master] + ([stdin] if stdin is not None else [])
    while True:
        try:
            ready, _, _ = select.select(watch, [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:          # EIO: every process holding the terminal has gone
                return
            if not data:
                return
            _write_all(stdout, data)
        if stdin is not None and stdin in ready:
            data = os.read(stdin, 65536)
            if not data:                       # our input ended: send EOF (Ctrl-D)
                watch.remove(stdin)
                stdin = None
                _write_all(master, b"\x04")
                continue
            _write_all(master, data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]
