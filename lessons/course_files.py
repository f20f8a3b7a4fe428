"""What every reader of a course's files shares: what an id and a lesson
folder's name look like, a path as a problem names it, and TOML read with
the line of each thing (tomllib gives values, not positions).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .model import Problem

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FOLDER_RE = re.compile(r"^(\d+)-([a-z0-9][a-z0-9-]*)$")


def rel_path(path: Path, root: Path) -> str:
    """``path`` as a problem names it: from the course's folder on (``course/01-x/en.md``)."""
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


# -- TOML, with line numbers for what tomllib does not locate -----------------------

class TomlLines:
    """Where things are in a TOML file: tomllib gives values, not positions, so
    this scans the text for the lines of ``[[steps]]`` blocks and their keys.
    A position it cannot pin down falls back to the enclosing block's line."""

    HEADER = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.steps: list[tuple[int, int]] = []     # (first, last) 0-based, per [[steps]]
        top_end = len(self.lines)
        current = None
        for i, line in enumerate(self.lines):
            m = self.HEADER.match(line)
            if not m:
                continue
            top_end = min(top_end, i)
            name = m.group(2).replace(" ", "")
            if name == "steps" and m.group(1):
                if current is not None:
                    self.steps.append((current, i - 1))
                current = i
            elif not name.startswith("steps.") and current is not None:
                self.steps.append((current, i - 1))
                current = None
        if current is not None:
            self.steps.append((current, len(self.lines) - 1))
        self.top = (0, top_end - 1)

    def find(self, span: tuple[int, int], pattern: str, nth: int = 0) -> int | None:
        rx = re.compile(pattern)
        seen = 0
        for i in range(span[0], min(span[1], len(self.lines) - 1) + 1):
            if rx.search(self.lines[i]):
                if seen == nth:
                    return i + 1
                seen += 1
        return None

    def key(self, name: str, step: int | None = None) -> int:
        """Line of ``name = ...`` at the top level or in step ``step``."""
        span = self.top if step is None else self.step_span(step)
        found = self.find(span, rf"^\s*{re.escape(name)}\s*=")
        return found or (span[0] + 1 if step is not None else 1)

    def step(self, step: int) -> int:
        return self.step_span(step)[0] + 1

    def step_span(self, step: int) -> tuple[int, int]:
        return self.steps[step] if step < len(self.steps) else (0, len(self.lines) - 1)

    def check(self, step: int, nth: int) -> int:
        """Line of the ``nth`` check of step ``step`` (its header or its ``kind =``)."""
        span = self.step_span(step)
        return (self.find(span, r"^\s*\[\[\s*steps\s*\.\s*checks\s*\]\]", nth)
                or self.find((self.key("checks", step) - 1, span[1]), r"\bkind\s*=", nth)
                or self.key("checks", step))

    def item(self, key: str, step: int | None, value: str) -> int:
        """Line of a string ``value`` inside ``key = [...]`` (a command, a setup line)."""
        span = self.top if step is None else self.step_span(step)
        start = self.key(key, step) - 1
        for i in range(start, min(span[1], len(self.lines) - 1) + 1):
            if value and (f'"{value}"' in self.lines[i] or f"'{value}'" in self.lines[i]):
                return i + 1
        return start + 1


def _toml_error_line(err: tomllib.TOMLDecodeError) -> int:
    m = re.search(r"at line (\d+)", str(err))
    return int(m.group(1)) if m else 1


def read_toml(path: Path, root: Path, problems: list[Problem]) -> tuple[dict | None, TomlLines | None]:
    """Parse ``path``; a syntax error becomes a problem at its line."""
    rel = rel_path(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(rel, 0, "file is missing"))
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        problems.append(Problem(rel, 0, f"cannot read: {e}"))
        return None, None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        problems.append(Problem(rel, _toml_error_line(e), f"invalid TOML: {message}"))
        return None, None
    return data, TomlLines(text)
