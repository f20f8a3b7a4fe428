"""Line breaks for Chinese: between any two Han characters, as Chinese text breaks.

Textual (``textual._wrap``) and Rich (``rich._wrap``) wrap text at spaces
only. Chinese has none inside a sentence, so a paragraph that mixes in a
command (``你运行 docker 命令，实验面板显示……``) is one long "word" after the
space: it jumps whole to the next line and leaves the line before half
empty. :func:`install` teaches both wrappers that a line may also break
between Han characters -- never before closing punctuation (，。、；：！？）」』》)
nor after opening punctuation (（「『《), the basic rule of Chinese line
breaking -- and changes nothing for text without Han characters.

Both libraries also break at a no-break space (their patterns take it for a space);
here it holds, as it should: the app writes a code span's spaces as no-break
spaces (``tui.screens.lesson_text.code_content``), so ``ps -ef`` stays on one line.

It replaces one regular expression in each library (their word splitter),
checking first that the module still has it, as the pattern it was written
against (:data:`EXPECTED`); if a new version changed that, nothing is replaced
and Chinese wraps as before. pyproject.toml pins the newest versions this was
tested with; :func:`moved` says in one line what changed (a test fails with
it), and ``tests/test_app_screens.py`` checks the effect.
"""

from __future__ import annotations

import re

_HAN = "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CLOSE = "，。、；：！？）」』》〉】〕”’…—～%,.;:!?)\\]}"
_OPEN = "（「『《〈【〔“‘"
# Where a line may break: the white space Python's \s matches, except the no-break spaces
# (U+00A0, U+2007, U+202F).
_SP = "\t\n\x0b\x0c\r\x1c-\x1f \x85\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"
# A "word" a line may break after: one Han character (with the punctuation that
# must stay with it), or a run of anything else up to the next Han character or space.
_WORD = (rf"[{_OPEN}]*[{_HAN}][{_CLOSE}]*"
         rf"|[{_OPEN}]*[^{_SP}{_HAN}]+?(?=[{_OPEN}]*[{_HAN}]|[{_SP}]|$)[{_CLOSE}]*")
TEXTUAL_CHUNK = re.compile(rf"(?:{_WORD})[{_SP}]*|[{_SP}]+")     # was: \S+\s*|\s+
RICH_WORD = re.compile(rf"[{_SP}]*(?:{_WORD})[{_SP}]*")           # was: \s*\S+\s*

# The private patterns replaced, as the tested versions have them (textual 8.2.8, rich 15.0.0).
EXPECTED = {("textual._wrap", "re_chunk"): r"\S+\s*|\s+", ("rich._wrap", "re_word"): r"\s*\S+\s*"}

_saved: tuple | None = None


def moved() -> str | None:
    """What of the private API :func:`install` patches is no longer as it was tested
    (one line, naming the module, the name and the installed version), or None."""
    import importlib

    def version(package: str) -> str:
        from importlib.metadata import version
        return version(package)

    for (module, name), pattern in EXPECTED.items():
        package = module.split(".")[0]
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            return f"{module} is gone in {package} {version(package)}: tui.text.cjk cannot break Chinese lines"
        if not isinstance(found, re.Pattern):
            return f"{module}.{name} is gone in {package} {version(package)}: tui.text.cjk cannot break Chinese lines"
        if found.pattern != pattern:
            return (f"{module}.{name} is now {found.pattern!r} in {package} {version(package)} "
                    f"(tui.text.cjk was written against {pattern!r})")
    return None


def install() -> bool:
    """Break Chinese lines between characters in Textual and Rich; True when done.
    The app installs it while it runs (:func:`uninstall` when it ends), so other
    Textual apps in the same process -- tests -- see the libraries as they are."""
    global _saved
    import rich._wrap
    import textual._wrap

    if _saved is not None:
        return True
    if moved() is not None:
        return False
    _saved = (textual._wrap.re_chunk, rich._wrap.re_word)
    textual._wrap.re_chunk = TEXTUAL_CHUNK
    rich._wrap.re_word = RICH_WORD
    return True


def uninstall() -> None:
    """Put the libraries' own word splitters back."""
    global _saved
    import rich._wrap
    import textual._wrap

    if _saved is not None:
        textual._wrap.re_chunk, rich._wrap.re_word = _saved
        _saved = None
