"""Key bindings whose footer labels follow the language on screen.

A binding's description is fixed when it is made, so each key gets one
binding per language, all running ``localized(LANG, ACTION)``; the
:class:`Localized` mixin's ``check_action`` keeps only the current
language's (the others are hidden from the footer and never run) and asks
:meth:`Localized.can` whether ``ACTION`` is available right now (``False``
hides it, ``None`` shows it greyed out). The help screen lists the same
:class:`Key` specs, so the footer and the help never disagree.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from textual.binding import Binding

from tui.i18n import LANGS, t


@dataclass(frozen=True)
class Key:
    """One key: ``keys`` (Textual names, comma-separated), the action it runs,
    the catalog key of its label, and whether the footer shows it."""

    keys: str
    action: str
    label: str
    show: bool = True
    priority: bool = False
    group: str | None = None        # catalog key: keys of one group share one footer label


def bindings(*keys: Key) -> list[Binding]:
    """The bindings for ``keys``, one set per language."""
    out = []
    for lang in LANGS:
        for k in keys:
            group = Binding.Group(t(lang, k.group), compact=False) if k.group else None
            out.append(Binding(k.keys, f"localized('{lang}', '{k.action}')", t(lang, k.label),
                               show=k.show, priority=k.priority, key_display=key_display(k.keys), group=group))
    return out


def key_display(keys: str) -> str | None:
    """How the footer and the help name a key: F1, not f1 (others as Textual shows them)."""
    first = keys.split(",")[0]
    return first.upper() if first[:1] == "f" and first[1:].isdigit() else None


class Localized:
    """For an App or Screen whose BINDINGS come from :func:`bindings`."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "localized" and len(parameters) == 2:
            lang, inner = parameters
            if lang != self.app.lang:
                return False
            return self.can(str(inner))
        return True

    def can(self, action: str) -> bool | None:
        """Whether ``action`` may run now: True, False (hidden) or None (shown, disabled)."""
        return True

    async def action_localized(self, _lang: str, action: str) -> None:
        name, _, arg = action.partition(":")
        method = getattr(self, f"action_{name}", None) or getattr(self.app, f"action_{name}")
        result = method(arg) if arg else method()
        if inspect.isawaitable(result):
            await result


# -- the keys of each screen (the help screen lists them from here) --------------------

APP_KEYS = (
    Key("f1", "help", "key.help", priority=True),
    Key("question_mark", "help", "key.help", show=False),
    Key("f2", "switch_language", "key.lang", priority=True),
    Key("l", "switch_language", "key.lang", show=False),
    Key("ctrl+q", "quit", "key.quit", priority=True),
    Key("q", "quit:key", "key.quit", show=False),     # a lone q asks nothing but does not end a terminal session
)

# The app's F1, F2 and Ctrl+Q again, for a screen to list first: the footer shows a
# screen's keys before the app's, and help, language and quit must show at 80 columns.
FRONT_KEYS = APP_KEYS[0], APP_KEYS[2], APP_KEYS[4]

WELCOME_KEYS = (Key("enter", "start", "key.start"),)

MAP_KEYS = (Key("escape,m", "map_back", "key.map_back"),)

# A step-through start (docker run --explain): only while one is under way, in the
# footer before the lesson's other keys (at 80 columns they must fit), in the help after.
STAGE_KEYS = (
    Key("enter,space", "stage_next", "key.stage_next"),
    Key("f", "stage_finish", "key.stage_finish"),
    Key("escape", "stage_stop", "key.stage_stop"),
)

LESSON_KEYS = (
    Key("f3", "side", "key.side", priority=True),      # from inside the terminal too: back to the lesson
    Key("t", "terminal", "key.terminal"),                # only while a terminal session is open, not focused
    *STAGE_KEYS,
    Key("r", "run", "key.run"),
    Key("c", "check", "key.check"),
    Key("h", "hint", "key.hint"),
    Key("s", "show", "key.show"),
    Key("n", "next", "key.next", group="key.steps"),        # "n p Steps": the footer fits 80 columns
    Key("p", "previous", "key.previous", group="key.steps"),
    Key("x", "reset", "key.reset", show=False),
    Key("o", "shell", "key.shell", show=False),
    Key("colon", "command", "key.command", show=False),
    Key("m", "map", "key.map"),
)

# Keys that widgets handle themselves, listed in the help only: (key display, catalog key).
OTHER_KEYS = {
    "map": (("↑ ↓  Enter", "help.map.open"),),
    "command": (("Enter", "help.command.enter"), ("↑ ↓", "help.command.history"),
                ("Esc", "help.command.escape")),
    "terminal": (("Ctrl+]", "help.terminal.release"),),
    "quiz": (("↑ ↓  Enter", "help.quiz.choose"),),
}


def relabel(button, label: str) -> None:
    """A new label for a Button or RadioButton, its width measured again
    (a label is not a layout change to Textual; another language's may be wider)."""
    button.label = label
    button.refresh(layout=True)
