"""The layers, checked on every import in the source -- not only the ones a
module runs at import time: imports inside functions, under TYPE_CHECKING and
relative imports all count.

    tui  ->  lessons  ->  engine        (data flows one way)

- ``engine`` imports nothing of ours, and no UI library;
- ``lessons`` imports ``engine`` only, and no UI library;
- ``tui`` may import both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = {"engine", "lessons", "tui"}
UI = {"textual", "rich", "pyte"}
ALLOWED = {
    "engine": set(),
    "lessons": {"engine"},
    "tui": {"engine", "lessons"},
}


def imports_of(path: Path, package: str, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # from . import x inside engine/images/store.py -> engine
                base = parts[: len(parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                found.append((node.lineno, (base or [package])[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
    return found


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_layers(package):
    wrong = []
    for path in sources(package):
        for line, top in imports_of(path, package):
            if top in OURS and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {top}")
            if package != "tui" and top in UI:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {top} (a UI library)")
    assert sources(package), f"no sources found for {package}"
    assert not wrong, "layering broken:\n" + "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    """The walk is not fooled by an import tucked into a function."""
    probe = tmp_path / "engine" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f():\n    from lessons import model\n    import textual\n    from . import paths\n")
    found = {top for _line, top in imports_of(probe, "engine", root=tmp_path)}
    assert found == {"lessons", "textual", "engine"}
