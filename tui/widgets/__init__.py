"""Widgets the app composes: the live lab panel and the embedded terminal.

- :class:`tui.widgets.lab.LabPanel` -- the lesson's containers, live:
  processes, namespaces, mounts, network, resources, and what happened;
- :class:`tui.widgets.terminal.TerminalView` -- a terminal (pyte) on an
  interactive container's pty.

Their pure parts import no Textual: :mod:`~tui.widgets.lab_model` (snapshot
data to rows), :mod:`~tui.widgets.vt` (keys to bytes, pyte to segments),
:mod:`~tui.widgets.sources` (the engine, or a recorded scene) and
:mod:`~tui.widgets.strings` (their words in English and Chinese). Import
the widgets from their modules; this package imports nothing on its own.
"""
