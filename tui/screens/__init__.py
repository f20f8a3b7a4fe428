"""The app's screens: welcome, course map, lesson, help and dialogs, each with its own pieces
(:mod:`~tui.screens.parts` the lesson's widgets, :mod:`~tui.screens.lesson_scroll` its
scrolling pane, :mod:`~tui.screens.stepthrough` its step-through start,
:mod:`~tui.screens.keys` every screen's keys)."""
