"""Starting the course app: ``container-lab [--lang en|zh] [--lesson ID] [--course DIR]``.

:func:`main` reads the command line, loads the course (checked, from the
cache: :mod:`tui.course_cache`), finds the lesson asked for, and runs the app
that :func:`make_app` builds with everything it needs: the language (asked
for, else the learner's last choice, else the locale), the machine's check,
the learner's progress, the lab and the lab panel. A course with mistakes,
an unknown lesson or no terminal is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from textual.widget import Widget

from lessons.model import Course
from tui.app import ContainerLabApp
from tui.i18n import LANGS, detect_language, t, tn
from tui.machine import Machine, check_machine
from tui.session import Learner, SessionMark


def make_app(lang: str | None = None, *, machine: Machine | None = None, course: Course | Path | str | None = None,
             progress_dir: Path | str | None = None, lesson: str | None = None, lab: Callable | None = None,
             lab_panel: Callable[[str], Widget] | None = None, engine: bool = True,
             mark: bool = True) -> ContainerLabApp:
    """The app. ``lang``: --lang (default: the learner's saved choice, then the locale);
    ``course``: a Course or its folder (default: the shipped one); ``progress_dir``: where
    progress is kept (default: the learner's XDG state dir); ``lesson``: open it at once;
    ``lab``: makes a lesson's lab (default: :class:`lessons.lab.Lab`); ``lab_panel``: makes the
    lab panel for a language; ``engine=False``: never talk to the engine (no cleanup, a
    placeholder panel) -- for screenshots and tests with a lab that needs none."""
    from lessons.progress import ProgressStore
    from tui import course_cache

    if lang is not None and lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGS)}")
    if not isinstance(course, Course):
        course = course_cache.load(course)
    store = ProgressStore(progress_dir)
    learner = Learner(course, store)
    lang = lang or learner.language or detect_language()
    if lesson is not None:
        lesson = course.lesson(lesson).id          # KeyError: no such lesson
    if lab_panel is None and not engine:
        from tui.screens.parts import LabPlaceholder
        lab_panel = LabPlaceholder
    return ContainerLabApp(lang=lang, course=course, machine=check_machine() if machine is None else machine,
                           learner=learner, lesson=lesson, lab=lab, lab_panel=lab_panel, engine=engine,
                           mark=SessionMark(store.dir) if mark and engine else None)


def main(args: list[str]) -> int:
    """``container-lab [--lang en|zh] [--lesson ID] [--course DIR]``: open the course."""
    parser = argparse.ArgumentParser(
        prog="container-lab",
        description="Open the container-lab course (where you left off). With a verb (run, ps, rm, ...) "
                    "container-lab is the engine's CLI instead: see container-lab --help.")
    parser.add_argument("--lang", choices=LANGS,
                        help="language of the course (default: your last choice, then LANGUAGE, LC_ALL, "
                             "LC_MESSAGES, LANG); F2 switches at any moment")
    parser.add_argument("--lesson", metavar="ID", help="open this lesson (its id, folder or number)")
    parser.add_argument("--course", metavar="DIR", help="use the course in DIR instead of the built-in one")
    try:
        ns = parser.parse_args(args)
    except SystemExit as e:         # --help, or a bad argument: argparse has said why
        return e.code if isinstance(e.code, int) else 2
    lang = ns.lang or detect_language()
    if not has_terminal():
        print(t(lang, "note.no_terminal"), file=sys.stderr)
        return 1
    from lessons.loader import CourseError
    from tui import course_cache

    where = ns.course or "content/"
    try:
        course = course_cache.load(ns.course)
    except CourseError as e:
        print(tn(lang, "note.bad_course", len(e.problems), path=where, first=str(e.problems[0])),
              file=sys.stderr)
        return 1
    except OSError as e:
        print(t(lang, "note.no_course", path=where, error=e.strerror or str(e)), file=sys.stderr)
        return 1
    lesson = ns.lesson
    if lesson is not None:
        lesson = _find_lesson(course, lesson)
        if lesson is None:
            print(t(lang, "note.no_lesson", lesson=ns.lesson,
                    lessons=", ".join(item.id for item in course.lessons)), file=sys.stderr)
            return 1
    app = make_app(ns.lang, course=course, lesson=lesson)
    app.run()
    return app.return_code or 0


def has_terminal() -> bool:
    """Whether we were started in a terminal (both ends)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _find_lesson(course: Course, ref: str) -> str | None:
    """A lesson by id, folder name, or number in the course (1-based)."""
    try:
        return course.lesson(ref).id
    except KeyError:
        pass
    if not ref.isdigit():
        return None
    for lesson in course.lessons:          # "06" or "6": the folder's number
        if lesson.folder.split("-", 1)[0].lstrip("0") == ref.lstrip("0"):
            return lesson.id
    return course.lessons[int(ref) - 1].id if 1 <= int(ref) <= len(course.lessons) else None
