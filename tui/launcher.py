"""The ``container-lab`` command: the course with no verb, the engine's CLI with one.

``container-lab [--lang en|zh] [--lesson ID] [--course DIR]`` opens the course
app (:mod:`tui.app`), where the learner left off.

``container-lab course check|solve ...`` goes to the course tools
(:mod:`lessons.cli`), ``container-lab serve ...`` to the classroom
(:mod:`tui.classroom.serve`). This module must stay light: ``container-lab run ...``
goes straight to the engine's CLI without importing Textual, Rich or pyroute2.
"""

from __future__ import annotations

import sys

# Options of the course app itself (``--lesson 6``, ``--lang=zh`` ...); anything else is a verb.
APP_OPTIONS = ("--lang", "--lesson", "--course")


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
    except SystemExit as e:
        code = e.code
    except BrokenPipeError:
        code = 0             # `container-lab --help | head`: the reader has gone; that is no error
    try:
        # What is still buffered goes out here, where a closed pipe can be caught: left to
        # Python's own flush at exit, it would be "Exception ignored ... BrokenPipeError"
        # (stdout to a pipe is block-buffered on any machine without PYTHONUNBUFFERED).
        sys.stdout.flush()
    except BrokenPipeError:
        # That flush at exit would fail again, so stdout goes to /dev/null first.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "course":
        from lessons.cli import main as course_main
        sys.exit(course_main(args[1:]))
    if args and args[0] == "serve":             # the classroom (tui/classroom): root, a room's server
        from tui.classroom.serve import main as serve_main
        sys.exit(serve_main(args[1:]))
    if args and args[0] == "class":             # the instructor's view of the room
        from tui.classroom.roster import main as class_main
        sys.exit(class_main(args[1:]))
    if args and not args[0].startswith(APP_OPTIONS):
        from engine.cli import main as engine_main
        sys.exit(engine_main(args))      # its --help names the course's options too
    from tui.start import main as app_main
    sys.exit(app_main(args))


if __name__ == "__main__":
    main()
