"""The build cache: what each step of a build produced, found again by a
key, so an unchanged rebuild runs nothing.

The key is docker's classic builder's: the key of the state the step
starts from -- itself a chain back to the base image's id (or ``scratch``)
-- plus the instruction as it will be recorded (variables expanded; a
``RUN`` with the build args in scope), plus, for ``COPY`` and ``ADD``, a
checksum of the files copied: each one's path under the destination, type,
mode, symlink target and the sha256 of its content. So changing one copied
file misses that step and every step after it, and nothing before.

An entry (``DATA_DIR/build-cache/<key>.json``) holds the image state after
the step: the whole OCI config (history and diff_ids included) and the
layer descriptors. It serves only while the store still holds every one of
those layers -- an ``rmi`` that removed them makes it a miss (and the
entry is deleted), and the step runs again. The layers themselves live in the image store like any others
(an image built from them keeps them). Entries are written whole and
renamed into place, so two builds at once can only both write the same thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from engine.paths import ensure_private_dir

from .state import State


def chain_key(parent: str, *parts) -> str:
    """The key of a step: its parent's key and what the step is."""
    data = json.dumps([parent, *parts], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    """Step results under ``root`` (``data_dir()/build-cache``)."""

    def __init__(self, root: Path, store):
        self.root = Path(root)
        self.store = store

    def get(self, key: str) -> State | None:
        """The state a step with ``key`` produced, if it is here and its layers are too."""
        try:
            data = json.loads((self.root / f"{key}.json").read_bytes())
            state = State(config=data["config"], layers=data["layers"], key=key)
            diff_ids = state.config["rootfs"]["diff_ids"]
            if len(diff_ids) != len(state.layers):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for diff_id, desc in zip(diff_ids, state.layers):
            if not (self.store.layers / diff_id.removeprefix("sha256:")).is_dir() \
                    or not self.store.blob_path(desc["digest"]).is_file():
                try:
                    (self.root / f"{key}.json").unlink()      # its layers are gone for good
                except OSError:
                    pass
                return None
        return state

    def put(self, key: str, state: State) -> None:
        """Remember ``state`` as what the step ``key`` produced (best effort:
        a cache that cannot be written makes the next build slower, no more)."""
        try:
            ensure_private_dir(self.root)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".entry-")
            with os.fdopen(fd, "w") as f:
                json.dump({"config": state.config, "layers": state.layers}, f, sort_keys=True,
                          separators=(",", ":"))
            os.rename(tmp, self.root / f"{key}.json")
        except OSError:
            try:
                os.unlink(tmp)
            except (OSError, UnboundLocalError):
                pass
