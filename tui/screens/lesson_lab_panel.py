"""The lab panel on the lesson screen: put in place, and following what was started.

:class:`LabPanelMixin`, a part of :class:`tui.screens.lesson.LessonScreen`:
the panel (:class:`tui.widgets.lab.LabPanel`, or a placeholder: what it must
offer is :class:`tui.contracts.LabView`) is mounted once the lesson has been
drawn, and shows the container a command just made or went into -- a
``run``'s ``--name`` or printed id, the lesson's newest container since the
command began, an ``exec``'s container -- told by the workers with
``Follow`` or a ``CommandDone``'s ``ref``.

Of the screen's state it changes ``selected`` (the container the learner
picked in the panel: o opens a shell there).
"""

from __future__ import annotations

import re

from textual.worker import get_current_worker

from tui.contracts import LabView
from tui.screens.lesson_messages import Follow

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


class LabPanelMixin:
    """The lesson screen's lab panel: mounted, and following what was started."""

    # -- put in place after the first frame ----------------------------------------------------------
    def _mount_lab_panel(self) -> None:
        """The lab panel takes its place once the lesson has been drawn: the
        learner reads at once, and the panel fills in a moment later."""
        side = self.query_one("#side")
        if not (side.is_mounted and side.is_attached):
            return                                    # the app quit, or the screen left, before the panel came
        panel = self._lab_panel(self.lang)
        panel.id = "lab"
        panel.show_lesson(self.lesson.id)             # not the containers kept from other lessons
        self.query_one("#lab-waiting").remove()
        side.mount(panel, before=0)

    def lab_panel(self) -> LabView | None:
        """The lab panel, once it is there."""
        found = self.query("#lab")
        return found.first() if found else None

    # -- following what was started ------------------------------------------------------------------
    def _started_ref(self, cmd, since: str) -> str | None:
        """(In a worker.) The container ``cmd`` started (the lesson's newest since ``since``:
        a run without --name or -d prints no id) or went into (exec), for the lab panel."""
        if cmd is None:
            return None
        if getattr(cmd, "verb", "") == "exec":
            return exec_target(cmd)
        if getattr(cmd, "verb", "") != "run":
            return None
        return self._newest_since(since)

    def _newest_since(self, since: str) -> str | None:
        try:
            found = [c for c in self.lab.containers() if (c.get("created") or "") >= since]
        except Exception:  # noqa: BLE001 - only which container the panel shows
            return None
        return max(found, key=lambda c: c.get("created") or "")["id"] if found else None

    def _follow_started(self, cmd, since: str, timeout: float = 5.0) -> None:
        """(In a worker.) The lab panel to the container an interactive command starts, once it
        exists (the command runs on its own pseudo-terminal: its id is nowhere else)."""
        import time

        if cmd.verb == "run" and cmd.name:
            self.post_message(Follow(cmd.name))
            return
        deadline = time.monotonic() + timeout
        while (ref := self._started_ref(cmd, since)) is None and cmd.verb == "run" \
                and time.monotonic() < deadline and not get_current_worker().is_cancelled:
            time.sleep(0.1)
        if ref is not None:
            self.post_message(Follow(ref))

    def on_lesson_screen_follow(self, message: Follow) -> None:
        if (panel := self.lab_panel()) is not None:
            panel.select(message.ref)

    # -- the container the learner picked ---------------------------------------------------------
    def on_lab_panel_container_selected(self, event) -> None:
        self.selected = getattr(event, "name", None) or getattr(event, "container_id", None) or self.selected


def created_now() -> str:
    """Now, as the engine writes a container's ``created``."""
    from tui.session import _now as now
    return now()


EXEC_VALUED = {"-u", "--user", "-e", "--env", "-w", "--workdir"}


def exec_target(cmd) -> str | None:
    """The container a translated ``exec`` goes into: its first word that is not an option."""
    words = list(getattr(cmd, "argv", ())[1:])
    while words:
        word = words.pop(0)
        if word in EXEC_VALUED:
            words = words[1:]
        elif not word.startswith("-"):
            return word
    return None


def container_ref(cmd, result) -> str | None:
    """The container a command made, to select in the lab panel: its --name,
    or the id ``run -d`` printed."""
    if getattr(cmd, "verb", "") != "run":
        return None
    if cmd.name:
        return cmd.name
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return lines[-1] if lines and CONTAINER_ID.match(lines[-1]) else None
