"""Checking a step, and the learner's progress through the lesson.

:class:`ChecksMixin`, a part of :class:`tui.screens.lesson.LessonScreen`: c
and the Check button (a quiz answered, or the step's checks run against the
engine in a thread worker), the results shown in the learner's language
(worded again after a language switch), and a step recorded as done in the
learner's progress -- with the lesson's completion said once, to the app
(``LessonScreen.LessonComplete``).

Of the screen's state it changes ``completed_shown`` and ``revealing``
(results to bring into view: :mod:`tui.screens.lesson_steps`).
"""

from __future__ import annotations

from textual import work
from textual.worker import get_current_worker

from lessons.model import Step
from tui.i18n import t
from tui.screens.lesson_messages import Checked, LabFailed


class ChecksMixin:
    """The lesson screen's checks, quiz answers and progress."""

    # -- checking -----------------------------------------------------------------------------------
    def action_check(self) -> None:
        """c: check the step (or answer its quiz)."""
        step = self.step
        self.intro_first = False
        view = self.view(step.id)
        if step.quiz is not None:
            quiz = view.quiz()
            selected = quiz.selected() if quiz is not None else frozenset()
            view.show_answer(selected)
            self.call_after_refresh(self._refocus, True)
            self.learner.record_step(self.lesson, step.id, quiz=sorted(selected))
            if step.quiz.grade(selected):
                self._complete(step)
            return
        if not step.checks:
            self._complete(step)
            return
        if (why := self.why(step)) is not None:
            self._complete(step, skipped=True)
            view.set_status("status.skipped", why=why)
            return
        if step.id not in self.cursors:
            self.notify(t(self.lang, "busy.preparing"), severity="warning")
            return
        self._check(step)

    def _check(self, step: Step, wait: float = 0.0) -> None:
        self.view(step.id).set_status("status.checking")
        self._run_checks(step, self.cursors[step.id], self.lang, wait)

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def _run_checks(self, step: Step, cursor: int, lang: str, wait: float) -> None:
        worker = get_current_worker()
        try:
            results = self.lab.check(step, cursor, wait=wait, cancel=worker.cancelled_event)
        except Exception as e:  # noqa: BLE001
            self.post_message(LabFailed("lab.failed.check", self._failure(e, "lab.failed.check")))
            return
        if not worker.is_cancelled:               # a newer check replaced this one
            self.post_message(Checked(step.id, results, lang))

    def on_lesson_screen_checked(self, message: Checked) -> None:
        step = self.lesson.step(message.step_id)
        view = self.view(step.id)
        view.show_results(message.results)
        if step.id == self.step.id:
            self.revealing = view                 # once the results are laid out: _laid_out
            self.call_after_refresh(self._laid_out, self)
        if message.lang != self.lang and step.id == self.step.id:
            self._check(step)                      # worded in the language before a switch: again
            return
        if message.results and all(r.passed for r in message.results):
            self._complete(step, checks=[r.kind for r in message.results],
                           skipped=any(getattr(r, "skipped", False) for r in message.results))
        else:
            view.set_status("status.not_yet")

    # -- progress -----------------------------------------------------------------------------------
    def _complete(self, step: Step, *, checks=None, skipped: bool = False, show: bool = True) -> None:
        """Record ``step`` as done, and celebrate the lesson once every step is."""
        view = self.view(step.id)
        fields = {"done": True}
        if checks is not None:
            fields["checks"] = checks
        if skipped:
            fields["skipped"] = True
        if step.id not in self.learner.done(self.lesson) or checks is not None:
            self.learner.record_step(self.lesson, step.id, **fields)
        view.set_done(True)
        if show:
            view.set_status("status.done" if step is not self.lesson.steps[-1] else "status.done_last")
        if self.learner.complete(self.lesson) and not self.completed_shown:
            self.completed_shown = True
            self.post_message(self.LessonComplete(self.lesson.id))
