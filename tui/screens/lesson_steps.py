"""Moving through a lesson's steps, and what the lesson pane shows of them.

:class:`StepsMixin`, a part of :class:`tui.screens.lesson.LessonScreen`:
entering a step (its work area opened, its lab set up after the next frame),
n, p, m, : and F3, a step's buttons, where the focus goes, and a new hint or
new check results brought into view once they are laid out (how far to
scroll is :class:`~tui.screens.lesson_scroll.LessonScroll`'s business).

Of the screen's state it changes ``index``, ``intro_first``, ``revealing``
and ``hinting``.
"""

from __future__ import annotations

from textual.widgets import Static

from tui.i18n import t
from tui.screens.lesson_scroll import LessonScroll
from tui.screens.parts import CommandLine, StepView
from tui.screens.quiz import QuizView


class StepsMixin:
    """The lesson screen's steps: which is current, and what of it is in view."""

    # -- moving between steps ---------------------------------------------------------------------
    def _enter_step(self, *, save: bool) -> None:
        self._drop_closed_terminal()
        self.revealing = None
        for n, step in enumerate(self.lesson.steps):
            self.view(step.id).set_current(n == self.index)
        if not self.lesson.steps:
            return
        step = self.step
        if save:
            self.learner.set_position(self.lesson, step.id)
        view = self.view(step.id)
        self.refresh_bindings()                   # the keys this step has
        self.call_after_refresh(self._scroll_to, view)
        self.call_after_refresh(self._refocus, True)
        if not (step.commands or step.checks or step.quiz) and step.id not in self.learner.done(self.lesson):
            view.set_status("status.reading_last" if step is self.lesson.steps[-1] else "status.reading")
        if step.id not in self.cursors and self.why(step) is None and (step.commands or step.checks or step.setup):
            view.set_status("status.preparing")
            # after the next frame: the engine's work (maybe starting its supervisor) must not
            # take the CPU from drawing the step the learner is about to read
            self.call_after_refresh(self._begin, step)

    def _refocus(self, entering: bool = False) -> None:
        """Focus where the learner works: a quiz's choices, else the lesson (kept when still there)."""
        focused = self.focused
        if not entering and focused is not None and focused.is_attached and focused.display:
            return
        if entering and focused is self.query_one("#command"):
            return
        quiz = self.view(self.step.id).quiz() if self.lesson.steps else None
        if quiz is not None and quiz.is_mounted:
            quiz.choices().focus()
        else:
            self.query_one("#lesson-scroll").focus()

    @property
    def lesson_scroll(self) -> LessonScroll:
        return self.query_one("#lesson-scroll", LessonScroll)

    def _scroll_to(self, view: StepView) -> None:
        self.lesson_scroll.show_step(view, view.number)

    def go(self, index: int) -> None:
        """Make step ``index`` the current one."""
        if not 0 <= index < len(self.lesson.steps) or index == self.index:
            return
        leaving = self.step
        self.intro_first = False
        self.stop_stepping()                                # a half-built container does not follow
        if leaving.quiz is None and not leaving.checks and leaving.id not in self.learner.done(self.lesson):
            self._complete(leaving, show=False)            # a step to read is done once read
        self.index = index
        self._enter_step(save=True)

    def action_next(self) -> None:
        """n: the next step (on a lesson just opened at step 1 under its introduction:
        step 1 first, brought to the top, as it is the current step already)."""
        if self.intro_first and self.lesson.steps:
            self.intro_first = False
            if self.lesson_scroll.bring_up(self.view(self.step.id)):
                return
        self.go(self.index + 1)

    def action_previous(self) -> None:
        """p: the step before."""
        self.go(self.index - 1)

    def action_map(self) -> None:
        """m: the course map."""
        self.post_message(self.OpenMap())

    def action_command(self) -> None:
        """: -- type a command."""
        self.query_one("#command", CommandLine).focus()

    def action_side(self) -> None:
        """F3 (narrow screens): the lesson or the lab -- with an open terminal, the keys go with it."""
        self.toggle_class("-show-side")
        if self.has_class("-show-side") and self.terminal is not None:
            self.terminal.focus()
        elif not self.has_class("-show-side") and self.focused is not None \
                and self.query_one("#side") in self.focused.ancestors_with_self:
            self.query_one("#lesson-scroll").focus()

    # -- a new hint and new check results, brought into view once laid out --------------------
    def action_hint(self) -> None:
        """h: one more hint."""
        step = self.step
        view = self.view(step.id)
        if not step.hints:
            self.notify(t(self.lang, "hint.none"))
            return
        if view.hints_shown >= len(step.hints):
            self.notify(t(self.lang, "hint.last"))
            return
        view.show_hints(view.hints_shown + 1)
        self.learner.record_step(self.lesson, step.id, hints=view.hints_shown)
        self.hinting = (view, view.hints_shown)   # scrolled into view once laid out: _laid_out
        self.call_after_refresh(self._laid_out, self)

    def _laid_out(self, _screen=None) -> None:
        """After a layout: new check results waiting to be shown are, once their
        box has its new height (a refresh alone does not mean the layout is done); so is a
        new hint (its step's work area is composed anew: the hint is there once laid out)."""
        if self.hinting is not None:
            self._reveal_hint()
        view = self.revealing
        if view is None:
            return
        work = view.work() if view.is_attached else None
        if work is None or not work.query(".results"):
            self.revealing = None
            return
        box = work.query_one(".results", Static)
        if not box.display or not LessonScroll.laid_out(box, self.app.size):
            return                                # not laid out yet: the next layout
        self.revealing = None
        self._show_results(view)

    def _show_results(self, view: StepView) -> None:
        """Bring the check results into view: the step from its heading when heading to
        results fit in the lesson pane, else the results (and the step's navigation just
        below them) at the bottom of the pane. The position is set outright, so it does
        not depend on where the pane was scrolled before."""
        work = view.work()
        if work is None or not work.query(".results") or not view.is_mounted:
            return
        self.lesson_scroll.show_results(view.query_one(".step-title"), work.query_one(".results"),
                                 work.query(".step-nav, .results").last())

    def _reveal_hint(self) -> None:
        view, count = self.hinting
        hints = view.query(".hint-text") if view.is_attached else []
        if len(hints) != count:
            if not view.is_attached or view.hints_shown != count:
                self.hinting = None               # gone, or another hint asked for since
            return                                # not composed yet: the next layout
        last = hints.last()
        if not LessonScroll.laid_out(last, self.app.size):
            return
        self.hinting = None
        self._refocus()
        self.lesson_scroll.show_whole(last)

    # -- a step's quiz and buttons ------------------------------------------------------------------
    def on_quiz_view_shown(self, message: QuizView.Shown) -> None:
        message.stop()
        focused = self.focused
        if focused is None or not focused.is_attached or focused is self.query_one("#lesson-scroll"):
            self.call_after_refresh(self._refocus, True)

    def on_step_view_pressed(self, message: StepView.Pressed) -> None:
        """A step's button: the same as its key."""
        message.stop()
        if message.step_id != self.step.id:
            return
        if message.action == "run":
            self.action_run(message.index)
        else:
            getattr(self, f"action_{message.action}")()
