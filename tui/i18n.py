"""The app's own words, in English and Chinese: gettext catalogs, read at start.

Lesson prose lives with the lessons (``content/``) and the lab panel's words
with its widgets (``tui/widgets/strings.py``); this module holds the strings
of the app around them, in the standard form translators work with:

- ``tui/locale/container-lab.pot`` -- the template: every message, in English,
  with a ``msgctxt`` naming it (``lesson.key.run``) and a ``#.`` comment
  saying where it shows. The English there *is* the app's English.
- ``tui/locale/zh.po`` -- the Chinese translation of that template.

A translator opens ``zh.po`` in Poedit, Lokalize or any editor; a new
language starts with ``msginit -i container-lab.pot -l fr -o fr.po`` (and
its code in :data:`LANGS`). ``msgfmt --check`` validates a file as usual.
At start the app compiles each ``.po`` into gettext's binary form in memory
and reads it with the standard library (:class:`gettext.GNUTranslations`),
so no build step is needed and no ``.mo`` file can go stale. ``fuzzy`` or
empty entries fall back to English, as gettext does.

``tests/test_app_i18n.py`` holds the catalogs in parity: every message of
the template translated, none extra, none stale (a translation made for an
older English ``msgid``), the same ``{placeholders}``.

Chinese is written, not translated word for word: 容器 container, 镜像 image,
命名空间 namespace, 控制组 cgroup, 宿主机 host; a space between Chinese and Latin
text, full-width punctuation in Chinese sentences. Commands, paths and flags
never go into a catalog: they are the same in every language and stay in the
code, so no translation can break one.

No Textual here: the launcher's one-line notes use this module too.
"""

from __future__ import annotations

import gettext
import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
DOMAIN = "container-lab"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@dataclass(frozen=True)
class Entry:
    """One message of a ``.po``/``.pot`` file."""

    context: str
    msgid: str
    msgstr: str
    flags: frozenset[str] = frozenset()
    comment: str = ""
    line: int = 0


class PoError(ValueError):
    """A ``.po`` file gettext could not read; the message names file:line."""


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise PoError(f"{where}: expected a quoted string, got {text!r}")
    out, body, i = [], text[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPES:
                raise PoError(f"{where}: unknown escape in {text!r}")
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        elif ch == '"':
            raise PoError(f"{where}: unescaped quote in {text!r}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_po(text: str, name: str = "<po>") -> list[Entry]:
    """The entries of a ``.po`` file (the header entry, ``msgid ""``, included;
    obsolete ``#~`` entries left out). Plural forms are not used by this app."""
    entries: list[Entry] = []
    fields: dict[str, str] = {}
    flags: set[str] = set()
    comments: list[str] = []
    current: str | None = None
    start = 0

    def flush() -> None:
        nonlocal current
        if "msgid" in fields:
            entries.append(Entry(fields.get("msgctxt", ""), fields["msgid"], fields.get("msgstr", ""),
                                 frozenset(flags), "\n".join(comments), start))
        elif fields:
            raise PoError(f"{name}:{start}: an entry without msgid")
        fields.clear()
        flags.clear()
        comments.clear()
        current = None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if "msgid" in fields and current == "msgstr":
                flush()
            if line.startswith("#~"):
                continue
            if line.startswith("#,"):
                flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            elif line.startswith("#."):
                comments.append(line[2:].strip())
            continue
        if line.startswith('"'):
            if current is None:
                raise PoError(f"{where}: a string continues nothing")
            fields[current] += _unquote(line, where)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword not in ("msgctxt", "msgid", "msgstr"):
            raise PoError(f"{where}: unknown keyword {keyword!r}"
                          + (" (plural forms are not used here)" if keyword.startswith("msg") else ""))
        if keyword in ("msgctxt", "msgid") and ("msgstr" in fields or keyword in fields):
            flush()
        if not fields:
            start = number
        if keyword in fields:
            raise PoError(f"{where}: a second {keyword} in one entry")
        fields[keyword] = _unquote(rest, where)
        current = keyword
    flush()
    return entries


def compile_mo(entries: list[Entry]) -> bytes:
    """gettext's binary ``.mo`` form of ``entries`` (what ``msgfmt`` writes):
    fuzzy and untranslated entries left out, contexts joined with EOT."""
    pairs = {}
    for e in entries:
        if e.msgid and (not e.msgstr or "fuzzy" in e.flags):
            continue
        key = f"{e.context}\x04{e.msgid}" if e.context else e.msgid
        pairs[key.encode("utf-8")] = e.msgstr.encode("utf-8")
    if b"" not in pairs:
        pairs[b""] = b"Content-Type: text/plain; charset=UTF-8\n"
    keys = sorted(pairs)
    header_size = 7 * 4
    table_size = len(keys) * 8
    offset = header_size + 2 * table_size
    originals, translations, blob = [], [], b""
    for key in keys:
        originals.append((len(key), offset + len(blob)))
        blob += key + b"\0"
    for key in keys:
        value = pairs[key]
        translations.append((len(value), offset + len(blob)))
        blob += value + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), header_size, header_size + table_size, 0, 0)
    out += b"".join(struct.pack("<2I", n, o) for n, o in originals)
    out += b"".join(struct.pack("<2I", n, o) for n, o in translations)
    return out + blob


def _read(path: Path) -> list[Entry]:
    return parse_po(path.read_text(encoding="utf-8"), path.name)


@cache
def template() -> dict[str, Entry]:
    """The template's messages by context (the English text is their ``msgid``)."""
    return {e.context: e for e in _read(LOCALE_DIR / f"{DOMAIN}.pot") if e.context}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The stdlib gettext object for ``lang`` (English: the template itself)."""
    if lang == DEFAULT_LANG:
        return gettext.NullTranslations()
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGS)}")
    return gettext.GNUTranslations(io.BytesIO(compile_mo(_read(LOCALE_DIR / f"{lang}.po"))))


def t(lang: str, key: str, /, **values: object) -> str:
    """The text for message ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    english = template()[key].msgid
    text = translations(lang).pgettext(key, english)
    return text.format(**values) if values else text


def tn(lang: str, key: str, count: int, /, **values: object) -> str:
    """``key`` for ``count`` things: ``key.one`` when there is one (and the template has it)."""
    return t(lang, f"{key}.one" if count == 1 and f"{key}.one" in template() else key, count=count, **values)


def catalog(lang: str) -> dict[str, str]:
    """Every message in ``lang``, by key (for tests and tools)."""
    return {key: t(lang, key) for key in template()}


def other(lang: str) -> str:
    """The language that F2 switches to from ``lang``."""
    return LANGS[(LANGS.index(lang) + 1) % len(LANGS)] if lang in LANGS else DEFAULT_LANG


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """``zh`` when the locale asks for Chinese, else ``en``: the engine's
    one detector (:func:`engine.lang.detect`), so the app and ``run --explain``
    never disagree."""
    from engine.lang import detect

    return detect(environ)
