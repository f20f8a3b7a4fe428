"""``container-lab course ...``: tools for instructors (and CI).

- ``course check [DIR]`` validates a course (default: the shipped one) and
  prints every mistake as ``file:line: message``; exit status 0 when there
  are none, 1 when there are.
- ``course solve [--lang en|zh] [--lesson ID] [DIR]`` works through the
  course for real, as an automated learner; exit status 0 when every check
  passed and every quiz answer was accepted, 1 when not, 2 when the course
  itself is invalid.
- ``course export --format html [--course DIR] [--force] OUT`` writes the
  course as a static bilingual site into OUT (see :mod:`lessons.export_html`);
  exit status 0 when written, 1 when OUT is not empty (without --force), 2
  when the course is invalid.

Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "container-lab course"

EPILOG = """\
A course is a folder: course.toml, glossary.toml, and one folder per lesson
(01-first-lesson/) holding lesson.toml (steps, commands, checks, quiz answers)
beside en.md and zh.md (the prose). See "Writing your own course" in the README.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Check and solve courses: lessons with real containers.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser, required=True)
    c = sub.add_parser("check", help="validate a course; print file:line for every mistake",
                       description="Validate a course: both languages present with the same steps, every "
                                   "check known with valid arguments, every command parseable, every "
                                   "glossary link resolved. Exit status 0 when clean, 1 otherwise.")
    c.add_argument("dir", nargs="?", metavar="DIR", help="the course folder (default: the built-in course)")
    c.set_defaults(func=cmd_check)
    s = sub.add_parser("solve", help="work through a course against the real engine, as a learner would",
                       description="Perform every step through its \"show me\" action against the real "
                                   "engine (interactive steps on a real terminal) and require every "
                                   "check to pass and every quiz answer to be accepted. Needs root. "
                                   "Exit status 0 when solved, 1 when not, 2 when the course is invalid.")
    s.add_argument("dir", nargs="?", metavar="DIR", help="the course folder (default: the built-in course)")
    s.add_argument("--lang", choices=["en", "zh"], default="en", help="the learner's language (default en)")
    s.add_argument("--lesson", action="append", metavar="ID", help="only this lesson (repeatable)")
    s.set_defaults(func=cmd_solve)
    e = sub.add_parser("export", help="write the course as a static bilingual site, to read anywhere",
                       description="Write the course as a static site into OUT: a page per lesson and "
                                   "language (prose, commands with a copy button, hints, quizzes, what "
                                   "each check looks for), the glossary, a language switch on every page. "
                                   "Plain files: open OUT/index.html in any browser, offline.")
    e.add_argument("out", metavar="OUT", help="the folder to write (new or empty)")
    e.add_argument("--format", choices=["html"], default="html", help="the site's format (html)")
    e.add_argument("--course", metavar="DIR", help="the course folder (default: the built-in course)")
    e.add_argument("--force", action="store_true",
                   help="write into a folder that is not empty (its index.html and language folders are replaced)")
    e.set_defaults(func=cmd_export)
    return p


def _course_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from .content import content_dir
    return content_dir()


def cmd_check(args) -> int:
    from .i18n import count
    from .validate import check_course

    root = _course_dir(args.dir)
    course, problems = check_course(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{count('en', len(problems), 'problem')} found", file=sys.stderr)
        return 1
    lessons = len(course.lessons)
    steps = sum(len(lesson.steps) for lesson in course.lessons)
    print(f"{root}: OK -- {count('en', lessons, 'lesson')}, {count('en', steps, 'step')}, "
          f"languages: {', '.join(course.languages)}")
    return 0


def cmd_solve(args) -> int:
    from .i18n import count, msg
    from .solve import solve
    from .validate import check_course

    root = _course_dir(args.dir)
    course, problems = check_course(root)
    if problems or course is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(msg(args.lang, "course.invalid", path=root), file=sys.stderr)
        return 2
    if args.lang not in course.languages:
        print(f"{PROG}: this course has no {args.lang} text (languages: {', '.join(course.languages)})",
              file=sys.stderr)
        return 2
    for lid in args.lesson or []:
        try:
            course.lesson(lid)
        except KeyError:
            print(msg(args.lang, "solve.no_lesson", lesson=lid,
                      lessons=", ".join(lesson.id for lesson in course.lessons)), file=sys.stderr)
            return 2
    report = solve(course, lang=args.lang, lessons=args.lesson, out=lambda line: print(line, flush=True))
    lang = args.lang
    lessons = count(lang, report.lessons, "lesson")
    if report.ok:
        print(msg(lang, "solve.ok.skipped" if report.skipped else "solve.ok", lessons=lessons,
                  steps=count(lang, report.steps, "step"), checks=count(lang, report.checks, "check"),
                  quizzes=count(lang, report.quizzes, "quiz"), skipped=count(lang, report.skipped, "step")))
        return 0
    print(msg(lang, "solve.failed", failures=count(lang, len(report.failures), "problem"), lessons=lessons))
    for failure in report.failures:
        print(f"  {failure}", file=sys.stderr)
    return 1


def cmd_export(args) -> int:
    from .export_html import ExportError, export
    from .i18n import msg
    from .validate import check_course

    root = _course_dir(args.course)
    course, problems = check_course(root)
    if problems or course is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(msg("en", "course.invalid", path=root), file=sys.stderr)
        return 2
    try:
        written = export(course, args.out, force=args.force)
    except ExportError as e:
        print(f"{PROG} export: {e}", file=sys.stderr)
        return 1
    print(f"{Path(args.out) / 'index.html'}: {len(written)} pages, languages: {', '.join(course.languages)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise                    # the reader of our output has gone: the launcher ends quietly
    except FileNotFoundError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        from engine.errors import EngineError
        if isinstance(e, EngineError):
            print(f"{PROG}: {e}", file=sys.stderr)
            return 1
        print(f"{PROG}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
