"""The app's words: gettext catalogs (tui/locale) in parity, read by the standard library.

The template (container-lab.pot) holds every message in English; zh.po must translate every one
of them -- none missing, none extra, none stale (made for an older English msgid), none fuzzy,
the same {placeholders} -- and the code may ask only for messages the template has.
"""

from __future__ import annotations

import gettext
import io
import re
import string
from pathlib import Path

import pytest

from tui.i18n import (
    LANGS,
    LOCALE_DIR,
    Entry,
    PoError,
    catalog,
    compile_mo,
    detect_language,
    other,
    parse_po,
    t,
    template,
)

TUI = Path(__file__).resolve().parent.parent / "tui"
ZH = {e.context: e for e in parse_po((LOCALE_DIR / "zh.po").read_text(encoding="utf-8"), "zh.po") if e.context}
TEMPLATE = template()


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# -- parity ----------------------------------------------------------------------------

def test_every_message_is_translated_and_nothing_else():
    assert TEMPLATE, "the template is empty"
    assert set(ZH) == set(TEMPLATE), (f"missing in zh.po: {sorted(set(TEMPLATE) - set(ZH))}; "
                                      f"not in the template: {sorted(set(ZH) - set(TEMPLATE))}")


@pytest.mark.parametrize("key", sorted(TEMPLATE))
def test_translation_is_current_complete_and_keeps_placeholders(key):
    en, zh = TEMPLATE[key], ZH[key]
    assert en.msgid.strip() and not en.msgstr, f"template {key}: English goes in msgid, msgstr stays empty"
    assert zh.msgid == en.msgid, f"zh {key} translates an older English text: {zh.msgid!r}"
    assert zh.msgstr.strip(), f"zh {key} is not translated"
    assert "fuzzy" not in zh.flags, f"zh {key} is fuzzy"
    assert _placeholders(zh.msgstr) == _placeholders(en.msgid), key
    assert ("python-brace-format" in en.flags) == bool(_placeholders(en.msgid)), \
        f"{key}: python-brace-format marks exactly the messages with placeholders (msgfmt --check uses it)"
    assert en.comment, f"{key}: say where it shows (#. comment) for translators"


_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
_LATIN = r"[A-Za-z0-9]"


@pytest.mark.parametrize("key", sorted(ZH))
def test_chinese_puts_a_space_between_chinese_and_latin_text(key):
    text = ZH[key].msgstr
    glued = re.findall(f"{_HAN}{_LATIN}|{_LATIN}{_HAN}", text)
    assert not glued, f"zh:{key}: no space in {glued}: {text!r}"


def test_chinese_uses_the_established_terms():
    zh = " ".join(e.msgstr for e in ZH.values())
    for term in ("容器", "镜像", "命名空间", "控制组", "宿主机"):
        assert term in zh


def test_the_stdlib_gettext_reads_the_compiled_catalog():
    translations = gettext.GNUTranslations(io.BytesIO(compile_mo(list(ZH.values()))))
    for key, entry in ZH.items():
        assert translations.pgettext(key, entry.msgid) == entry.msgstr
    assert t("zh", "key.help") == ZH["key.help"].msgstr and t("en", "key.help") == TEMPLATE["key.help"].msgid
    assert catalog("zh")["key.quit"] == "退出"


def test_a_fuzzy_or_untranslated_message_falls_back_to_english():
    entries = [Entry("a", "Apple", "苹果"), Entry("b", "Banana", "香蕉", frozenset({"fuzzy"})), Entry("c", "Cherry", "")]
    translations = gettext.GNUTranslations(io.BytesIO(compile_mo(entries)))
    assert [translations.pgettext(e.context, e.msgid) for e in entries] == ["苹果", "Banana", "Cherry"]


# -- the code asks only for messages that exist -------------------------------------------

_LITERAL = re.compile(r"""\bt\((?:self\.)?(?:lang|self\.lang|message\.lang|app\.lang|lang_)?\w*,\s*"([a-z_.]+)"\s*[,)]""")
_STATUS = re.compile(r"""set_status\("([a-z_.]+)"|LabFailed\("([a-z_.]+)"|Key\("[^"]+", "\w+", "([a-z_.]+)\"""")


def _code() -> str:
    return "\n".join(p.read_text() for p in [*TUI.glob("*.py"), *(TUI / "screens").glob("*.py"),
                                              *(TUI / "classroom").glob("*.py")])


def test_every_message_the_code_names_is_in_the_template():
    code = _code()
    named = set(_LITERAL.findall(code)) | {k for groups in _STATUS.findall(code) for k in groups if k}
    assert len(named) > 60, "the pattern finds the code's messages"
    assert named <= set(TEMPLATE), f"not in the template: {sorted(named - set(TEMPLATE))}"


def test_every_message_of_the_template_is_used():
    from tui.screens.keys import APP_KEYS, LESSON_KEYS, MAP_KEYS, WELCOME_KEYS
    from tui.screens.parts import StepView

    code = _code()
    used = set(_LITERAL.findall(code)) | {k for groups in _STATUS.findall(code) for k in groups if k}
    # messages the code builds from a name
    used |= {f"help.{k.action.partition(':')[0]}" for k in (*APP_KEYS, *LESSON_KEYS, *WELCOME_KEYS, *MAP_KEYS)}
    used |= {f"button.{a}" for a in (*StepView.BUTTONS, "run", "next", "previous")}
    used |= {f"limit.{name}" for name in ("memory", "pids", "cpu", "swap")} | {"check.cgroup.v1", "check.cgroup.v2"}
    used |= {f"map.status.{s}" for s in ("new", "started", "complete")}
    used |= {key for key in TEMPLATE if f'"{key}"' in code}
    used |= {f"{key}.one" for key in used if f"{key}.one" in TEMPLATE}       # tn(): one thing
    assert set(TEMPLATE) <= used, f"never used: {sorted(set(TEMPLATE) - used)}"


# -- reading .po files -----------------------------------------------------------------------

def test_parse_po_reads_escapes_continuations_flags_and_comments():
    entries = parse_po('''
# a translator's comment
#. where it shows
#, fuzzy, python-brace-format
msgctxt "k"
msgid ""
"two "
"lines\\n"
msgstr "\\"quoted\\" \\\\ {x}"

#~ msgid "old"
#~ msgstr "obsolete"
''')
    (e,) = entries
    assert (e.context, e.msgid, e.msgstr) == ("k", "two lines\n", '"quoted" \\ {x}')
    assert e.flags == {"fuzzy", "python-brace-format"} and e.comment == "where it shows"


@pytest.mark.parametrize("text, where", [
    ('msgid "a"\nmsgstr "b\\q"\n', "x.po:2"),
    ('msgid "a"\nmsgid_plural "as"\n', "x.po:2"),
    ('"dangling"\n', "x.po:1"),
    ('msgid "a\n', "x.po:1"),
])
def test_a_broken_po_file_is_reported_with_its_line(text, where):
    with pytest.raises(PoError, match=f"^{where}:"):
        parse_po(text, "x.po")


# -- the language ---------------------------------------------------------------------------

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
    assert set(LANGS) == {"en", "zh"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_counts_are_words_not_plural_marks(lang):
    """One thing is said in the singular; no "(s)" or "(es)" in what the app says."""
    from tui.i18n import tn
    from tui.widgets.strings import counted

    said = [tn(lang, "crash.cleaned", 1, names="web"), tn(lang, "crash.cleaned", 2, names="web, db"),
            tn(lang, "note.bad_course", 1, path="p", first="x"), tn(lang, "count.steps", 1),
            tn(lang, "count.checks", 1), tn(lang, "count.checks", 3),
            counted("ev.oom", lang, 1), counted("ev.pids-limit-hit", lang, 1), counted("ev.oom", lang, 4)]
    for text in said:
        assert "(s)" not in text and "(es)" not in text and "(zes)" not in text, text
    if lang == "en":
        assert said[3] == "1 step" and said[4] == "1 check" and said[5] == "3 checks"
        assert "the container it left was removed: web" in said[0] and "the 2 containers" in said[1]
        assert counted("ev.oom", lang, 1) == "out of memory: the kernel killed a process"
    for key in catalog(lang):
        assert not re.search(r"\w\((s|es|zes)\)", t(lang, key)), key             # "Show me (s)" is a key
