"""The embedded terminal on the lesson screen: opening a session, going in and out, its end.

:class:`TerminalMixin`, a part of :class:`tui.screens.lesson.LessonScreen`:
an interactive command (``-it``, typed or run by show me) or o (a shell in
the container picked in the lab panel) opens a pseudo-terminal in a thread
worker; the screen mounts a :class:`tui.widgets.terminal_pane.TerminalPane`
for it below the lab panel. Ctrl+] leaves it with the session open, t goes
back in; when the session ends its last screen stays until the next one (or
the next step), and show me goes on with its next command.

Of the screen's state it changes ``terminal`` (the open pane, or None),
``show_rest`` and ``busy``.
"""

from __future__ import annotations

from textual import work

from tui.i18n import t
from tui.screens.lesson_lab_panel import created_now
from tui.screens.lesson_messages import LabFailed, Output, TerminalReady, TerminalWanted


def terminal_view():
    """The embedded terminal's widget class (imported when first needed: pyte is not
    cheap), or None where it is not installed -- interactive commands say so instead."""
    try:
        from tui.widgets.terminal_pane import TerminalPane
    except ImportError:
        return None
    return TerminalPane


def has_terminal_view() -> bool:
    """Whether the embedded terminal is installed (found, not imported: o and show me ask often)."""
    from importlib.util import find_spec
    try:
        return find_spec("tui.widgets.terminal") is not None
    except ImportError:
        return False


class TerminalMixin:
    """The lesson screen's embedded terminal session."""

    # -- opening a session --------------------------------------------------------------------------
    def on_lesson_screen_terminal_wanted(self, message: TerminalWanted) -> None:
        if not has_terminal_view():
            self.busy = None
            self.output.say(t(self.lang, "terminal.missing"))
            self.view(message.step_id).set_status("terminal.missing")
            return
        self._open_session(message.step_id, message.command)

    @work(thread=True, group="terminal", exit_on_error=False)
    def _open_session(self, step_id: str, command) -> None:
        from lessons.runner import TerminalSession

        since = created_now()
        try:
            session = TerminalSession(command.argv, cwd=command.cwd)
        except Exception as e:  # noqa: BLE001
            self.post_message(LabFailed("lab.failed.run", self._failure(e, "lab.failed.run")))
            return
        for notice in command.notices:
            self.post_message(Output(notice + "\n"))
        getattr(self.lab, "said", lambda _cmd: None)(command)     # once per lesson
        self.post_message(TerminalReady(step_id, session.master, session=session, title=command.source))
        self._follow_started(command, since)

    def action_shell(self) -> None:
        """o: a shell in the container picked in the lab panel (or the lesson's newest running one)."""
        if not has_terminal_view() or self.terminal is not None or not self.machine.can_run:
            if self.terminal is not None:
                self.notify(t(self.lang, "busy.terminal"), severity="warning")
            return
        self._open_shell(self.step.id, self.selected)

    @work(thread=True, group="terminal", exit_on_error=False)
    def _open_shell(self, step_id: str, ref: str | None) -> None:
        try:
            if ref is None:
                running = [c for c in self.lab.containers() if c.get("status") == "running"]
                if not running:
                    self.post_message(LabFailed("shell.none", ""))
                    return
                ref = running[0]["name"]
            from engine.client import Client
            attached = Client().exec(ref, ["sh"], tty=True, interactive=True)
        except Exception as e:  # noqa: BLE001
            self.post_message(LabFailed("lab.failed.shell", self._failure(e, "lab.failed.shell")))
            return
        self.post_message(TerminalReady(step_id, attached.pty, attached=attached, title=f"{ref}: sh"))

    async def on_lesson_screen_terminal_ready(self, message: TerminalReady) -> None:
        self._drop_closed_terminal()
        await self._gone("terminal")              # the last session's screen, gone before its id is reused
        view = terminal_view()(message.fd, step_id=message.step_id, session=message.session,
                               attached=message.attached, lang=self.lang, id="terminal")
        view.typing_delay, view.typing_quiet = self.typing_delay, self.typing_quiet
        self.terminal = view
        self.query_one("#side").mount(view)
        self.add_class("-terminal")
        if self.has_class("-narrow"):
            self.add_class("-show-side")
        view.focus()
        if message.then is not None:
            self.show_rest = (message.step_id, message.then)
        view.type_lines(message.typing)

    # -- going in and out, and the session's end ----------------------------------------------------
    def action_terminal(self) -> None:
        """t: back into the open terminal session (Ctrl+] leaves it again)."""
        if self.terminal is None:
            return
        if self.has_class("-narrow"):
            self.add_class("-show-side")
        self.terminal.focus()
        self.refresh_bindings()

    def on_terminal_view_release_focus(self, event) -> None:
        """Ctrl+]: back to the lesson; the session stays open."""
        event.stop()
        self.remove_class("-show-side")
        self.query_one("#lesson-scroll").focus()
        self.refresh_bindings()                   # t (back to the terminal) in the footer

    def on_terminal_view_closed(self, event) -> None:
        """The session ended: its last screen stays in view until the next one (or the next step)."""
        event.stop()
        if self.terminal is None:
            return
        view, step_id = self.terminal, self.terminal.step_id
        self.terminal = None
        self.busy = None
        self.refresh_bindings()                   # t (back to the terminal) goes from the footer
        code = view.ended(event.exit_code)
        if self.focused is view:
            self.query_one("#lesson-scroll").focus()
        if code is not None:
            self.output.say(t(self.lang, "terminal.closed", code=code))
        step = self.lesson.step(step_id)
        rest, self.show_rest = self.show_rest, None
        if rest is not None and rest[0] == step_id and rest[1] < len(step.show_me) and step_id == self.step.id:
            self.busy = " && ".join(c.text for c in step.show_me[rest[1]:])
            self._show(step, rest[1])             # show me goes on after its terminal
            return
        if step_id == self.step.id:
            self.view(step_id).set_status("")
            if step.checks and step_id in self.cursors:
                self._check(step, wait=3.0)

    def _drop_closed_terminal(self) -> None:
        if self.terminal is None:
            for view in self.query("#terminal"):
                self._discard(view)
            self.remove_class("-terminal")
            self.remove_class("-show-side")

    def close_terminal(self) -> None:
        """End an open terminal session (leaving the lesson, quitting): the widget,
        which owns the pty, goes -- hanging the session up -- and its program is waited for."""
        self.show_rest = None
        if self.terminal is None:
            return
        view = self.terminal
        self.terminal = None
        self._discard(view)
        view.hang_up()
