"""How the cgroup tree appears inside a container: the mount(2) calls and
symlinks the runtime makes at /sys/fs/cgroup (which ones, per layout, each
driver's ``container_mounts()`` says)."""

from __future__ import annotations

from dataclasses import dataclass

# mount(2) flags, as plain numbers so the runtime can pass them straight on.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
RO_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC


@dataclass(frozen=True)
class Mount:
    """One mount(2) call, with ``target`` relative to the container's root.

    ``flags`` are the final ones. A tmpfs that must hold mount points and
    symlinks is mounted writable first and remounted read-only at the end
    (runc does the same).
    """

    source: str
    target: str
    fstype: str
    flags: int
    data: str

    def as_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "fstype": self.fstype,
                "flags": self.flags, "data": self.data}


@dataclass(frozen=True)
class Symlink:
    """A symlink ``link`` (relative to the container's root) pointing at ``target``."""

    target: str
    link: str

    def as_dict(self) -> dict:
        return {"symlink": self.target, "target": self.link}
