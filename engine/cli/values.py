"""Converters for argument values (sizes, limits, signals, KEY=VALUE pairs), and
the CONTAINER... argument several verbs share.

They raise ``argparse.ArgumentTypeError``, which argparse turns into its
usage error, but do not import argparse themselves: ``run``'s fast path
(:mod:`.fastrun`) uses them without it, and falls back to argparse on any error.
"""

from __future__ import annotations

from .. import errors


def _bad(message: str) -> Exception:
    import argparse

    return argparse.ArgumentTypeError(message)


def _size(text: str) -> int:
    from ..spec import parse_size
    try:
        return parse_size(text)
    except errors.InvalidArgument as e:
        raise _bad(str(e)) from None


def _memory(text: str) -> int | None:
    return None if text in ("0", "-1") else _size(text)


def _swap(text: str) -> int:
    return -1 if text == "-1" else _size(text)


def _pids(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        raise _bad(f"invalid pids limit: '{text}'") from None
    return None if value in (0, -1) else value


def _cpus(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"invalid cpus value: '{text}'") from None
    return value            # 0: no CPU limit (docker's meaning), sent as such: a seat's policy refuses it


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key:
        raise _bad(f"invalid label '{text}': expected KEY=VALUE")
    return key, value


def _signal_arg(text: str) -> int:
    import signal as _signal
    name = text.upper()
    if name.isdigit():
        return int(name)        # the supervisor says whether it is a signal (as docker's daemon does)
    name = name if name.startswith("SIG") else "SIG" + name
    value = getattr(_signal, name, None)
    if not isinstance(value, _signal.Signals):
        raise _bad(f"invalid signal: {text}")
    return int(value)


def _filter_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise _bad(f"bad format of filter (expected name=value): {text}")
    return key.lower(), value


def _containers_arg(p) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER", help="container name or id (a unique prefix will do)")
