"""TerminalPane: the lesson's embedded terminal -- a TerminalView and the session behind it.

A :class:`~tui.widgets.terminal.TerminalView` draws a pty; the pane also
holds what owns the other side -- a ``container-lab run -it`` started on a
pseudo-terminal (``session``, :class:`lessons.runner.TerminalSession`) or an
exec into a running container (``attached``, :class:`engine.client.Attached`)
-- and the step it was opened for. The lesson screen hands it what to do
(attributes down): :meth:`type_lines` types "show me"'s lines where the
learner sees them, at the pace the screen sets (:attr:`typing_delay` a key,
once the screen has been still :attr:`typing_quiet` seconds);
:meth:`ended` and :meth:`hang_up` end the session. It tells the screen
what happened with the TerminalView's messages (``Closed``, ``ReleaseFocus``).
"""

from __future__ import annotations

import asyncio

from .terminal import TerminalView


class TerminalPane(TerminalView):
    """A terminal session opened from a lesson step (see the module docstring)."""

    typing_delay = 0.03          # seconds between two keys typed
    typing_quiet = 0.4           # ... and how long the screen stays still before a line is typed

    def __init__(self, fd: int, *, step_id: str, session=None, attached=None, lang: str = "en",
                 id: str | None = None) -> None:
        super().__init__(fd, attached=attached, lang=lang, id=id)
        self.step_id = step_id
        self.session = session

    def type_lines(self, lines: tuple[str, ...]) -> None:
        """Type ``lines`` into the terminal, one after the other (see :meth:`_type_lines`)."""
        if lines:
            self.run_worker(self._type_lines(lines), group="typing", exclusive=True, exit_on_error=False)

    async def _type_lines(self, lines: tuple[str, ...]) -> None:
        """Each line once the screen has been still a moment (a prompt waits), a key every ``typing_delay``."""
        for line in lines:
            if not await self._screen_still():
                return
            for ch in line:
                if self.closed:
                    return
                self.type_text(ch)
                await asyncio.sleep(self.typing_delay)
            self.type_text("\r")

    async def _screen_still(self, limit: float = 15.0) -> bool:
        """Wait until the terminal has shown something new and then nothing for
        ``typing_quiet`` seconds (False: it closed)."""
        loop = asyncio.get_running_loop()
        seen, start = self.bytes_in, loop.time()
        last = start
        while loop.time() - start < limit:
            await asyncio.sleep(0.05)
            if self.closed:
                return False
            if self.bytes_in != seen:
                seen, last = self.bytes_in, loop.time()
            elif seen and loop.time() - last >= self.typing_quiet:
                return True
        return not self.closed

    def ended(self, reported: int | None) -> int | None:
        """The session's exit code once it closed: its program's (waited for), else ``reported``."""
        if self.session is not None:
            return end_session(self.session)
        return reported

    def hang_up(self) -> None:
        """End the session (the pane is being removed, which closes the pty):
        its program waited for, an exec's connection closed."""
        if self.session is not None:
            end_session(self.session)
        if self.attached is not None:
            try:
                self.attached.close()
            except OSError:
                pass


def end_session(session) -> int | None:
    """The exit code of a terminal session's program (``container-lab run -it``),
    once it ends; killed if it will not. Its pty is the TerminalView's to close."""
    try:
        return session.proc.wait(timeout=5)
    except Exception:  # noqa: BLE001 - hung up but still there
        session.proc.kill()
        return session.proc.wait()
