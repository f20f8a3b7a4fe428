"""The supervisor's entry point: ``python -m engine.supervisor [--daemon]``.
"""

from __future__ import annotations

import os
import sys

from .. import paths, sealed
from ..errors import EngineError


def main() -> None:
    """``python -m engine.supervisor [--daemon]``.

    With ``--daemon`` (how clients start it) the process forks; the parent
    exits 0 once the child listens, or 1 with the child's error on stderr, so
    the client neither polls nor leaves a zombie behind.

    First of all it re-execs itself from a sealed copy of its interpreter
    (:mod:`engine.sealed`): every container process starts as a fork of this
    one, and none may have the host's interpreter as its executable. Not
    root, it makes its user namespace before that (see :func:`enter_rootless`):
    a machine that lets only some programs make one (AppArmor) names the
    interpreter's path, which the sealed copy has not."""
    from . import Supervisor

    try:
        if not paths.is_root() and _in_host_userns():
            enter_rootless()
        sealed.reexec_sealed()
    except (OSError, EngineError) as e:
        print(f"container-lab supervisor: cannot start: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    idle = float(os.environ.get("CONTAINER_LAB_SUPERVISOR_IDLE", "600"))
    ready_r = ready_w = -1
    if "--daemon" in sys.argv[1:]:
        ready_r, ready_w = os.pipe()
        if os.fork():
            os.close(ready_w)
            ok = os.read(ready_r, 1)
            os._exit(0 if ok else 1)
        os.close(ready_r)
        os.setsid()
    try:
        outside = _outside_from_env()
        private_net = outside is not None and _private_network(outside)
        sup = Supervisor(paths.state_dir(), paths.data_dir(), idle_timeout=idle)
        sup.outside, sup.private_net = outside, private_net
        sup.listen()
    except (OSError, EngineError) as e:
        print(f"container-lab supervisor: cannot start: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if ready_w >= 0:
        os.write(ready_w, b"1")
        os.close(ready_w)
    sup.serve()


OUTSIDE_FD = "CONTAINER_LAB_OUTSIDE_FD"       # the engine's own, across its re-exec: the helper's socket


def _in_host_userns() -> bool:
    from .. import userns

    return userns.in_initial()


def _outside_from_env():
    """The socket to the helper outside (made before the re-exec), or None."""
    import socket

    fd = os.environ.pop(OUTSIDE_FD, "")
    if not fd.isdigit():
        return None
    sock = socket.socket(fileno=int(fd))
    sock.set_inheritable(False)
    return sock


def enter_rootless():
    """Not root: become root of a user namespace of this user's (their own
    uid and, with a subordinate range, 65,535 more), where the engine may
    mount, make namespaces and own image files (see :mod:`engine.userns`).
    The state and data dirs stay this user's (the host's view of who we are
    is kept: :func:`engine.paths.is_root` stays False). Where pasta can run,
    a helper is left outside first (:func:`engine.userns.outside_helper`),
    its socket passed on through the re-exec in the environment."""
    from .. import userns

    why = userns.restriction_reason()
    if why:
        raise EngineError(f"{why}: rootless containers need them (see `container-lab doctor`)")
    outside = userns.outside_helper() if userns.pasta_path() and userns.pasta_missing() is None else None
    try:
        userns.enter_new(userns.plan())
    except OSError as e:
        raise EngineError(str(e.strerror or e)) from None
    if outside is not None:                 # kept across the re-exec, for _outside_from_env
        fd = outside.detach()               # (a socket object closes its fd when it goes)
        os.set_inheritable(fd, True)
        os.environ[OUTSIDE_FD] = str(fd)


def _private_network(outside) -> bool:
    """Rootless, as rootlesskit does for Docker: the engine moves into a network
    namespace of its own (its user namespace owns it, so bridges, veth pairs
    and nftables rules can be made there exactly as root makes them on the
    host), which pasta plugs into the host's network -- connections out
    through the user's sockets; the ports containers publish are passed in
    by a pasta of each container's (rootless_net.py). False (the host's
    network, a loopback per container) when that fails."""
    from .. import syscalls as sc
    from .. import userns
    from ..runtime.namespaces import _link_up

    try:
        sc.Syscalls().unshare(sc.CLONE_NEWNET)
        _link_up("lo")
    except OSError:
        return False
    r = userns.run_outside(outside, [userns.pasta_path() or "pasta", "--config-net", "--quiet", "-t", "none",
                                     "-u", "none", "-T", "none", "-U", "none", str(os.getpid())])
    return r["rc"] == 0

