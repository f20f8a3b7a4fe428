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
    one, and none may have the host's interpreter as its executable."""
    from . import Supervisor

    try:
        sealed.reexec_sealed()
    except OSError as e:
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
        outside = enter_rootless() if not paths.is_root() else None
        sup = Supervisor(paths.state_dir(), paths.data_dir(), idle_timeout=idle)
        sup.outside = outside
        sup.listen()
    except (OSError, EngineError) as e:
        print(f"container-lab supervisor: cannot start: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if ready_w >= 0:
        os.write(ready_w, b"1")
        os.close(ready_w)
    sup.serve()


def enter_rootless():
    """Not root: become root of a user namespace of this user's (their own
    uid and, with a subordinate range, 65,535 more), where the engine may
    mount, make namespaces and own image files (see :mod:`engine.userns`).
    The state and data dirs stay this user's (the host's view of who we are
    is kept: :func:`engine.paths.is_root` stays False). Returns the socket of
    a helper left outside it (:func:`engine.userns.outside_helper`), or None
    where there is no pasta to run."""
    from .. import userns

    why = userns.restriction_reason()
    if why:
        raise EngineError(f"{why}: rootless containers need them (see `container-lab doctor`)")
    outside = userns.outside_helper() if userns.pasta_path() else None
    try:
        userns.enter_new(userns.plan())
    except OSError as e:
        raise EngineError(str(e.strerror or e)) from None
    return outside

