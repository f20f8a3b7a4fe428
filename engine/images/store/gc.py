"""The second half of a removal: deleting what no tag and no container
still needs -- blobs, unpacked layers, their recorded sizes, and the
id-shifted copies made for private user namespaces. Called with the store's
exclusive lock held (by :meth:`.ImageStore.remove` and
:meth:`.ImageStore.collect_garbage`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def sweep(store, repos: dict[str, str], keep: frozenset[str] | set[str] = frozenset()) -> int:
    """Delete every blob and layer that no manifest in ``repos`` reaches,
    except the layer directories named in ``keep``; return the bytes freed."""
    blobs, layers = set(), {f"sha256:{name}" for name in keep}
    freed = 0
    for digest in set(repos.values()):
        try:
            manifest, config = store._read_image(digest)
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # cannot tell what a damaged image needs: delete nothing
        blobs |= {digest, manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
        layers |= set(config["rootfs"]["diff_ids"])
    for blob in store.blobs.iterdir():
        if "sha256:" + blob.name not in blobs:
            freed += blob.stat().st_size
            blob.unlink()
    for d in store.layers.iterdir():
        if "sha256:" + d.name not in layers:
            freed += store.layer_size(d)
            # Out of sight first, so a crash mid-delete leaves debris in
            # tmp/ (cleared by the next writer), never a half layer.
            doomed = Path(tempfile.mkdtemp(dir=store.tmp)) / d.name
            os.rename(d, doomed)
            shutil.rmtree(doomed.parent)
    for f in store.sizes.iterdir():
        if "sha256:" + f.name not in layers:
            f.unlink()
    shifted = store.root / "userns"
    for d in (shifted.glob("*/*") if shifted.is_dir() else ()):
        if "sha256:" + d.name not in layers:
            doomed = Path(tempfile.mkdtemp(dir=store.tmp)) / d.name
            os.rename(d, doomed)
            shutil.rmtree(doomed.parent)
    return freed
