"""What the lab panel shows, as plain rows: snapshot dicts in, tables out.

Every function here is pure -- engine data (``Client.ps``, ``Client.snapshot``,
``Client.diff``, a transcript's stages, events) and a language in, a
:class:`~tui.widgets.table.Table` out; only :func:`~.formatting.clock` also reads the local time
zone -- so they are tested without Textual and without an engine. What fetches
the data is :mod:`tui.widgets.sources`, the table and its column fitting
:mod:`tui.widgets.table`. The widget (:mod:`tui.widgets.lab`) only lays the
tables out, and :class:`~tui.widgets.rows.RowList` draws them, dropping the
columns of highest ``priority`` first when the panel is narrow.

A row's ``style`` and a cell's ``style`` name a component class of the
RowList (``rows--<style>``), so every colour stays in the ``.tcss`` file.

No Textual here (a packaging test checks it).

One module per tab of the panel (:data:`TABS`), each with the words and
formatters it shares with the others imported from here:

- ``containers.py``  the container list above the tabs: order, selection, rows
- ``processes.py``   Processes: the process tree, container and host PIDs
- ``namespaces.py``  Namespaces: inodes, isolated or shared, what changed
- ``mounts.py``      Mounts: the overlay's layers, the writable layer's changes, the mount table
- ``layers.py``      Layers: the writable layer and the image's layers, top first, each with its
                     step, size and changes (A/C/D)
- ``network.py``     Network: interfaces, addresses, routes
- ``resources.py``   Resources: gauges against limits, their history, the events
- ``transcript.py``  What happened: the start stage by stage, wrapped to the width
- ``formatting.py``  bytes, times, sentences, ids, a command line

Everything is importable from this package too (``lab_model.process_table``).
"""

from __future__ import annotations

from .containers import container_table, default_selection, find_container, is_lesson_container, status_text
from .formatting import human_bytes
from .layers import layer_table
from .mounts import mount_table, overlay_of
from .namespaces import namespace_changes, namespace_table
from .network import network_table
from .processes import new_processes, process_signature, process_table, process_tree
from .resources import Gauge, gauges, resource_table
from .transcript import _wrapped, transcript_table

TABS = ("processes", "namespaces", "mounts", "network", "resources", "transcript", "layers")

__all__ = [
    "TABS", "Gauge", "_wrapped", "container_table", "default_selection",
    "find_container", "gauges", "human_bytes", "is_lesson_container", "layer_table", "mount_table", "namespace_changes",
    "namespace_table", "network_table", "new_processes", "overlay_of", "process_signature", "process_table",
    "process_tree", "resource_table", "status_text", "transcript_table",
]
