"""What each stage of a container's start does, in plain words (English and 中文).

``run --explain`` prints these beside the kernel operations and the shell
commands of the transcript (:class:`engine.transcript.Transcript`); the app's
step-through start shows the same texts. The words are in the engine's
gettext catalog, ``engine/locale/`` (see :mod:`engine.catalog`), two messages
a stage, by stage id::

    stage.<id>.title   its title, one line
    stage.<id>.text    what it does and why, a paragraph (wrapped to the terminal)

plus ``ui.*``, the few words around them. A new stage needs only its two
entries in ``container-lab.pot`` and ``zh.po``: :func:`stage_ids` and the
lookups here find it by its keys. Both languages hold exactly the same keys
(``tests/test_catalog.py`` checks it, and ``tests/test_explain.py`` that every
stage the runtime records is explained).
"""

from __future__ import annotations

import os

from .catalog import Catalog
from .lang import LANGS, detect

LANGUAGES = LANGS
MESSAGES = Catalog(os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale"))


def __getattr__(name: str):
    """``STAGES`` and ``UI``: the catalog seen as tables -- ``{id: {"en", "zh",
    "title.en", "title.zh"}}`` and ``{key: {"en", "zh"}}`` -- fresh copies for
    tests and tools; the catalog is where the words are."""
    if name == "STAGES":
        return {sid: {**{lang: stage_text(sid, lang) for lang in LANGS},
                      **{f"title.{lang}": stage_title({"id": sid}, lang) for lang in LANGS}} for sid in stage_ids()}
    if name == "UI":
        return {key[3:]: {lang: MESSAGES.text(lang, key) for lang in LANGS}
                for key in MESSAGES.template() if key.startswith("ui.")}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def language(explicit: str | None = None) -> str:
    """``explicit`` if given, else the locale's (:func:`engine.lang.detect`, as the app reads it)."""
    return explicit or detect()


def stage_ids() -> list[str]:
    """Every stage the catalog explains, in its order."""
    return [key[6:-5] for key in MESSAGES.template() if key.startswith("stage.") and key.endswith(".text")]


def stage_text(stage_id: str, lang: str) -> str:
    """The plain explanation of one stage."""
    if f"stage.{stage_id}.text" not in MESSAGES:
        return ui("other", lang)
    return MESSAGES.text(lang, f"stage.{stage_id}.text")


def stage_title(stage: dict, lang: str) -> str:
    """A stage's title in ``lang`` (the transcript's own, in English, as a fallback)."""
    stage_id = stage.get("id", "")
    if f"stage.{stage_id}.title" not in MESSAGES:
        return stage.get("title", "")
    return MESSAGES.text(lang, f"stage.{stage_id}.title")


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` terminal cells: Latin text breaks at spaces,
    Chinese between any two characters (each of which takes two cells)."""
    import unicodedata

    def cells(ch: str) -> int:
        return 2 if unicodedata.east_asian_width(ch) in "WF" else 1

    lines, line, used = [], "", 0
    for word in _words(text):
        size = sum(cells(ch) for ch in word)
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
            word = word.lstrip()
            size = sum(cells(ch) for ch in word)
        line += word
        used += size
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _words(text: str) -> list[str]:
    """Pieces that must not be split: a Latin word with its leading space, or one wide character."""
    import unicodedata

    out, cur = [], ""
    for ch in text:
        wide = unicodedata.east_asian_width(ch) in "WF"
        if wide or ch == " ":
            if cur:
                out.append(cur)
            cur = ""
            if wide:
                out.append(ch)
                continue
        cur += ch
    if cur:
        out.append(cur)
    return out


def ui(key: str, lang: str, **fields) -> str:
    """One of the words around the stages (``ui.<key>``), ``fields`` filled in."""
    return MESSAGES.text(lang, f"ui.{key}").format(**fields)


def kernel_call(op: dict) -> str:
    """One transcript operation as a kernel call, e.g. ``mount("overlay", "/...", "overlay", nodev, "lowerdir=...")``."""
    call = op.get("call", "?")
    if call == "mount":
        args = [op.get("source"), op.get("target"), op.get("fstype"), op.get("flags") or "0", op.get("data")]
        shown = [repr(a) if isinstance(a, str) and a != args[3] else ("NULL" if a is None else str(a)) for a in args]
        return f"mount({', '.join(shown)})"
    detail = []
    for key, value in op.items():
        if key in ("call", "shell") or value in (None, "", [], {}):
            continue
        if isinstance(value, list) and len(value) > 6:
            value = f"[{len(value)} items]"
        detail.append(f"{key}={value}")
    return f"{call}({', '.join(detail)})"
