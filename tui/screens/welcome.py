"""The welcome screen, for a learner who has not started: what the course is,
what this machine can do for it, the language, and where to begin."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from tui.i18n import LANGS, t, tn
from tui.machine import LIMITS, Machine
from tui.screens.keys import FRONT_KEYS, WELCOME_KEYS, Localized, bindings, relabel

LANGUAGE_NAMES = {"en": "English", "zh": "中文"}


def welcome_text(lang: str, machine: Machine, course=None) -> dict[str, str]:
    """Every text on the welcome screen, keyed by the id of the widget that shows it
    (``course``: the one the app opened -- the shipped course or one given with --course)."""
    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    if machine.cgroup in ("v1", "v2") and machine.limits:
        cgroup = t(lang, f"check.cgroup.{machine.cgroup}",
                   limits=t(lang, "list.sep").join(t(lang, f"limit.{f}") for f in machine.limits))
    elif machine.cgroup in ("v1", "v2"):
        cgroup = t(lang, "check.cgroup.nolimits", layout=f"cgroup {machine.cgroup}",
                   reason=machine.cgroup_reason or "?")
    else:
        cgroup = t(lang, "check.cgroup.none", reason=machine.cgroup_reason or "?")
    missing = [f for f in LIMITS if f not in machine.limits and f != "swap"]
    lessons = len(course.lessons) if course is not None else 0
    return {
        "course-title": tn(lang, "welcome.course", lessons, title=course.title.get(lang, course.id))
        if course is not None else "",
        "about-title": t(lang, "about.title"),
        "about-body": t(lang, "about.body"),
        "about-how": t(lang, "about.how"),
        "machine-title": t(lang, "machine.title"),
        "root-mark": mark(machine.can_run),
        "root-name": t(lang, "check.root"),
        "root-detail": t(lang, "check.root.yes" if machine.root else
                         "check.root.no" if machine.can_run else "check.root.blocked", detail=machine.blocker),
        "cgroup-mark": mark(machine.cgroup_ok),
        "cgroup-name": t(lang, "check.cgroup"),
        "cgroup-detail": cgroup,
        "overlay-mark": mark(machine.overlayfs),
        "overlay-name": t(lang, "check.overlay"),
        "overlay-detail": t(lang, "check.overlay.yes" if machine.overlayfs else "check.overlay.no"),
        "machine-note": (t(lang, "machine.note.limits", limits=t(lang, "list.sep").join(
            t(lang, f"limit.{f}") for f in missing)) if machine.root and missing else
            t(lang, "machine.note.blocked") if not machine.can_run else
            t(lang, "machine.note.root") if not machine.root else t(lang, "machine.note.ok")),
        "lang-title": t(lang, "lang.title"),
        "lang-body": t(lang, "lang.body"),
        "start-title": t(lang, "start.title"),
        "start-body": t(lang, "start.body"),
    }


class WelcomeScreen(Localized, Screen):
    """What container-lab is, this machine's check, the language, and Start."""

    BINDINGS = bindings(*FRONT_KEYS, *WELCOME_KEYS)

    class Start(Message):
        """The learner wants the first lesson."""

    class OpenMap(Message):
        """The learner wants the course map."""

    class LanguageChosen(Message):
        """A language button was pressed."""

        def __init__(self, lang: str) -> None:
            super().__init__()
            self.lang = lang

    def __init__(self, lang: str, machine: Machine, course=None) -> None:
        super().__init__()
        self.lang = lang
        self.machine = machine
        self.course = course

    def compose(self) -> ComposeResult:
        text = welcome_text(self.lang, self.machine, self.course)

        def static(wid: str, *classes: str) -> Static:
            return Static(text[wid], id=wid, classes=" ".join(classes), markup=False)

        yield Header()
        with VerticalScroll(id="body"):
            yield static("course-title", "course")
            yield static("about-title", "section")
            yield static("about-body")
            yield static("about-how")
            yield static("machine-title", "section")
            with Grid(id="checks"):
                for check, ok in (("root", self.machine.can_run), ("cgroup", self.machine.cgroup_ok),
                                  ("overlay", self.machine.overlayfs)):
                    yield static(f"{check}-mark", "mark", "ok" if ok else "missing")
                    yield static(f"{check}-name", "name")
                    yield static(f"{check}-detail")
            yield static("machine-note", "note")
            yield static("lang-title", "section")
            yield static("lang-body")
            with Horizontal(id="lang-buttons", classes="buttons"):
                for code in LANGS:
                    yield Button(LANGUAGE_NAMES[code], id=f"lang-{code}", compact=True)
            yield static("start-title", "section")
            yield static("start-body")
            with Horizontal(id="start-buttons", classes="buttons"):
                yield Button(t(self.lang, "start.button"), id="start", variant="primary", compact=True)
                yield Button(t(self.lang, "start.map"), id="map", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = t(self.lang, "subtitle.welcome")
        self._mark_language()
        self.query_one("#body").focus()

    def action_start(self) -> None:
        """Enter: the first lesson."""
        self.post_message(self.Start())

    def _mark_language(self) -> None:
        for code in LANGS:
            self.query_one(f"#lang-{code}", Button).set_class(code == self.lang, "-current")

    def set_language(self, lang: str) -> None:
        """Re-render every text in ``lang``, in place (scroll position and focus kept)."""
        self.lang = lang
        self.sub_title = t(lang, "subtitle.welcome")
        for wid, text in welcome_text(lang, self.machine, self.course).items():
            self.query_one(f"#{wid}", Static).update(text)
        relabel(self.query_one("#start", Button), t(lang, "start.button"))
        relabel(self.query_one("#map", Button), t(lang, "start.map"))
        self._mark_language()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        bid = event.button.id or ""
        if bid.startswith("lang-"):
            self.post_message(self.LanguageChosen(bid[5:]))
        elif bid == "start":
            self.post_message(self.Start())
        elif bid == "map":
            self.post_message(self.OpenMap())
