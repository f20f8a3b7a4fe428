"""Output helpers shared by the verbs: warnings, exit reports, per-container
errors, tables."""

from __future__ import annotations

import os
import sys

from .. import errors
from . import PROG


def _warn(warnings: list[str]) -> None:
    """Limits that could not be applied are said out loud, never pretended."""
    for line in warnings:
        print(f"WARNING: {line}", file=sys.stderr)


def _report_exit(result: dict) -> int:
    if result.get("error"):
        print(f"{PROG}: {result['error']}", file=sys.stderr)
    return int(result["exit_code"])


def _each(refs, action) -> int:
    """Apply ``action`` to every container named; report errors one line each (docker's way)."""
    code = 0
    for ref in refs:
        try:
            action(ref)
            print(ref)
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    return code


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(1).columns
    except OSError:
        return 100

