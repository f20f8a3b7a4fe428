"""The course: what a lesson is, how it is written, and how its steps are checked.

No Textual here (a test makes sure): the app in ``tui/`` calls this package
from worker threads, and everything it hands back is plain data.

- :mod:`lessons.model` -- Course -> Lesson -> Step, frozen dataclasses.
- :mod:`lessons.loader` -- reads ``course.toml``, ``glossary.toml`` and each
  lesson's ``lesson.toml`` + ``en.md``/``zh.md``; every mistake is file:line.
  A lesson's two halves are read by :mod:`lessons.lesson_toml` and
  :mod:`lessons.lesson_prose`; what they share (ids, TOML with line numbers)
  is :mod:`lessons.course_files`.
- :mod:`lessons.validate` -- ``course check``: the loader plus commands,
  checks and container names.
- :mod:`lessons.docker` -- ``docker run ...`` mapped onto the engine's CLI.
- :mod:`lessons.checks` -- declarative checks against the event log and kernel.
- :mod:`lessons.view` -- what checks may read (engine client, /proc).
- :mod:`lessons.requirements` -- what a step needs of this machine
  (``requires``, asked of ``container-lab doctor``).
- :mod:`lessons.runner` -- runs commands, on a real terminal when they need one.
- :mod:`lessons.lab` -- a lesson's lab: setup, reset, show me, check.
- :mod:`lessons.progress` -- the learner's progress, saved atomically.
- :mod:`lessons.solve` / :mod:`lessons.cli` -- ``course solve`` and ``course check``.
- :mod:`lessons.export_html` -- ``course export --format html``: the course as a static site.
- :mod:`lessons.i18n` -- what learners are told, in English and Chinese.
- :mod:`lessons.content` -- where the built-in course lives.
"""
