"""Small formatters every tab uses: bytes, times, sentences, ids, a command line."""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import lru_cache


def human_bytes(n: int | float | None) -> str:
    """1536 -> "1.5 KiB"; None -> "?"."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"


def clock(t: float | str | None) -> str:
    """An epoch time or an RFC 3339 time as local HH:MM:SS ("" if unknown)."""
    if t is None or t == "":
        return ""
    if isinstance(t, str):
        try:
            from engine.events import parse_time
            t = parse_time(t)
        except Exception:  # noqa: BLE001 - a malformed time shows as nothing
            return ""
    return time.strftime("%H:%M:%S", time.localtime(t))


def sentences(lang: str, *parts: str) -> str:
    """Sentences one after another: with a space in English, none after a Chinese "。"."""
    return ("" if lang == "zh" else " ").join(p for p in parts if p)


def short_id(text: str, n: int = 12) -> str:
    return text[:n]


def command_text(argv: Iterable[str] | None) -> str:
    """argv as one line, arguments with spaces quoted."""
    return _command_text(tuple(argv or ()))


@lru_cache(maxsize=4096)
def _command_text(argv: tuple[str, ...]) -> str:
    import shlex
    return " ".join(shlex.quote(a) if a and not a.startswith("[") else a for a in argv)
