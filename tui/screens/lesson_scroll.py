"""LessonScroll: the lesson's scrolling text, and where it scrolls to.

The lesson screen says what the learner should see (a step entered, check
results that came, a new hint); this pane knows the geometry: where a
widget is in its content, whether a box is laid out yet, and how far to
scroll so that it is in view. Every position is set outright (no
animation), so where the pane was before does not matter.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget


class LessonScroll(VerticalScroll):
    """The lesson's title, introduction and steps, scrolled (``#lesson-scroll``)."""

    def y_of(self, widget: Widget) -> int:
        """The top of ``widget``'s margin box in this pane's content, scrolled or not
        (each :attr:`~textual.widget.Widget.virtual_region` is within its parent's padding)."""
        y = widget.virtual_region_with_margin.y
        node = widget.parent
        while node is not None and node is not self:
            y += node.virtual_region.y + node.styles.gutter.top
            node = node.parent
        return y

    @staticmethod
    def laid_out(widget: Widget, screen_size: Size) -> bool:
        """Whether ``widget`` has its final height (a refresh alone does not mean the layout is done)."""
        size = widget.content_size
        return bool(size.height) and size.height == widget.get_content_height(size, screen_size, size.width)

    def show_step(self, view: Widget, number: int) -> None:
        """Step ``view`` (step ``number``) at the top; step 1 with the lesson's title and introduction."""
        if number == 1:
            self.scroll_home(animate=False)
        else:
            self.scroll_to_widget(view, top=True, animate=False)

    def bring_up(self, view: Widget) -> bool:
        """``view`` brought to the top if it is below it (True), else nothing (False)."""
        top = self.y_of(view)
        if self.scroll_y < min(top, self.max_scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)
            return True
        return False

    def show_results(self, heading: Widget, results: Widget, last: Widget) -> None:
        """Check results into view: from the step's ``heading`` when heading to results
        fit in the pane, else with ``last`` (the results, or the step's navigation just
        below them) at the bottom of the pane."""
        height = self.scrollable_content_region.height
        top = self.y_of(heading)
        if self.y_of(results) + results.virtual_region_with_margin.height - top <= height:
            y = top
        else:
            y = self.y_of(last) + last.virtual_region_with_margin.height - height
        self.scroll_to(y=max(0, y), animate=False, immediate=True)

    def show_whole(self, widget: Widget) -> None:
        """All of ``widget`` in view, scrolling as little as needed (not at all when it is)."""
        top = self.y_of(widget)
        bottom = top + widget.virtual_region_with_margin.height
        height = self.scrollable_content_region.height
        if top < self.scroll_y or bottom > self.scroll_y + height:
            self.scroll_to(y=max(0, min(top, bottom - height)), animate=False, immediate=True)
