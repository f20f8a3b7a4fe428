"""The supervisor: one process per user, the parent of every container.

Why a separate process: the app is multi-threaded, and no Python code may run
in a forked child of a threaded process. The supervisor is single-threaded,
so it can fork a container child safely; it also reaps containers, records
how they ended, holds their terminals and keeps working when its clients
(the CLI, the app, the tests) come and go.

It listens on a Unix socket (mode 0600) in the state dir. The protocol is one
JSON object per line; file descriptors (a client's stdio, a container's
terminal) travel beside a message with SCM_RIGHTS, and ``"nfds"`` says how
many belong to it. Every request gets one reply ``{"ok": true, ...}`` or
``{"ok": false, "error": "...", "kind": "...", "exit_code": N}``; a client
that asked to stay attached later gets ``{"event": "exit", ...}``. Each
connection is held to the policy of its peer's uid, read from the kernel
(SO_PEERCRED) when it is accepted -- see :mod:`engine.policy`.

Nothing a container or a client does may hold the loop up: a start or an
exec is answered when its child has exec'd (its start channel is watched,
with a deadline), ``rm -f`` when the exit has happened, output to a client
waits in its connection's queue, and a container's output is read at a
bounded rate and copied to an attached client's pipe, never handed the
client's own terminal or files.

Start it with ``python -m engine.supervisor``; clients do that on demand
(:mod:`.daemon`).

Where each part lives (one file per concern, each opening with what it holds):

- ``loop.py``        the container table, start-up (adopting a previous
                     supervisor's containers), the event loop and its timers,
                     shutdown
- ``connections.py`` clients: accept, read, send without blocking, dispatch
                     a request to its ``op_<name>`` method
- ``requests.py``    ping, subscribe, ps, inspect, wait, kill, stop, start, rm
- ``create.py``      making a container: name, image, command, directory, record
- ``start.py``       where a container starts: cgroup, fork into its
                     namespaces, the start channel, stage-by-stage starts
- ``sharing.py``     ``container:NAME`` / ``host`` namespaces, user namespace maps
- ``networks.py``    containers on networks: namespace, lease, veth, names,
                     ports, proxies; sweeps after a crash
- ``network_requests.py`` the ``network ...`` and ``port`` requests; what
                     inspect, ps and the lab panel show of networks
- ``exec.py``        processes started in a running container
- ``output.py``      containers' output: paced, logged, copied to clients
- ``reap.py``        exits, tidying after them, signals, removal
- ``cleanup.py``     prune, gc, rmi
- ``seats.py``       classroom seats: registered by the owner, their cgroup,
                     network and removal
- ``state.py``       a start in flight, an attached client's pipe, an exec
- ``settings.py``    the fixed numbers (deadlines, rates, bounds)
- ``daemon.py``      ``main``: ``python -m engine.supervisor [--daemon]``

Why one class made of mixins, not collaborating objects: every part works on
the same few tables (containers, starts, the selector, connections) and calls
the others at every turn -- a start answers a client, an exit ends a sink,
a request tidies earlier exits first. Split into objects, each would hold a
reference to every other and the state would be passed around or duplicated;
as mixins, each file reads as before (``self.finish(c)``, ``self.sel``) and
:meth:`Connections.handle` still finds any request as ``op_<name>`` on one
object. The state itself is set up in one place, :meth:`Loop.__init__`.
"""

from __future__ import annotations

from .cleanup import Cleanup, _dir_size
from .connections import Connection, Connections
from .create import Create, _config_from, _resolv_conf
from .daemon import main
from .exec import Execs
from .loop import Loop
from .network_requests import NetworkRequests
from .networks import Networking
from .output import Output
from .reap import Reaping, _ns_inode
from .requests import Requests, _number
from .rootless_net import RootlessNet
from .seats import Seats
from .settings import (
    LIMIT_CHECK_INTERVAL,
    LOG_LIMIT,
    MAX_ENV,
    MAX_LABELS,
    NAMESPACE_KINDS,
    OUTPUT_BURST,
    OUTPUT_RATE,
    OUTPUT_TICK,
    PROTOCOL,
    SINK_BACKLOG,
    START_TIMEOUT,
    SUBSCRIBER_BACKLOG,
    TIDY_GRACE,
    TIDY_LATER,
)
from .sharing import Sharing
from .start import Start, _pipe, _winsize
from .state import Exec, Sink, Starting


class Supervisor(Loop, Connections, Requests, Create, Start, Sharing, Networking, NetworkRequests, RootlessNet,
                 Execs, Output, Reaping, Cleanup, Seats):
    """The supervisor: one process per user, the parent of every container
    (see the module's docstring for which part lives where)."""


__all__ = [
    "Supervisor", "Connection", "Starting", "Sink", "Exec", "main",
    "PROTOCOL", "START_TIMEOUT", "LIMIT_CHECK_INTERVAL", "TIDY_LATER", "TIDY_GRACE", "OUTPUT_RATE",
    "OUTPUT_BURST", "OUTPUT_TICK", "SINK_BACKLOG", "SUBSCRIBER_BACKLOG", "LOG_LIMIT", "MAX_LABELS", "MAX_ENV",
    "NAMESPACE_KINDS", "_config_from", "_dir_size", "_ns_inode", "_number", "_pipe", "_resolv_conf", "_winsize",
]
