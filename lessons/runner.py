"""Running translated commands through the engine's CLI, as a learner would.

Every command runs as ``python -m engine.cli ARGS`` in a child process: the
learner sees exactly what ``container-lab ARGS`` prints, and the engine's
own code handles signals and terminals. A command with ``-t`` (or
``start -a``) runs on a real pseudo-terminal (:class:`TerminalSession`):
the app draws its screen, the automated learner types into it. Children
are started with ``subprocess`` -- which execs at once -- never with a bare
``fork``, because the app calling us has threads. Long waits take a
``threading.Event`` that cancels them.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

from .docker import EngineCommand
from .i18n import msg

# Run in a fresh interpreter on the pty: take it as the controlling terminal
# (so ^C and window sizes behave as in a real one), then be the engine's CLI.
_ON_TERMINAL = """\
import fcntl, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
from engine.cli import main
sys.exit(main(sys.argv[1:]))
"""

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\r")


def plain(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ANSI.sub("", text)


def utf8_decoder():
    """One decoder for one stream of output: a character whose bytes a read
    boundary cuts in two is kept until its last byte comes (decoding each
    chunk alone would turn both halves into U+FFFD). ``decode(b"", final=True)``
    at the end gives what is left."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


def _env() -> dict[str, str]:
    """Our environment, with the engine importable from wherever we were loaded."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([here] + ([path] if path else [])))


@dataclass(frozen=True)
class RunResult:
    """What running one command did."""

    command: str
    exit_code: int
    output: str = ""
    notices: tuple[str, ...] = ()
    cancelled: bool = False
    timed_out: bool = False
    error: str | None = None        # the command could not be run at all (why, for the learner)
    skipped: bool = False           # not run: this machine lacks what the step requires (output says what)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.cancelled or self.timed_out or self.error)


def run(cmd: EngineCommand, *, typed: tuple[str, ...] = (), cancel=None, timeout: float = 120,
        lang: str = "en", on_output=None) -> RunResult:
    """Run one translated command to its end; ``typed`` lines go to its
    terminal (or, without ``-t``, to its standard input)."""
    if cmd.output is not None:
        if on_output and cmd.output:
            on_output(cmd.output + "\n")
        return RunResult(cmd.source, 0, cmd.output, cmd.notices)
    if cmd.terminal:
        with TerminalSession(cmd.argv, cwd=cmd.cwd) as session:
            code = session.run_typing(typed, cancel=cancel, timeout=timeout, on_output=on_output)
            return RunResult(cmd.source, code if code is not None else -1, plain(session.text()), cmd.notices,
                             cancelled=bool(cancel and cancel.is_set()), timed_out=session.timed_out)
    stdin = subprocess.PIPE if typed else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", *cmd.argv], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(), cwd=cmd.cwd or "/")
    if typed:
        try:
            proc.stdin.write(("\n".join(typed) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
    out, deadline = b"", time.monotonic() + timeout
    decoder = utf8_decoder()

    def show(chunk: bytes, final: bool = False) -> None:
        if on_output and (text := decoder.decode(chunk, final)):
            on_output(text)
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)

    def read() -> bytes | None:
        """At most a pipe's worth (shown as it comes, however fast it comes); b"" at the end."""
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
    cancelled = timed_out = False
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = read()
            if chunk:
                out += chunk
                show(chunk)
            elif chunk == b"" and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            while chunk := read():
                out += chunk
                show(chunk)
            break
        if cancel is not None and cancel.is_set() and not cancelled:
            cancelled = True
            _interrupt(proc)
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            _interrupt(proc)
    proc.stdout.close()
    show(b"", final=True)
    return RunResult(cmd.source, proc.wait(), out.decode("utf-8", "replace"), cmd.notices,
                     cancelled=cancelled, timed_out=timed_out)


def _interrupt(proc: subprocess.Popen) -> None:
    """^C as a terminal would send it (the engine's CLI passes it to the
    container), then, if that is not enough, the end."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


class TerminalSession:
    """A command on a real pseudo-terminal.

    The app reads and writes :attr:`master` (and draws it with pyte); the
    automated learner calls :meth:`run_typing`. Use as a context manager, or
    call :meth:`close`.
    """

    def __init__(self, argv, *, rows: int = 24, cols: int = 80, cwd: str | None = None):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _ON_TERMINAL, *argv], stdin=slave, stdout=slave,
                                         stderr=slave, start_new_session=True, env=_env(), cwd=cwd or "/")
        finally:
            os.close(slave)
        self.output = bytearray()
        self.timed_out = False
        self._closed = False
        self._decoder = utf8_decoder()      # for on_output: one per terminal, so no character is cut

    def __enter__(self) -> TerminalSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.master, data):]

    def read(self, timeout: float) -> bytes | None:
        """Output within ``timeout`` seconds: b"" if none yet, None once the terminal has closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:          # EIO: every process holding the terminal has gone
            return None
        if not data:
            return None
        self.output += data
        return data

    def wait_quiet(self, quiet: float = 0.4, limit: float = 10.0, *, need_output: bool = True,
                   cancel=None, on_output=None) -> bool:
        """Read until nothing new for ``quiet`` seconds (a prompt waits for us);
        False when the terminal closed."""
        start = len(self.output)
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() < deadline and not (cancel and cancel.is_set()):
            data = self.read(0.05)
            if data is None:
                return False
            if data:
                last = time.monotonic()
                self._emit(data, on_output)
            elif time.monotonic() - last >= quiet and (len(self.output) > start or not need_output):
                return True
        return True

    def _emit(self, data: bytes, on_output, final: bool = False) -> None:
        if on_output and (text := self._decoder.decode(data, final)):
            on_output(text)

    def type_line(self, line: str, *, delay: float = 0.01) -> None:
        """Type ``line`` key by key, then Enter, as a person would."""
        for ch in line:
            self.write(ch.encode())
            time.sleep(delay)
        self.write(b"\r")

    def run_typing(self, lines, *, cancel=None, timeout: float = 120, on_output=None) -> int | None:
        """Wait for the first prompt, type each line when the screen is quiet,
        then wait for the command to end (Ctrl-D, then a kill, if it does not).
        Returns the exit code."""
        deadline = time.monotonic() + timeout
        for line in lines:
            if not self.wait_quiet(cancel=cancel, on_output=on_output) or (cancel and cancel.is_set()):
                break
            self.type_line(line)
        while time.monotonic() < deadline and not (cancel and cancel.is_set()):
            data = self.read(0.1)
            if data is None:
                break
            self._emit(data, on_output)
            if self.proc.poll() is not None:
                data = self.read(0.05)
                if not data:
                    break
                self._emit(data, on_output)
        else:
            if cancel and cancel.is_set():
                self.write(b"\x03")
            else:
                self.timed_out = True
            self.write(b"\x04")
        self._emit(b"", on_output, final=True)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def failure_text(result: RunResult, lang: str, timeout: float = 120, *, last_line: bool = False) -> str:
    """Why a command did not succeed, in the learner's language. Its own
    words (the last line of its output) only with ``last_line``: where its
    output was shown as it ran, they are on the screen already."""
    if result.error:
        return result.error
    if result.cancelled:
        return msg(lang, "run.cancelled")
    if result.timed_out:
        return msg(lang, "run.timeout", seconds=int(timeout))
    last = plain(result.output).strip().splitlines() if last_line else []
    return msg(lang, "run.done", code=result.exit_code) + (f": {last[-1]}" if last else "")
