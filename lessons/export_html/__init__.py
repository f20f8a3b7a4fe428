"""``container-lab course export --format html DIR``: the course as a static site.

For learners who read ahead on a phone, away from the lab: every lesson in
every language of the course, each step's prose, its commands in blocks with
a copy button, its hints and quiz (the answer folded away), and what its
checks look for -- worded as the app words them after "Check"; a glossary;
on every page a switch to the same page in the other language. Plain files
that work from a folder, offline: no server, nothing fetched.

Layout of DIR::

    index.html                  the course's title, a way in per language
    en/index.html               the lessons, in order
    en/01-what-is-a-container.html ...   one page per lesson
    en/glossary.html
    zh/...                      the same files, in Chinese

Where each part lives: :mod:`.pages` -- the pages; :mod:`.render` --
Markdown made safe, and what a check looks for; :mod:`.assets` -- the style
sheet, the copy button's script, the Content Security Policy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..model import Course


class ExportError(Exception):
    """The site cannot be written there; the message is one line."""


def site_files(course: Course) -> dict[str, str]:
    """Every page of the site: its path under DIR -> its HTML."""
    from . import pages
    from .render import Markdown

    md = Markdown()
    files = {"index.html": pages.chooser(course)}
    for lang in course.languages:
        files[f"{lang}/index.html"] = pages.index(course, lang, md)
        files[f"{lang}/glossary.html"] = pages.glossary(course, lang)
        for i, lesson in enumerate(course.lessons):
            files[f"{lang}/{pages.lesson_file(lesson)}"] = pages.lesson(course, i, lang, md)
    return files


def export(course: Course, out: Path | str, *, force: bool = False) -> list[Path]:
    """Write the site into ``out`` (made if missing); returns the pages written.

    ``out`` must be empty unless ``force``: then the site's own files and folders
    (index.html and one folder per language) are replaced, and nothing else in
    it is touched. The pages are written to a temporary folder beside ``out``
    first and moved in at the end, so a failure leaves nothing half-written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty: choose an empty or new directory, or add --force "
                          "to replace the site in it")
    files = site_files(course)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for top in sorted({rel.split("/", 1)[0] for rel in files}):
            target = out / top
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / top, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / rel for rel in files]
