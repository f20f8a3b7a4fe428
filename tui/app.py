"""The container-lab app -- for now, its first slice: a welcome screen.

``container-lab`` with no verb lands here. This release shows what the course
is, what this machine can do (root or not, cgroup layout, overlayfs) and one
command to try; the lessons with their live lab panel arrive in a later
release, and the screen says so.

The machine check (:func:`check_machine`) and the screen's words
(:func:`welcome_text`) do not touch Textual; :class:`WelcomeApp` only lays them
out, so a test can pin the machine (``make_app(machine=...)``) and get the same
screen on every host.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Static

from tui.i18n import LANGS, detect_language, other, t

TRY_COMMAND = "container-lab run --rm -it lab bash"
# Where the container sees its own memory limit (its cgroup is mounted at /sys/fs/cgroup).
MEMORY_FILE = {
    "v2": "/sys/fs/cgroup/memory.max",
    "v1": "/sys/fs/cgroup/memory/memory.limit_in_bytes",
}
LIMITS = ("memory", "pids", "cpu", "swap")


# -- what this machine can do (no Textual) ----------------------------------------

@dataclass(frozen=True)
class Machine:
    """What the welcome screen reports about this machine.

    ``cgroup`` is the engine driver's name: ``v1``, ``v2`` or ``none``;
    ``limits`` the limits it can apply; ``cgroup_reason`` why there is none.
    """

    root: bool
    cgroup: str
    limits: tuple[str, ...] = ()
    cgroup_reason: str = ""
    overlayfs: bool = False

    @property
    def cgroup_ok(self) -> bool:
        """Whether containers get at least one resource limit here."""
        return self.cgroup != "none" and bool(self.limits)


def check_machine(*, filesystems: Path = Path("/proc/filesystems"),
                  detect: Callable | None = None,
                  euid: Callable[[], int] = os.geteuid) -> Machine:
    """Look at this machine: a few reads of /proc and /sys, about 1 ms (plus importing the engine)."""
    if detect is None:
        from engine.cgroups import detect
    try:
        driver = detect()
        name = driver.name
        supports = driver.supports() if name != "none" else {}
        reason = "" if name != "none" else next(iter(driver.why_not().values()), "")
    except Exception as e:  # a check must never stop the app from opening
        name, supports, reason = "none", {}, str(e) or type(e).__name__
    try:
        overlay = any(line.split()[-1:] == ["overlay"]
                      for line in filesystems.read_text().splitlines())
    except OSError:
        overlay = False
    return Machine(root=euid() == 0, cgroup=name,
                   limits=tuple(f for f in LIMITS if supports.get(f)),
                   cgroup_reason=reason, overlayfs=overlay)


# -- the screen's words (no Textual) ----------------------------------------------

def welcome_text(lang: str, machine: Machine) -> dict[str, str]:
    """Every text on the welcome screen, keyed by the id of the widget that shows it."""
    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    if machine.cgroup in ("v1", "v2"):
        layout = t(lang, f"check.cgroup.{machine.cgroup}",
                   limits=t(lang, "list.sep").join(t(lang, f"limit.{f}") for f in machine.limits))
        cgroup = layout if machine.limits else t(lang, "check.cgroup.nolimits",
                                                 layout=f"cgroup {machine.cgroup}")
    else:
        cgroup = t(lang, "check.cgroup.none", reason=machine.cgroup_reason or "?")
    memory_file = MEMORY_FILE.get(machine.cgroup, MEMORY_FILE["v2"])
    return {
        "about-title": t(lang, "about.title"),
        "about-body": t(lang, "about.body"),
        "about-preview": t(lang, "about.preview"),
        "machine-title": t(lang, "machine.title"),
        "root-mark": mark(machine.root),
        "root-name": t(lang, "check.root"),
        "root-detail": t(lang, "check.root.yes" if machine.root else "check.root.no"),
        "cgroup-mark": mark(machine.cgroup_ok),
        "cgroup-name": t(lang, "check.cgroup"),
        "cgroup-detail": cgroup,
        "overlay-mark": mark(machine.overlayfs),
        "overlay-name": t(lang, "check.overlay"),
        "overlay-detail": t(lang, "check.overlay.yes" if machine.overlayfs else "check.overlay.no"),
        "try-title": t(lang, "try.title"),
        "try-intro": t(lang, "try.intro"),
        "try-command": f"$ {TRY_COMMAND}",
        "try-sudo": "" if machine.root else t(lang, "try.sudo"),
        "try-inside": t(lang, "try.inside"),
        "look-ps-cmd": "ps -ef",
        "look-ps": t(lang, "look.ps"),
        "look-hostname-cmd": "hostname",
        "look-hostname": t(lang, "look.hostname"),
        "look-memory-cmd": f"cat {memory_file}",
        "look-memory": t(lang, "look.memory" if machine.cgroup != "none" else "look.memory.none"),
        "try-after": t(lang, "try.after"),
    }


def help_text(lang: str) -> dict[str, str]:
    """Every text on the help screen, keyed by widget id."""
    return {
        "help-title": t(lang, "help.title"),
        "help-keys": "\n".join(f"{keys:<13} {t(lang, what)}" for keys, what in (
            ("l", "help.lang"), ("q", "help.quit"), ("F1  ?", "help.help"),
            ("↑ ↓ PgUp PgDn", "help.scroll"))),
        "help-cli-cmd": "$ container-lab --help",
        "help-cli": t(lang, "help.cli"),
        "help-close": t(lang, "help.close"),
    }


# -- the app ----------------------------------------------------------------------

def _language_bindings() -> list[Binding]:
    """One set of app bindings per language; ``check_action`` shows the current one.

    A binding's description is fixed when it is made, so the footer reads in
    the language on screen by having a set for each and hiding the others. The
    action's argument names the set; the actions themselves ignore it.
    """
    bindings = []
    for lang in LANGS:
        bindings += [
            Binding("l", f"switch_language('{lang}')", t(lang, "key.lang")),
            Binding("f1", f"help('{lang}')", t(lang, "key.help")),
            Binding("question_mark", f"help('{lang}')", t(lang, "key.help"), show=False),
            Binding("q", f"quit_app('{lang}')", t(lang, "key.quit")),
        ]
    return bindings


class HelpScreen(ModalScreen[None]):
    """The keys, over the welcome screen; any of Esc, q, F1 or ? closes it."""

    BINDINGS = [
        Binding("escape,q,f1,question_mark", "dismiss", show=False),
        Binding("l", "app.switch_language", show=False),
    ]

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            for wid, text in help_text(self.lang).items():
                yield Static(text, id=wid, markup=False)

    def set_language(self, lang: str) -> None:
        """Re-render the help in ``lang``."""
        self.lang = lang
        for wid, text in help_text(lang).items():
            self.query_one(f"#{wid}", Static).update(text)


class WelcomeApp(App[None]):
    """container-lab's first slice: what it is, what this machine can do, what to try."""

    CSS_PATH = "app.tcss"
    TITLE = "container-lab"
    ENABLE_COMMAND_PALETTE = False      # its commands are English-only; nothing to offer yet
    BINDINGS = _language_bindings()

    def __init__(self, lang: str, machine: Machine) -> None:
        super().__init__()
        self.lang = lang
        self.machine = machine

    def compose(self) -> ComposeResult:
        text = welcome_text(self.lang, self.machine)

        def static(wid: str, *classes: str) -> Static:
            return Static(text[wid], id=wid, classes=" ".join(classes), markup=False)

        yield Header()
        with VerticalScroll(id="body"):
            yield static("about-title", "section")
            yield static("about-body")
            yield static("about-preview", "note")
            yield static("machine-title", "section")
            with Grid(id="checks"):
                for check, ok in (("root", self.machine.root),
                                  ("cgroup", self.machine.cgroup_ok),
                                  ("overlay", self.machine.overlayfs)):
                    yield static(f"{check}-mark", "mark", "ok" if ok else "missing")
                    yield static(f"{check}-name", "name")
                    yield static(f"{check}-detail")
            yield static("try-title", "section")
            yield static("try-intro")
            yield static("try-command", "command")
            sudo = static("try-sudo", "note")
            sudo.display = not self.machine.root
            yield sudo
            yield static("try-inside")
            for look in ("ps", "hostname", "memory"):
                yield static(f"look-{look}-cmd", "command", "look")
                yield static(f"look-{look}", "why")
            yield static("try-after")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = t(self.lang, "subtitle")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keep only the current language's bindings (see :func:`_language_bindings`)."""
        if action in ("switch_language", "help", "quit_app") and parameters:
            return parameters[0] == self.lang
        return True

    def set_language(self, lang: str) -> None:
        """Re-render every text in ``lang``, in place (scroll position kept)."""
        self.lang = lang
        self.sub_title = t(lang, "subtitle")
        for wid, text in welcome_text(lang, self.machine).items():
            self.query_one(f"#{wid}", Static).update(text)
        for screen in self.screen_stack:
            if isinstance(screen, HelpScreen):
                screen.set_language(lang)
        self.refresh_bindings()

    def action_switch_language(self, _set: str = "") -> None:
        """``l``: English <-> Chinese."""
        self.set_language(other(self.lang))

    def action_help(self, _set: str = "") -> None:
        """``F1`` / ``?``: the keys."""
        self.push_screen(HelpScreen(self.lang))

    def action_quit_app(self, _set: str = "") -> None:
        """``q``: leave."""
        self.exit()


def make_app(lang: str | None = None, *, machine: Machine | None = None) -> WelcomeApp:
    """The app in ``lang`` (default: from the locale), describing ``machine`` (default: this one)."""
    if lang is None:
        lang = detect_language()
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGS)}")
    return WelcomeApp(lang, check_machine() if machine is None else machine)


def main(args: list[str]) -> int:
    """``container-lab [--lang en|zh]``: open the course (for now, the welcome screen)."""
    parser = argparse.ArgumentParser(
        prog="container-lab",
        description="Open the container-lab course. With a verb (run, ps, rm, ...) "
                    "container-lab is the engine's CLI instead: see container-lab --help.")
    parser.add_argument("--lang", choices=LANGS,
                        help="language of the course (default: from LANGUAGE, LC_ALL, LC_MESSAGES, LANG)")
    parser.add_argument("--lesson", metavar="ID", help="open this lesson (a later release)")
    parser.add_argument("--course", metavar="DIR", help="use the course in DIR (a later release)")
    try:
        ns = parser.parse_args(args)
    except SystemExit as e:         # --help, or a bad argument: argparse has said why
        return e.code if isinstance(e.code, int) else 2
    lang = ns.lang or detect_language()
    if ns.lesson is not None or ns.course is not None:
        print(t(lang, "note.lessons_later"), file=sys.stderr)
        return 1
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(t(lang, "note.no_terminal"), file=sys.stderr)
        return 1
    app = make_app(lang)
    app.run()
    return app.return_code or 0
