"""Small questions over a screen: the lesson is complete; quit with containers still running?"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.i18n import t, tn
from tui.screens.keys import relabel


class Dialog(ModalScreen[str | None]):
    """A box in the middle: a title, some text, buttons; each button dismisses with its name."""

    BINDINGS = [Binding("escape", "dismiss_none", show=False)]

    def __init__(self, lang: str) -> None:
        super().__init__(classes="dialog")
        self.lang = lang

    def texts(self) -> dict[str, str]:
        """Widget id -> text, in ``self.lang``."""
        raise NotImplementedError

    def buttons(self) -> list[tuple[str, str, str]]:
        """(name, label, variant) of each button, first one focused."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            for wid, text in self.texts().items():
                yield Static(text, id=wid, markup=False)
            with Horizontal(classes="buttons"):
                for name, label, variant in self.buttons():
                    yield Button(label, name=name, variant=variant, compact=True)

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def set_language(self, lang: str) -> None:
        self.lang = lang
        for wid, text in self.texts().items():
            self.query_one(f"#{wid}", Static).update(text)
        for button, (_name, label, _variant) in zip(self.query(Button), self.buttons()):
            relabel(button, label)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.name)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class CompletionScreen(Dialog):
    """The moment a lesson is done: what was done, and where to go next."""

    def __init__(self, lang: str, title: dict, steps: int, checks: int, next_title: dict | None) -> None:
        super().__init__(lang)
        self.title_by_lang, self.steps, self.checks, self.next_title = title, steps, checks, next_title

    def texts(self) -> dict[str, str]:
        lang = self.lang
        return {
            "dialog-title": t(lang, "complete.title"),
            "dialog-body": t(lang, "complete.body", title=self.title_by_lang.get(lang, ""),
                             steps=tn(lang, "count.steps", self.steps), checks=tn(lang, "count.checks", self.checks)),
            "dialog-next": (t(lang, "complete.next", title=self.next_title.get(lang, "")) if self.next_title
                            else t(lang, "complete.last")),
        }

    def buttons(self) -> list[tuple[str, str, str]]:
        out = [("next", t(self.lang, "complete.button.next"), "primary")] if self.next_title else []
        return out + [("map", t(self.lang, "complete.button.map"), "default"),
                      ("stay", t(self.lang, "complete.button.stay"), "default")]


class QuitScreen(Dialog):
    """Quitting while containers the learner started are still running: remove them too?"""

    def __init__(self, lang: str, names: list[str]) -> None:
        super().__init__(lang)
        self.names = names

    def texts(self) -> dict[str, str]:
        return {
            "dialog-title": t(self.lang, "quit.title"),
            "dialog-body": t(self.lang, "quit.body", names=t(self.lang, "list.sep").join(self.names)),
        }

    def buttons(self) -> list[tuple[str, str, str]]:
        return [("remove", t(self.lang, "quit.remove"), "primary"), ("keep", t(self.lang, "quit.keep"), "default"),
                ("cancel", t(self.lang, "quit.cancel"), "default")]
