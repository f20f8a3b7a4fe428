"""The keys, over whatever screen is open: F1 or ? opens it, Esc closes it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.i18n import t
from tui.screens.keys import APP_KEYS, LESSON_KEYS, MAP_KEYS, OTHER_KEYS, STAGE_KEYS, WELCOME_KEYS, Key, key_display


def _display(app, key: Key) -> str:
    return "  ".join(key_display(k) or app.get_key_display(Binding(k, "")) for k in key.keys.split(","))


def help_rows(app, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The help's sections: (title, [(keys, what they do)]), in ``lang``."""
    def merged(keys) -> list[tuple[str, str]]:
        rows: dict[str, list[str]] = {}
        for k in keys:
            rows.setdefault(k.action.partition(":")[0], []).append(_display(app, k))
        return [("  ".join(shown), t(lang, f"help.{action}")) for action, shown in rows.items()]

    def other(name: str) -> list[tuple[str, str]]:
        return [(keys, t(lang, what)) for keys, what in OTHER_KEYS[name]]

    return [
        (t(lang, "help.section.everywhere"), merged(APP_KEYS)),
        (t(lang, "help.section.lesson"), merged(k for k in LESSON_KEYS if k not in STAGE_KEYS) + other("quiz")
         + merged(STAGE_KEYS)),
        (t(lang, "help.section.welcome"), merged(WELCOME_KEYS)),
        (t(lang, "help.section.map"), other("map") + merged(MAP_KEYS)),
        (t(lang, "help.section.command"), other("command")),
        (t(lang, "help.section.terminal"), other("terminal")),
    ]


def keys_table(app, lang: str) -> Group:
    """The keys, section by section: a bold title, then each key beside what it does."""
    width = max(len(keys) for _, rows in help_rows(app, lang) for keys, _ in rows)
    parts = []
    for n, (title, rows) in enumerate(help_rows(app, lang)):
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(width=width + 2, no_wrap=True)
        table.add_column(ratio=1)
        for keys, what in rows:
            table.add_row(f"  {keys}", what)
        parts += [Text("\n" + title if n else title, style="bold"), table]
    return Group(*parts)


def help_text(app, lang: str) -> dict[str, str | Group]:
    """Every text of the help screen, by widget id."""
    return {
        "help-title": t(lang, "help.title"),
        "help-keys": keys_table(app, lang),
        "help-cli-cmd": "$ container-lab --help",
        "help-cli": t(lang, "help.cli"),
        "help-close": t(lang, "help.close"),
    }


class HelpScreen(ModalScreen[None]):
    """Every key of the app, in the language on screen."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", show=False)]

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            for wid, text in help_text(self.app, self.lang).items():
                yield Static(text, id=wid, markup=False)

    def set_language(self, lang: str) -> None:
        """Re-render the help in ``lang``."""
        self.lang = lang
        for wid, text in help_text(self.app, lang).items():
            self.query_one(f"#{wid}", Static).update(text)
