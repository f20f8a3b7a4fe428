"""What the course framework says to learners, in English and Chinese.

The words are in the package's gettext catalog, ``lessons/locale/``
(``container-lab.pot`` in English, ``zh.po``; the format, and how to add a
message: :mod:`engine.catalog`). The code asks for a message by its key
(:func:`msg`) and for a number with its noun by the noun (:func:`count`,
"1 lesson", "2 lessons", "2 课": gettext's plural forms). Commands, paths,
image names and flags are values, never part of a translation. Chinese
follows the project's terms -- 镜像、容器、命名空间、控制组、宿主机 -- with a space
between Chinese and Latin text and full-width punctuation.

Messages for instructors (``course check``) are English only: they name
files, keys and lines, not ideas.
"""

from __future__ import annotations

import os

from engine.catalog import Catalog
from engine.lang import LANGS

MESSAGES = Catalog(os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale"))


def __getattr__(name: str):
    """``CATALOG``: every message of each language, ``{lang: {key: text}}`` (a
    counted noun as ``n.<noun>.one`` and ``n.<noun>.other``) -- a fresh copy for
    tests and tools; the catalog is where the words are."""
    if name == "CATALOG":
        return {lang: catalog(lang) for lang in LANGS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def count(lang: str, n: int, noun: str) -> str:
    """``n`` and the noun, as the language counts it: "1 lesson", "2 lessons"; "2 课"."""
    return MESSAGES.plural(lang, f"n.{noun}", n).format(n=n)


def msg(lang: str, key: str, /, **values: object) -> str:
    """The message ``key`` in ``lang`` (English when the language is unknown)."""
    return MESSAGES.text(lang, key).format(**values)


def catalog(lang: str) -> dict[str, str]:
    """Every message in ``lang``, by key, as written (for tests and tools)."""
    return MESSAGES.table(lang)
