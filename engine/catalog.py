"""Every word container-lab shows, in English and Chinese: gettext catalogs, read at run time.

One format for all of them, the one translators' tools speak: a gettext
template (``.pot``) with the English and one ``.po`` file per language, one
pair for each package, beside its code:

- ``engine/locale/``       -- ``run --explain``: each stage of a container's start
- ``lessons/locale/``      -- the course framework: checks, commands, ``course solve``
- ``tui/locale/``          -- the app around the lessons: screens, keys, dialogs
- ``tui/widgets/locale/``  -- the lab panel and the terminal (pure models, used without the app)

Each holds ``container-lab.pot`` (every message, in English) and ``zh.po``
(its Chinese). A :class:`Catalog` reads one such folder: each ``.po`` is
parsed and checked here, compiled to gettext's binary form in memory and read
by the standard library (:class:`gettext.GNUTranslations`), so there is no
build step and no ``.mo`` file to go stale. ``fuzzy`` and empty translations
fall back to English, as gettext does; so does a language with no ``.po``.

**Keys.** The code asks for a message by a short, stable key, written as the
entry's ``msgctxt`` (``stage.rootfs.text``, ``lab.empty``); the English is the
``msgid``. A key, not the English, because many texts are paragraphs, because
one English word may need two translations (``status.running`` is 运行中 in
the panel's list), and so that rewording the English never touches the code.
The English stays in ``msgid`` all the same, so each file is an ordinary
gettext catalog: Poedit or Lokalize show the English beside the Chinese,
``msgfmt --check`` validates it, ``msgmerge`` updates it, and a translation
made for an older English (``zh.po``'s ``msgid`` no longer the template's) is
caught by ``tests/test_catalog.py``. To reword the English, change the
``msgid`` in both files and revise the Chinese.

**Placeholders** are ``str.format`` fields, ``{name}``; an entry with any is
flagged ``python-brace-format`` (so ``msgfmt --check`` compares them too).
Commands, paths and flags are never part of a message: they are the same in
every language, so they stay in the code or go in as values.

**Counting.** A number and its noun -- "1 lesson", "2 lessons", "2 课" -- is
a gettext plural entry (``msgid_plural``, ``msgstr[N]``, the ``Plural-Forms``
header), read with :meth:`Catalog.plural` (``npgettext``), so a language with
three forms can have them. A sentence that says *one* thing in other words
("One process." / 只有 1 个进程。) is a message of its own, ``<key>.one``.

**Strict.** :func:`read` refuses a broken file with :class:`PoError` naming
``file:line``: bad syntax or escapes, an entry without ``msgstr``, a key twice,
a missing key (``msgctxt``), no UTF-8 header, a plural entry with the wrong
number of forms or without ``Plural-Forms``, a translation whose
``{placeholders}`` differ from the English, English left in a template's
``msgstr``, a translation that begins or ends with a newline where the
English does not -- ``msgfmt --check``'s checks that apply to these files, and ours.

Adding a message: an entry in the folder's ``container-lab.pot``::

    #. where it shows, for the translator
    #, python-brace-format
    msgctxt "lab.unreachable"
    msgid "The engine cannot be reached: {error}"
    msgstr ""

and the same entry in ``zh.po`` with its ``msgstr``. ``tests/test_catalog.py``
checks that both files hold the same keys, that every key the code names
exists and that every key is used.

Adding a stage of ``run --explain`` (a ``network`` stage, say): two entries in
``engine/locale/container-lab.pot`` and ``zh.po``, nothing in the code --
:mod:`engine.explain` finds the stages by their keys::

    msgctxt "stage.network.title"   -- one line, "Connect the container to a network"
    msgctxt "stage.network.text"    -- a paragraph: what it does and why

Adding a language: ``msginit -i container-lab.pot -l fr -o fr.po`` in each
``locale/`` folder, translate, and add ``fr`` to :data:`engine.lang.LANGS` (and
to :func:`engine.lang.detect`, the one place a locale is read).

Chinese is written, not translated word for word: 容器 container, 镜像 image,
命名空间 namespace, 控制组 cgroup, 宿主机 host, 联合文件系统 union filesystem;
a space between Chinese and Latin text, full-width punctuation in Chinese
sentences.

Standard library only (``engine`` imports nothing of ours beyond itself), and
light: :mod:`gettext` is imported on the first lookup, so a module may make
its :class:`Catalog` at import time and ``container-lab run`` pays nothing
for it unless a message is asked for (``run --explain``).
"""

from __future__ import annotations

import os
from collections import namedtuple

from .lang import DEFAULT, LANGS

TEMPLATE = "container-lab.pot"
"""The English template's file name in every ``locale/`` folder (its gettext domain is ``container-lab``)."""

Entry = namedtuple("Entry", "context msgid msgstr flags comment line plural forms",
                   defaults=(frozenset(), "", 0, "", ()))
Entry.__doc__ = """One message of a ``.po``/``.pot`` file: ``context`` (its key), ``msgid`` (the English),
``msgstr`` (the translation; a plural entry's first form), ``flags`` (``#,``), ``comment`` (``#.``),
``line`` (where it starts), and for a plural entry ``plural`` (``msgid_plural``) and ``forms`` (``msgstr[N]``)."""


class PoError(ValueError):
    """A ``.po`` file that cannot be used; the message names ``file:line``."""


# -- reading -------------------------------------------------------------------------------

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
    """The entries of a ``.po`` file, in order (the header entry, ``msgid ""``,
    included; obsolete ``#~`` entries left out). Only the syntax is checked
    here; :func:`check` checks the content."""
    entries: list[Entry] = []
    fields: dict[str, str] = {}          # msgctxt, msgid, msgid_plural, msgstr
    forms: list[str] = []                # msgstr[0], msgstr[1], ...
    flags: set[str] = set()
    comments: list[str] = []
    current: str | int | None = None     # where a continued string goes: a field, or a form's index
    start = last = 0

    def flush() -> None:
        nonlocal current
        if fields:
            if "msgid" not in fields:
                raise PoError(f"{name}:{last}: an entry without msgid")
            if "msgid_plural" in fields and not forms:
                raise PoError(f"{name}:{last}: msgid_plural without msgstr[0]")
            if "msgid_plural" not in fields and "msgstr" not in fields:
                raise PoError(f"{name}:{last}: msgid {fields['msgid']!r} without msgstr")
            entries.append(Entry(fields.get("msgctxt", ""), fields["msgid"], forms[0] if forms else fields["msgstr"],
                                 frozenset(flags), "\n".join(comments), start, fields.get("msgid_plural", ""),
                                 tuple(forms)))
        fields.clear()
        forms.clear()
        flags.clear()
        comments.clear()
        current = None

    def done() -> bool:
        """The entry being read has its translation: what comes next starts another."""
        return "msgstr" in fields or bool(forms)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if done():
                flush()
            elif fields:
                raise PoError(f"{where}: a comment inside an entry (msgstr expected)")
            if line.startswith("#,"):
                flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            elif line.startswith("#."):
                comments.append(line[2:].strip())
            continue
        if line.startswith('"'):
            if current is None:
                raise PoError(f"{where}: a string continues nothing")
            if isinstance(current, int):
                forms[current] += _unquote(line, where)
            else:
                fields[current] += _unquote(line, where)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid"):
            if done():
                flush()
            if keyword in fields or (keyword == "msgctxt" and "msgid" in fields):
                raise PoError(f"{where}: {keyword} where msgstr was expected")
        elif keyword == "msgid_plural":
            if "msgid" not in fields or "msgid_plural" in fields or done():
                raise PoError(f"{where}: msgid_plural belongs right after a msgid")
        elif keyword == "msgstr":
            if "msgid" not in fields or done():
                raise PoError(f"{where}: msgstr belongs right after a msgid")
            if "msgid_plural" in fields:
                raise PoError(f"{where}: a plural entry needs msgstr[0], msgstr[1] ..., not msgstr")
        elif keyword.startswith("msgstr[") and keyword.endswith("]"):
            if "msgid_plural" not in fields or "msgstr" in fields:
                raise PoError(f"{where}: {keyword} without msgid_plural")
            if keyword != f"msgstr[{len(forms)}]":
                raise PoError(f"{where}: {keyword} out of order (msgstr[{len(forms)}] expected)")
            forms.append(_unquote(rest, where))
            current, last = len(forms) - 1, number
            continue
        else:
            raise PoError(f"{where}: unknown keyword {keyword!r}")
        if not fields:
            start = number
        fields[keyword] = _unquote(rest, where)
        current, last = keyword, number
    flush()
    return entries


def header(entries: list[Entry]) -> dict[str, str]:
    """The header entry's fields (``Content-Type``, ``Plural-Forms`` ...), by name."""
    for e in entries:
        if not e.msgid and not e.context:
            return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in e.msgstr.splitlines()) if k}
    return {}


def _placeholders(text: str, where: str) -> set[str]:
    import string

    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as e:
        raise PoError(f"{where}: {e} in {text!r} (a literal brace is written {{{{ or }}}})") from None


def check(entries: list[Entry], name: str = "<po>", *, template: bool = False) -> None:
    """Refuse, with :class:`PoError`, what ``msgfmt --check`` would, and what
    the code could not use: see the module's docstring. ``template``: the
    ``.pot`` (English in ``msgid``, every ``msgstr`` empty)."""
    if not entries or entries[0].msgid or entries[0].context:
        raise PoError(f"{name}:1: the file must open with its header entry (msgid \"\")")
    head = header(entries)
    if "charset=utf-8" not in head.get("Content-Type", "").lower().replace(" ", ""):
        raise PoError(f"{name}:{entries[0].line}: the header must say Content-Type: text/plain; charset=UTF-8")
    nplurals = None
    if not template and any(e.plural for e in entries):
        nplurals = _plural_forms(head.get("Plural-Forms", ""), f"{name}:{entries[0].line}")
    seen: dict[str, int] = {}
    for e in entries[1:]:
        where = f"{name}:{e.line}"
        if not e.msgid:
            raise PoError(f"{where}: an empty msgid (only the header has one)")
        if not e.context:
            raise PoError(f"{where}: msgid {e.msgid!r} has no msgctxt: the code asks for messages by it")
        if e.context in seen:
            raise PoError(f"{where}: msgctxt {e.context!r} again (first at line {seen[e.context]})")
        seen[e.context] = e.line
        english = _placeholders(e.plural or e.msgid, where)
        if _placeholders(e.msgid, where) - english:
            raise PoError(f"{where}: {e.context}: msgid_plural lacks a placeholder of msgid")
        if english and "python-brace-format" not in e.flags:
            raise PoError(f"{where}: {e.context} has {{placeholders}}: flag it '#, python-brace-format'")
        translations = e.forms or (e.msgstr,)
        if template:
            if any(translations):
                raise PoError(f"{where}: {e.context}: a template's msgstr stays empty (the English is the msgid)")
            continue
        if not any(translations) or "fuzzy" in e.flags:
            continue                                     # untranslated: English is shown
        if e.plural and len(e.forms) != nplurals:
            raise PoError(f"{where}: {e.context} has {len(e.forms)} plural forms, Plural-Forms says {nplurals}")
        for text in translations:
            if (text.startswith("\n"), text.endswith("\n")) != (e.msgid.startswith("\n"), e.msgid.endswith("\n")):
                raise PoError(f"{where}: {e.context}: the translation must begin and end with a newline "
                              "exactly where the English does")
            if _placeholders(text, where) != english:
                raise PoError(f"{where}: {e.context}: the translation's placeholders "
                              f"{sorted(_placeholders(text, where))} are not the English's {sorted(english)}")


def _plural_forms(value: str, where: str) -> int:
    """``nplurals`` of a ``Plural-Forms`` header, its expression checked by gettext's own reader."""
    import gettext

    parts = dict(p.strip().partition("=")[::2] for p in value.split(";") if p.strip())
    try:
        nplurals = int(parts["nplurals"])
        gettext.c2py(parts["plural"])
    except (KeyError, ValueError) as e:
        raise PoError(f"{where}: plural entries need a header 'Plural-Forms: nplurals=N; plural=EXPRESSION;' "
                      f"({value!r}: {e})") from None
    if nplurals < 1:
        raise PoError(f"{where}: Plural-Forms: nplurals must be at least 1")
    return nplurals


def read(path: str | os.PathLike, *, template: bool | None = None) -> list[Entry]:
    """The entries of the ``.po`` or ``.pot`` file at ``path``, parsed and checked."""
    path = os.fspath(path)
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        entries = parse_po(f.read(), name)
    check(entries, name, template=path.endswith(".pot") if template is None else template)
    return entries


def compile_mo(entries: list[Entry]) -> bytes:
    """gettext's binary ``.mo`` form of ``entries`` (what ``msgfmt`` writes):
    fuzzy and untranslated entries left out, contexts joined with EOT, plural
    forms with NUL."""
    import struct

    pairs = {}
    for e in entries:
        translations = e.forms or (e.msgstr,)
        if e.msgid and (not all(translations) or "fuzzy" in e.flags):
            continue
        key = f"{e.context}\x04{e.msgid}" if e.context else e.msgid
        if e.plural:
            key += f"\0{e.plural}"
        pairs[key.encode("utf-8")] = "\0".join(translations).encode("utf-8")
    if b"" not in pairs:
        pairs[b""] = b"Content-Type: text/plain; charset=UTF-8\n"
    keys = sorted(pairs)
    header_size = 7 * 4
    table_size = len(keys) * 8
    offset = header_size + 2 * table_size
    originals, translated, blob = [], [], b""
    for key in keys:
        originals.append((len(key), offset + len(blob)))
        blob += key + b"\0"
    for key in keys:
        value = pairs[key]
        translated.append((len(value), offset + len(blob)))
        blob += value + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), header_size, header_size + table_size, 0, 0)
    out += b"".join(struct.pack("<2I", n, o) for n, o in originals)
    out += b"".join(struct.pack("<2I", n, o) for n, o in translated)
    return out + blob


# -- one package's messages -----------------------------------------------------------------

class Catalog:
    """The messages of one ``locale/`` folder: English from its template, the
    other languages from ``<lang>.po``; each file read on first use."""

    def __init__(self, locale_dir: str | os.PathLike):
        self.locale_dir = os.fspath(locale_dir)
        self._template: dict[str, Entry] | None = None
        self._translations: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"Catalog({self.locale_dir!r})"

    def template(self) -> dict[str, Entry]:
        """The template's messages by key, in the file's order (the English is their ``msgid``)."""
        if self._template is None:
            entries = read(os.path.join(self.locale_dir, TEMPLATE), template=True)
            self._template = {e.context: e for e in entries if e.context}
        return self._template

    def __contains__(self, key: str) -> bool:
        return key in self.template()

    def _entry(self, key: str) -> Entry:
        try:
            return self.template()[key]
        except KeyError:
            raise KeyError(f"no message {key!r} in {os.path.join(self.locale_dir, TEMPLATE)}") from None

    def translations(self, lang: str):
        """The standard library's gettext object for ``lang`` (English, or a
        language without a ``.po``: :class:`gettext.NullTranslations`, the English itself)."""
        found = self._translations.get(lang)
        if found is None:
            import gettext
            import io

            path = os.path.join(self.locale_dir, f"{lang}.po")
            if lang == DEFAULT or lang not in LANGS or not os.path.exists(path):
                found = gettext.NullTranslations()
            else:
                found = gettext.GNUTranslations(io.BytesIO(compile_mo(read(path, template=False))))
            self._translations[lang] = found
        return found

    def text(self, lang: str, key: str) -> str:
        """Message ``key`` in ``lang``, as written (``{placeholders}`` not filled)."""
        entry = self._entry(key)
        if entry.plural:
            raise TypeError(f"{key!r} counts something: ask for it with plural()")
        return self.translations(lang).pgettext(key, entry.msgid)

    def plural(self, lang: str, key: str, n: int) -> str:
        """Plural message ``key`` in ``lang``, in the form for ``n`` things (``npgettext``)."""
        entry = self._entry(key)
        if not entry.plural:
            raise TypeError(f"{key!r} has no plural forms: ask for it with text()")
        return self.translations(lang).npgettext(key, entry.msgid, entry.plural, n)

    def __call__(self, lang: str, key: str, /, **values: object) -> str:
        """Message ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
        text = self.text(lang, key)
        return text.format(**values) if values else text

    def table(self, lang: str) -> dict[str, str]:
        """Every message in ``lang`` as written, by key (for tests and tools); a
        plural entry as ``<key>.one`` and ``<key>.other``, its forms for 1 and for 2."""
        out = {}
        for key, entry in self.template().items():
            if entry.plural:
                out[f"{key}.one"] = self.plural(lang, key, 1)
                out[f"{key}.other"] = self.plural(lang, key, 2)
            else:
                out[key] = self.text(lang, key)
        return out
