"""Words of a Dockerfile as docker reads them: variables expanded and quotes
removed (:func:`expand`, docker's ``ProcessWord``), and an instruction's
arguments split into words with their quotes kept (:func:`split_words`,
docker's ``parseWords``) -- the first step of ``ENV``, ``LABEL`` and ``ARG``.

Expansion follows the shell subset docker implements: ``$NAME``,
``${NAME}``, ``${NAME:-word}`` / ``${NAME-word}`` (a default),
``${NAME:+word}`` / ``${NAME+word}`` (an alternative) and ``${NAME:?msg}`` /
``${NAME?msg}`` (an error); an unset variable expands to nothing. Single
quotes keep everything literal; inside double quotes the escape character
escapes only ``"``, ``$`` and itself; outside quotes it escapes any
character. The escape character is ``\\`` unless the Dockerfile's
``# escape=`` directive says `````.
"""

from __future__ import annotations

from collections.abc import Mapping


class WordError(ValueError):
    """A word that cannot be expanded (an unclosed quote or brace, ``${X:?}``)."""


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` with variables from ``env`` expanded and quotes removed."""
    out, i = _process(text, 0, env, escape, stop="")
    return out


def _process(text: str, i: int, env: Mapping[str, str], escape: str, stop: str) -> tuple[str, int]:
    """Read from ``i`` until ``stop`` (a character, or "" for the end); the
    result and the index after what was read (the stop character is not consumed)."""
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if stop and ch == stop:
            return "".join(out), i
        if ch == escape:
            if i + 1 < n:
                out.append(text[i + 1])
                i += 2
            else:
                out.append(ch)
                i += 1
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise WordError(f"unexpected end of statement while looking for matching single-quote in {text!r}")
            out.append(text[i + 1:end])
            i = end + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= n:
                    raise WordError(f"unexpected end of statement while looking for matching double-quote in {text!r}")
                ch = text[i]
                if ch == '"':
                    i += 1
                    break
                if ch == escape and i + 1 < n and text[i + 1] in ('"', "$", escape):
                    out.append(text[i + 1])
                    i += 2
                elif ch == "$":
                    value, i = _dollar(text, i, env, escape)
                    out.append(value)
                else:
                    out.append(ch)
                    i += 1
        elif ch == "$":
            value, i = _dollar(text, i, env, escape)
            out.append(value)
        else:
            out.append(ch)
            i += 1
    if stop:
        raise WordError(f"missing '{stop}' in {text!r}")
    return "".join(out), i


def _dollar(text: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand the ``$`` at ``i``; the value and the index after it."""
    n = len(text)
    i += 1
    if i >= n:
        return "$", i
    if text[i] == "{":
        i += 1
        start = i
        while i < n and _is_name_char(text[i]):
            i += 1
        name = text[start:i]
        if not name:
            raise WordError(f"bad substitution in {text!r}: a variable name is expected after '${{'")
        if i >= n:
            raise WordError(f"missing '}}' in {text!r}")
        if text[i] == "}":
            return env.get(name, ""), i + 1
        colon = text[i] == ":"
        if colon:
            i += 1
        if i >= n or text[i] not in "-+?":
            raise WordError(f"unsupported modifier in ${{{name}...}} in {text!r} (only :- :+ :? - + ?)")
        op = text[i]
        word, i = _process(text, i + 1, env, escape, stop="}")
        i += 1
        value = env.get(name)
        empty = value is None or (colon and value == "")
        if op == "-":
            return (word if empty else value), i
        if op == "+":
            return ("" if empty else word), i
        if empty:
            raise WordError(f"{name}: {word or 'is not set'}")
        return value, i
    if text[i].isdigit():
        return "", i + 1          # $1 ...: no positional parameters here
    if not (text[i].isalpha() or text[i] == "_"):
        return "$", i
    start = i
    while i < n and _is_name_char(text[i]):
        i += 1
    return env.get(text[start:i], ""), i


def split_words(rest: str, escape: str = "\\") -> list[str]:
    """``rest`` split at whitespace outside quotes; quotes and escapes are
    kept, for :func:`expand` to remove (docker's ``parseWords``)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if word or blank_ok:
                words.append("".join(word))
            word, blank_ok = [], False
            i += 1
            continue
        if ch in ("'", '"'):
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if word or blank_ok:
        words.append("".join(word))
    return words
