"""Widgets the app composes: the live lab panel and the embedded terminal.

- :class:`tui.widgets.lab.LabPanel` -- the lesson's containers, live:
  processes, namespaces, mounts, network, resources, and what happened;
- :class:`tui.widgets.terminal.TerminalView` -- a terminal (pyte) on an
  interactive container's pty; :class:`tui.widgets.terminal_pane.TerminalPane`
  -- the lesson's, with the session behind it and "show me"'s typing.

Their pure parts import no Textual: :mod:`~tui.widgets.lab_model` (snapshot
data to rows, one module per tab of the lab panel: ``lab_model/network.py``
...), :mod:`~tui.widgets.table` (the rows' table, and which columns fit a
width), :mod:`~tui.widgets.vt` (keys to bytes, pyte to segments),
:mod:`~tui.widgets.sources` (the engine, or a recorded scene; one refresh read
from either) and :mod:`~tui.widgets.strings` (their words in English and
Chinese). Import the widgets from their modules; this package imports nothing
on its own.
"""
