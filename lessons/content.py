"""Where the course lives: the ``content/`` folder, found by path.

Two places, in this order:

1. ``lessons/content`` next to this file -- where the wheel puts ``content/``
   (``force-include`` in ``pyproject.toml``);
2. ``<checkout>/content`` -- a source checkout or an editable install, where
   this file is ``<checkout>/lessons/content.py`` beside ``pyproject.toml``.

Not ``importlib.resources``: an editable install would then hand back a stale
copy instead of the checkout the instructor is editing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["content_dir"]


def content_dir() -> Path:
    """The course's ``content/`` folder (FileNotFoundError when there is none)."""
    return _find_content(Path(__file__).resolve().parent)


def _find_content(package_dir: Path) -> Path:
    """``content/`` for the ``lessons`` package at ``package_dir``."""
    installed = package_dir / "content"
    if installed.is_dir():
        return installed
    checkout = package_dir.parent
    # Only a checkout: next to site-packages, a "content" folder would be someone else's.
    if (checkout / "content").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "content"
    raise FileNotFoundError(
        f"container-lab course content not found: looked in {installed} "
        f"and {checkout / 'content'}; reinstall container-lab, or run it from a checkout")
