"""The app's own words, in English and Chinese: the ``tui`` package's gettext catalog.

Lesson prose lives with the lessons (``content/``), the course framework's
words in ``lessons/locale`` and the lab panel's in ``tui/widgets/locale``;
this module reads the strings of the app around them:

- ``tui/locale/container-lab.pot`` -- the template: every message, in English,
  with a ``msgctxt`` naming it (``lesson.key.run``) and a ``#.`` comment
  saying where it shows. The English there *is* the app's English.
- ``tui/locale/zh.po`` -- the Chinese translation of that template.

The format, the reader and how to add a message or a language:
:mod:`engine.catalog`. ``tests/test_app_i18n.py`` and ``tests/test_catalog.py``
hold the catalogs in parity: every message of the template translated, none
extra, none stale (a translation made for an older English ``msgid``), the
same ``{placeholders}``, every message the code names present.

No Textual here: the launcher's one-line notes use this module too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.catalog import Catalog, Entry, PoError, compile_mo, parse_po
from engine.lang import DEFAULT as DEFAULT_LANG
from engine.lang import LANGS

__all__ = ["DEFAULT_LANG", "LANGS", "LOCALE_DIR", "MESSAGES", "Entry", "PoError", "catalog", "compile_mo",
           "detect_language", "other", "parse_po", "t", "template", "tn", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
MESSAGES = Catalog(LOCALE_DIR)


def template() -> dict[str, Entry]:
    """The template's messages by context (the English text is their ``msgid``)."""
    return MESSAGES.template()


def translations(lang: str):
    """The stdlib gettext object for ``lang`` (English: the template itself)."""
    return MESSAGES.translations(lang)


def t(lang: str, key: str, /, **values: object) -> str:
    """The text for message ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    return MESSAGES(lang, key, **values)


def tn(lang: str, key: str, count: int, /, **values: object) -> str:
    """``key`` for ``count`` things: ``key.one`` when there is one (and the template has it)."""
    return t(lang, f"{key}.one" if count == 1 and f"{key}.one" in MESSAGES else key, count=count, **values)


def catalog(lang: str) -> dict[str, str]:
    """Every message in ``lang``, by key (for tests and tools)."""
    return MESSAGES.table(lang)


def other(lang: str) -> str:
    """The language that F2 switches to from ``lang``."""
    return LANGS[(LANGS.index(lang) + 1) % len(LANGS)] if lang in LANGS else DEFAULT_LANG


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """``zh`` when the locale asks for Chinese, else ``en``: the engine's
    one detector (:func:`engine.lang.detect`), so the app and ``run --explain``
    never disagree."""
    from engine.lang import detect

    return detect(environ)
