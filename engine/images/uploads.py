"""Chunked uploads that a push left part-way, so that the next push resumes
them where the registry has them instead of sending the blob again.

While :mod:`.push` sends a big blob in ``PATCH`` chunks, it notes after
each chunk the registry took where the upload goes on (the ``Location`` the
registry answered) and how many bytes it holds: one small JSON file per
upload under the store's ``uploads/`` (mode 0600, in the 0700 store),
named by the sha256 of ``host/repository@digest``, written whole and
renamed into place. The note goes once the blob is committed (or the
registry has forgotten the upload).

The next push of that blob to that repository asks the registry
(``GET <location>``: ``204`` with ``Range: 0-<last byte>``) and goes on
from the byte after. Advisory, like ``origins.json``: a lost, stale or
damaged note only means the blob is sent from the start; a note older than
:data:`MAX_AGE` is dropped (registries expire abandoned uploads well before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from engine.images.reference import DIGEST_RE
from engine.paths import ensure_private_dir

DIR = "uploads"
MAX_AGE = 7 * 24 * 3600         # seconds a note is kept


def _path(store, host: str, repository: str, digest: str) -> Path:
    key = hashlib.sha256(f"{host}/{repository}@{digest}".encode()).hexdigest()
    return Path(store.root) / DIR / f"{key}.json"


def saved(store, host: str, repository: str, digest: str) -> dict | None:
    """The note of an unfinished upload of ``digest`` to ``host/repository``:
    {"location", "offset"}, or None (none, too old, or not one of ours)."""
    path = _path(store, host, repository, digest)
    try:
        if time.time() - path.stat().st_mtime > MAX_AGE:
            forget(store, host, repository, digest)
            return None
        note = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("host") != host or note.get("repository") != repository \
            or note.get("digest") != digest or not DIGEST_RE.fullmatch(digest) \
            or not isinstance(note.get("location"), str) or not isinstance(note.get("offset"), int) \
            or isinstance(note.get("offset"), bool) or note["offset"] < 0:
        return None
    return {"location": note["location"], "offset": note["offset"]}


def note(store, host: str, repository: str, digest: str, location: str, offset: int) -> None:
    """Remember that the upload of ``digest`` goes on at ``location``, the
    registry holding ``offset`` bytes of it (best effort)."""
    path = _path(store, host, repository, digest)
    tmp = None
    try:
        ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".note-")
        with os.fdopen(fd, "w") as f:
            json.dump({"host": host, "repository": repository, "digest": digest, "location": location,
                       "offset": offset}, f)
        os.rename(tmp, path)
    except OSError:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def forget(store, host: str, repository: str, digest: str) -> None:
    """Drop the note of the upload of ``digest`` (committed, or gone)."""
    with contextlib.suppress(OSError):
        os.unlink(_path(store, host, repository, digest))
