"""``course solve``: an automated learner that works through a course for real.

For every lesson: reset its lab; for every step: set up the state it starts
from, take the cursor, perform the step through its "show me" action against
the real engine (interactive commands on a real pseudo-terminal, typed key by
key), then require every check to pass and the quiz's answer to be accepted
(and a wrong answer to be refused). The lesson's containers are removed
afterwards, whatever happened. Progress is not touched: this is not a learner.

A step that requires what this machine lacks (see :mod:`lessons.requirements`)
is skipped with the reason, as the lab would explain it to a learner; its
quiz is still answered. A skipped step is not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .i18n import msg
from .lab import Lab
from .model import Course, Quiz
from .runner import failure_text


@dataclass
class Report:
    lessons: int = 0
    steps: int = 0
    checks: int = 0
    quizzes: int = 0
    skipped: int = 0                       # steps not run: the machine lacks what they require
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.steps > 0


def wrong_answer(quiz: Quiz) -> frozenset[str]:
    """A selection a learner might make that must not be accepted."""
    others = [o for o in quiz.options if o not in quiz.answer]
    if not quiz.multiple:
        return frozenset([others[0]])
    if len(quiz.answer) > 1:
        return frozenset(sorted(quiz.answer)[1:])          # one right answer missing
    return quiz.answer | {others[0]}


def solve(course: Course, *, lang: str = "en", lessons: list[str] | None = None, out=print,
          cancel=None, view=None, doctor=None) -> Report:
    """Solve ``lessons`` (ids; default all) of ``course`` in ``lang``; ``out`` gets each line.
    ``doctor`` stands in for :func:`engine.doctor.diagnose` (a test seam)."""
    report = Report()
    chosen = [course.lesson(lid) for lid in lessons] if lessons else list(course.lessons)
    for number, lesson in enumerate(chosen, 1):
        if cancel is not None and cancel.is_set():
            break
        report.lessons += 1
        out(msg(lang, "solve.lesson", lesson=course.lessons.index(lesson) + 1 if lesson in course.lessons else number,
                title=lesson.title.get(lang, lesson.id)))
        lab = Lab(course, lesson, lang=lang, view=view, doctor=doctor)
        try:
            lab.reset()
            for step in lesson.steps:
                if cancel is not None and cancel.is_set():
                    break
                _solve_step(lab, step, lang, out, report, cancel)
        finally:
            lab.cleanup()
    return report


def _solve_step(lab: Lab, step, lang: str, out, report: Report, cancel) -> None:
    """One step; a step whose checks fail is tried once more from its start,
    as a learner would try again (a server in a container just started may
    not listen yet when a fast automated learner asks it): the first try's
    failure is said in one line, and only the second try's counts."""
    report.steps += 1
    where = f"{lab.lesson.id}/{step.id}"
    out(msg(lang, "solve.step", step=step.id, title=step.title(lang)))
    for attempt in (1, 2):
        lines, failures, checks, skipped = _attempt(lab, step, lang, cancel, where)
        if failures and attempt == 1 and not skipped and not (cancel is not None and cancel.is_set()):
            out(msg(lang, "solve.retry", failure=failures[0].split(": ", 1)[-1]))
            continue
        break
    for line in lines:
        out(line)
    report.checks += checks
    report.skipped += skipped
    report.failures += failures
    _solve_quiz(step, lang, out, report, where)


def _attempt(lab: Lab, step, lang: str, cancel, where: str) -> tuple[list[str], list[str], int, bool]:
    """Set the step up, perform it, check it: (lines to say, failures, checks made, skipped)."""
    lines: list[str] = []
    failures: list[str] = []
    cursor, setup = lab.begin_step(step, cancel=cancel)
    for result in setup:
        if not result.ok:
            line = msg(lang, "solve.command.fail", cmd=result.command,
                       error=failure_text(result, lang, last_line=True))     # its output was not shown
            lines.append(line)
            failures.append(f"{where}: {line.strip()}")
    if (why := lab.unavailable(step)) is not None:
        lines.append(msg(lang, "solve.skipped", why=why))
        return lines, failures, 0, True
    for command, result in zip(step.show_me, lab.show_me(step, cancel=cancel, origin="solve")):
        lines.append(msg(lang, "solve.command", cmd=command.text))
        for typed in command.type:
            lines.append(msg(lang, "solve.typed", line=typed))
        if result.error or result.timed_out or result.cancelled:
            line = msg(lang, "solve.command.fail", cmd=command.text, error=failure_text(result, lang))
            lines.append(line)
            failures.append(f"{where}: {line.strip()}")
    checks = 0
    for result in lab.check(step, cursor, wait=10 if step.checks else 0, cancel=cancel):
        checks += 1
        if result.passed:
            lines.append(msg(lang, "solve.check.pass", expected=result.expected))
        else:
            lines.append(msg(lang, "solve.check.fail", expected=result.expected, saw=result.saw))
            failures.append(f"{where}: {result.kind}: {result.saw}")
    return lines, failures, checks, False


def _solve_quiz(step, lang: str, out, report: Report, where: str) -> None:
    if step.quiz is not None:
        report.quizzes += 1
        answer = ", ".join(sorted(step.quiz.answer))
        if not step.quiz.grade(step.quiz.answer):
            out(msg(lang, "solve.quiz.fail", answer=answer))
            report.failures.append(f"{where}: quiz answer refused")
        elif step.quiz.grade(wrong := wrong_answer(step.quiz)):
            out(msg(lang, "solve.quiz.wrong_accepted", answer=", ".join(sorted(wrong))))
            report.failures.append(f"{where}: a wrong quiz answer was accepted")
        else:
            out(msg(lang, "solve.quiz.pass", answer=answer))
