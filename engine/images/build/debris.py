"""What a build that was killed outright (SIGKILL, a power cut) left: the
temporary names of its intermediate images and its RUN containers.

A build holds a flock on ``DATA_DIR/build-cache/running/<token>`` for as
long as it runs, and appends there each temporary name it gives. The next
build looks at the files whose lock nobody holds: their names are dropped
(:meth:`ImageStore.untag`), the containers labelled with their token
removed, the file deleted. A build that ends normally cleans up after
itself and leaves nothing here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from engine.errors import EngineError
from engine.paths import ensure_private_dir


class Running:
    """This build's entry in ``running/``: locked until :meth:`close`."""

    def __init__(self, root: Path, token: str):
        self.dir = root / "running"
        self.path = self.dir / token
        self.fd = -1
        with contextlib.suppress(OSError):
            ensure_private_dir(root)
            ensure_private_dir(self.dir)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def note(self, name: str) -> None:
        """Remember a temporary name, before it is given."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.fd, (name + "\n").encode())

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = -1


def sweep(root: Path, store, client, label: str) -> None:
    """Clear what dead builds left (see the module's docstring); best effort."""
    running = root / "running"
    try:
        entries = list(running.iterdir())
    except OSError:
        return
    for path in entries:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue                    # a build that runs
            names = [n for n in Path(path).read_text(errors="replace").split("\n") if n]
            with contextlib.suppress(EngineError):
                if names:
                    store.untag(names)
                for c in client.ps(all=True):
                    if (c.get("labels") or {}).get(label) == path.name:
                        with contextlib.suppress(EngineError):
                            client.remove(c["id"], force=True)
                os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)
