"""The welcome screen: its words in both languages, its keys, and how it looks.

Pilot tests drive the app headless at 80x24 (``app.run_test``); snapshot tests
(pytest-textual-snapshot) compare whole screens with the SVGs in
``__snapshots__/test_tui/`` -- after a deliberate change, rerun with
``--snapshot-update`` and look at the report before keeping them. The machine
is pinned (``make_app(machine=...)``) so every host draws the same screen.
"""

from __future__ import annotations

import asyncio
import re
import string

import pytest
from textual.widgets import Static

from tui import app as tui_app
from tui.app import (MEMORY_FILE, TRY_COMMAND, HelpScreen, Machine, check_machine, main,
                     make_app, welcome_text)
from tui.i18n import CATALOG, LANGS, detect_language, other, t

ROOT_V2 = Machine(root=True, cgroup="v2", limits=("memory", "pids", "cpu", "swap"), overlayfs=True)
USER_NONE = Machine(root=False, cgroup="none", overlayfs=False,
                    cgroup_reason="cgroup v2 at /sys/fs/cgroup is not writable by uid 1000: "
                                  "limits need root or a delegated cgroup")
SIZE = (80, 24)
# A few words that only the Chinese screen shows, and their English counterparts.
ZH_WORDS = ("动手试试", "本机情况", "命名空间")
EN_WORDS = ("Try it now", "This machine", "namespace")


@pytest.fixture(autouse=True)
def _colors_on(monkeypatch):
    """Snapshots are taken in colour, whatever the shell running the tests asks for."""
    monkeypatch.delenv("NO_COLOR", raising=False)


def screen_text(app) -> str:
    """All the text of the active screen's Static widgets, in order."""
    return "\n".join(str(w.content) for w in app.screen.query(Static))


def run(coro):
    return asyncio.run(coro)


# -- the catalog ----------------------------------------------------------------

def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalog_languages_have_the_same_keys():
    assert set(CATALOG) == set(LANGS)
    en = set(CATALOG["en"])
    for lang in LANGS:
        assert set(CATALOG[lang]) == en, f"{lang}: missing {en - set(CATALOG[lang])}, " \
                                         f"extra {set(CATALOG[lang]) - en}"


@pytest.mark.parametrize("key", sorted(CATALOG["en"]))
def test_catalog_entries_have_the_same_placeholders_and_are_not_empty(key):
    wanted = _placeholders(CATALOG["en"][key])
    for lang in LANGS:
        assert CATALOG[lang][key].strip(), f"{lang}:{key} is empty"
        assert _placeholders(CATALOG[lang][key]) == wanted, f"{lang}:{key}"


_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_LATIN = r"[A-Za-z0-9]"


@pytest.mark.parametrize("key", sorted(CATALOG["zh"]))
def test_chinese_puts_a_space_between_chinese_and_latin_text(key):
    text = CATALOG["zh"][key]
    glued = re.findall(f"{_HAN}{_LATIN}|{_LATIN}{_HAN}", text)
    assert not glued, f"zh:{key}: no space in {glued}: {text!r}"


def test_chinese_uses_the_established_terms():
    zh = " ".join(CATALOG["zh"].values())
    for term in ("容器", "镜像", "命名空间", "控制组", "宿主机"):
        assert term in zh


@pytest.mark.parametrize("env, lang", [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "en:zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "", "LANG": "zh_CN.UTF-8"}, "zh"),
])
def test_language_comes_from_the_locale(env, lang):
    assert detect_language(env) == lang


def test_other_language():
    assert other("en") == "zh" and other("zh") == "en"


# -- the machine check and the words (no Textual needed) ------------------------

class _Driver:
    def __init__(self, name, supports=None, why=None):
        self.name, self._supports, self._why = name, supports or {}, why or {}

    def supports(self):
        return self._supports

    def why_not(self):
        return self._why


def test_check_machine_reads_root_cgroups_and_overlayfs(tmp_path):
    fs = tmp_path / "filesystems"
    fs.write_text("nodev\tsysfs\nnodev\tcgroup2\n\text4\nnodev\toverlay\n")
    driver = _Driver("v2", {"memory": True, "pids": True, "cpu": True, "swap": False},
                     {"swap": "no swap accounting"})
    m = check_machine(filesystems=fs, detect=lambda: driver, euid=lambda: 0)
    assert m == Machine(root=True, cgroup="v2", limits=("memory", "pids", "cpu"), overlayfs=True)


def test_check_machine_without_cgroups_or_overlayfs(tmp_path):
    fs = tmp_path / "filesystems"
    fs.write_text("nodev\tsysfs\n\text4\n")
    driver = _Driver("none", why={f: "no cgroup here" for f in ("memory", "pids", "cpu", "swap")})
    m = check_machine(filesystems=fs, detect=lambda: driver, euid=lambda: 1000)
    assert m == Machine(root=False, cgroup="none", cgroup_reason="no cgroup here", overlayfs=False)


def test_check_machine_survives_a_failing_detect(tmp_path):
    def boom():
        raise PermissionError("mountinfo unreadable")
    m = check_machine(filesystems=tmp_path / "missing", detect=boom, euid=lambda: 0)
    assert (m.cgroup, m.cgroup_reason, m.overlayfs) == ("none", "mountinfo unreadable", False)


def test_check_machine_on_this_host_does_not_fail():
    m = check_machine()
    assert m.cgroup in ("v1", "v2", "none")


@pytest.mark.parametrize("cgroup", ["v1", "v2"])
def test_memory_file_follows_the_cgroup_layout(cgroup):
    machine = Machine(root=True, cgroup=cgroup, limits=("memory",), overlayfs=True)
    for lang in LANGS:
        assert welcome_text(lang, machine)["look-memory-cmd"] == f"cat {MEMORY_FILE[cgroup]}"


def test_words_for_a_machine_that_cannot_do_much():
    for lang in LANGS:
        text = welcome_text(lang, USER_NONE)
        assert USER_NONE.cgroup_reason in text["cgroup-detail"]
        assert text["root-detail"] == t(lang, "check.root.no")
        assert text["try-sudo"] == t(lang, "try.sudo")
        assert text["look-memory"] == t(lang, "look.memory.none")
        assert {text[f"{c}-mark"] for c in ("root", "cgroup", "overlay")} == {"✗"}


def test_both_languages_fill_every_widget():
    for machine in (ROOT_V2, USER_NONE):
        en, zh = welcome_text("en", machine), welcome_text("zh", machine)
        assert en.keys() == zh.keys()
        # commands are the same in both languages
        for key in en:
            if key.endswith("-cmd") or key == "try-command":
                assert en[key] == zh[key]


# -- main() -----------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--lesson", "3"], ["--course", "/tmp/course"],
                                  ["--lang", "zh", "--lesson", "1"]])
def test_lessons_and_courses_get_a_one_line_note(args, capsys):
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    lang = "zh" if "zh" in args else detect_language()
    assert err.strip() == t(lang, "note.lessons_later")


def test_a_bad_language_is_a_usage_error(capsys):
    assert main(["--lang", "fr"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_of_the_course_options(capsys):
    assert main(["--help"]) == 0
    assert "--lang" in capsys.readouterr().out


def test_without_a_terminal_main_says_so_instead_of_drawing(capsys, monkeypatch):
    monkeypatch.setattr(tui_app.sys.stdin, "isatty", lambda: False, raising=False)
    assert main(["--lang", "en"]) == 1
    assert capsys.readouterr().err.strip() == t("en", "note.no_terminal")


def test_make_app_rejects_an_unknown_language():
    with pytest.raises(ValueError, match="unknown language"):
        make_app("fr", machine=ROOT_V2)


# -- the app, driven headless -------------------------------------------------------

def test_welcome_screen_shows_title_and_try_it_command():
    async def scenario():
        app = make_app("en", machine=ROOT_V2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert app.title == "container-lab"
            assert "What is container-lab" in text
            assert TRY_COMMAND in text
            assert "ps -ef" in text and "hostname" in text and MEMORY_FILE["v2"] in text
            assert t("en", "about.preview") in text       # honestly labelled
    run(scenario())


def test_l_switches_to_chinese_and_back_in_place():
    async def scenario():
        app = make_app("en", machine=ROOT_V2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            before = app.screen.query_one("#try-command")
            await pilot.press("l")
            await pilot.pause()
            text = screen_text(app)
            assert app.lang == "zh"
            assert all(word in text for word in ZH_WORDS)
            assert app.screen.query_one("#try-command") is before     # same widgets, new words
            assert TRY_COMMAND in text
            assert app.sub_title == t("zh", "subtitle")
            footer = {b.binding.description for b in app.screen.active_bindings.values()
                      if b.binding.show}
            assert footer == {"English", "帮助", "退出"}
            await pilot.press("l")
            await pilot.pause()
            text = screen_text(app)
            assert app.lang == "en"
            assert all(word in text for word in EN_WORDS)
            assert not any(word in text for word in ZH_WORDS)
    run(scenario())


def test_q_quits():
    async def scenario():
        app = make_app("en", machine=ROOT_V2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running
        assert app.return_code == 0
    run(scenario())


@pytest.mark.parametrize("key", ["f1", "question_mark"])
def test_help_opens_and_closes(key):
    async def scenario():
        app = make_app("en", machine=ROOT_V2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert t("en", "help.lang") in screen_text(app)
            await pilot.press("l")                 # the language switches under the help too
            await pilot.pause()
            assert t("zh", "help.lang") in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
            assert all(word in screen_text(app) for word in ZH_WORDS)
            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running
    run(scenario())


def test_a_zh_locale_opens_in_chinese(monkeypatch):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")

    async def scenario():
        app = make_app(machine=ROOT_V2)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.lang == "zh"
            assert all(word in screen_text(app) for word in ZH_WORDS)
    run(scenario())


# -- snapshots ------------------------------------------------------------------------

def test_snapshot_en_80x24(snap_compare):
    assert snap_compare(make_app("en", machine=ROOT_V2), terminal_size=(80, 24))


def test_snapshot_en_120x40(snap_compare):
    assert snap_compare(make_app("en", machine=ROOT_V2), terminal_size=(120, 40))


def test_snapshot_zh_80x24(snap_compare):
    assert snap_compare(make_app("zh", machine=ROOT_V2), terminal_size=(80, 24))


def test_snapshot_en_not_root_without_cgroups_120x40(snap_compare):
    assert snap_compare(make_app("en", machine=USER_NONE), terminal_size=(120, 40))


def test_snapshot_help_80x24(snap_compare):
    assert snap_compare(make_app("en", machine=ROOT_V2), terminal_size=(80, 24), press=["f1"])
