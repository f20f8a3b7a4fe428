"""The client API: how the CLI, the app and the tests talk to the supervisor.

Safe to use from any thread: it only connects to a Unix socket and, when no
supervisor runs yet, starts one with ``subprocess`` (which execs at once, so
no Python runs in a forked child of a threaded caller).

Where each part lives (one file per concern, each opening with what it holds):

- ``api.py``          :class:`Client`: finding, trusting and starting the
                      supervisor, and every request (run, exec, ps, networks,
                      events, snapshots ...)
- ``connection.py``   one connection to the supervisor: its messages, an
                      error reply made an exception, waiting for an exit
- ``relay.py``        :class:`Relay`: the caller's terminal or files copied
                      through pipes, so the container never holds them
- ``attached.py``     what a start or an exec gives back while it runs:
                      :class:`Attached` (wait for the exit), :class:`Stepwise`
                      (a start one stage at a time, ``run --explain``)
- ``subscription.py`` :class:`Subscription`: engine events as they happen

Everything is importable from here (``from engine.client import Client``).
"""

from __future__ import annotations

from .api import Client
from .attached import Attached, Stepwise
from .connection import _Conn, _error_from_reply, _wait_for_exit
from .relay import Relay, _is_null, _is_pipe, _write_all
from .subscription import Subscription

__all__ = [
    "Client", "Attached", "Stepwise", "Relay", "Subscription",
    "_Conn", "_error_from_reply", "_wait_for_exit", "_is_null", "_is_pipe", "_write_all",
]
