"""The words of the lab panel and the terminal, in English and Chinese.

They are in this package's gettext catalog, ``tui/widgets/locale/``
(``container-lab.pot`` in English, ``zh.po``; the format, and how to add a
message: :mod:`engine.catalog`), apart from the app's own (``tui/locale``)
because these widgets are pure models, used without the app. Commands, paths
and flags stay out of it: they are the same in every language.

Chinese is written as a native technical writer would: 进程, 命名空间, 挂载点,
宿主机, 镜像层, 可写层; a space between Chinese and Latin text.

No Textual here: the pure models (:mod:`tui.widgets.lab_model`) use it too.
"""

from __future__ import annotations

import os

from engine.catalog import Catalog
from engine.lang import LANGS

MESSAGES = Catalog(os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale"))


def __getattr__(name: str):
    """``STRINGS``: the catalog as a table, ``{key: {"en": ..., "zh": ...}}`` --
    a fresh copy for tests and tools; the catalog is where the words are."""
    if name == "STRINGS":
        tables = {lang: catalog(lang) for lang in LANGS}
        return {key: {lang: tables[lang][key] for lang in LANGS} for key in tables[LANGS[0]]}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tr(key: str, lang: str, /, **fields) -> str:
    """``key`` in ``lang`` (English when the language is unknown), ``fields`` filled in."""
    text = MESSAGES.text(lang, key)
    return text.format(**fields) if fields else text


def counted(key: str, lang: str, count: int, /, **fields) -> str:
    """``key`` for ``count`` things: ``key.one`` when there is one (and the catalog has it)."""
    return tr(f"{key}.one" if count == 1 and f"{key}.one" in MESSAGES else key, lang, count=count, **fields)


def catalog(lang: str) -> dict[str, str]:
    """The strings of one language, flat: ``{key: text}``."""
    return MESSAGES.table(lang)
