"""The requests that remove things wholesale: ``container prune`` (stopped
containers), ``gc`` (what crashed runs left behind) and ``rmi`` / ``image
prune`` (images, checked against every container the supervisor knows).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..container import Container
from ..errors import CgroupError, EngineError


class Cleanup:
    """prune, gc and rmi."""

    def op_prune(self, conn, msg, fds):
        """Remove every stopped container."""
        removed = []
        for c in list(self.containers.values()):
            if c.status.can_remove():
                size = _dir_size(c.dir / "upper")
                self.remove(c)
                removed.append({"id": c.id, "size": size})
        return {"removed": removed}, []

    def op_gc(self, conn, msg, fds):
        """Remove what crashed runs left: container dirs with no record, cgroups
        of containers that are not running, half-written files."""
        import shutil

        swept = []
        known = {c.id for c in self.containers.values()}
        for cdir in sorted(self.containers_dir.iterdir()):
            if cdir.name not in known and not (cdir / "container.json").exists():
                self.remove_debris(cdir)
                swept.append(f"container dir {cdir}")
                continue
            if cdir.name not in known:          # a record damaged since the supervisor started
                try:
                    Container.load(cdir)
                except (OSError, ValueError) as e:
                    self.set_aside(cdir, e)
                    continue
            for tmp in cdir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                swept.append(f"temp file {tmp}")
        damaged = self.data / "damaged"
        for entry in sorted(damaged.iterdir()) if damaged.is_dir() else []:
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(f"damaged record {entry.name.rsplit('.', 1)[0]}")
        running = {c.id for c in self.containers.values() if c.status in ("running", "starting")}
        for cid in self.cgroups.list_ids(self.cgroup_parent):
            if cid.startswith("seat-"):        # a seat's cgroup: its containers' parent (seats.py)
                continue
            if cid not in running:
                try:
                    self.cgroups.open(cid, parent=self.cgroup_parent).destroy()
                    swept.append(f"cgroup {self.cgroup_parent}/{cid}")
                except CgroupError:
                    pass
        for kind, items in self.sweep_networks().items():
            swept += [f"{kind[:-1] if kind.endswith('s') else kind} {item}" for item in items]
        return {"swept": swept}, []

    def op_rmi(self, conn, msg, fds):
        """Remove images (``rmi``, ``image rm``) or the unused ones (``image
        prune``). Here, not in the client: only the supervisor knows every
        container -- created, running, or half-built by a start in flight --
        and it handles one request at a time, so no container can take an
        image's layers between the check of what is in use and the delete.

        ``images``: references or ids; ``force``: untag even when a
        container uses it (the image stays, untagged, for the container;
        an id with several names takes it too); ``prune``: remove every
        dangling image no container uses -- with ``all``, every image no
        container uses -- then what nothing needs. Returns ``results`` (one
        per image: ``untagged`` names and ``deleted`` ids, or ``error``) and
        ``freed`` bytes."""
        keep = {Path(p).name for c in self.containers.values() for p in (c.image.get("layers") or [])}
        used = {}
        for c in sorted(self.containers.values(), key=lambda c: c.created):
            used.setdefault(c.image.get("id"), c.name)
        results, freed = [], 0
        if msg.get("prune"):
            try:
                done = self.store.prune(every=bool(msg.get("all")), keep=keep, used=used)
            except EngineError as e:
                results.append({"image": "", "error": e.message})
            else:
                results.append({"image": "", "untagged": done["untagged"], "deleted": done["deleted"]})
                freed += done["freed"]
        for ref in msg.get("images") or []:
            try:
                done = self.store.delete(ref, keep=keep, used=used, force=bool(msg.get("force")))
                results.append({"image": ref, "untagged": done["untagged"], "deleted": done["deleted"]})
                freed += done["freed"]
            except EngineError as e:
                results.append({"image": ref, "error": e.message})
        self.image_cache.clear()
        return {"results": results, "freed": freed}, []


def _dir_size(path: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(base, f)).st_blocks * 512
            except OSError:
                pass
    return total

