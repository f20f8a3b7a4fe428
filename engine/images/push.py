"""Pushing an image from the store to an OCI distribution registry (``push``).

The protocol, blob by blob (the layers bottom first, then the config), then
the manifest:

* ``HEAD /v2/<repo>/blobs/<digest>``: a blob the repository has already is
  not sent again ("Layer already exists").
* A blob that another repository of the same registry holds (this store
  pulled it from there or pushed it there: :func:`.pull.origins`) is
  *mounted*: ``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>``;
  ``201 Created`` means the registry linked it without a byte sent ("Mounted
  from <other>"); ``202`` means it would not, and the upload it opened
  instead is used.
* Otherwise an upload: ``POST /v2/<repo>/blobs/uploads/`` opens one, and a
  blob up to ``CONTAINER_LAB_PUSH_CHUNK`` bytes (default 16 MiB) goes in one
  ``PUT <location>?digest=...`` (a monolithic upload); a bigger one in
  ``PATCH`` requests of that size (``Content-Range: start-end``, each answer
  naming the next location), closed by an empty ``PUT ...?digest=``. The
  registry checks the digest before it keeps the blob.
* ``PUT /v2/<repo>/manifests/<tag>`` with the manifest's own bytes and media
  type; the registry answers its digest, which must be ours.

Authentication is :class:`.registry.Registry`'s: the token asked for has the
scope ``repository:<repo>:pull,push`` (plus ``repository:<other>:pull`` for
a mount); a Basic registry gets the credentials ``login`` stored.

What is sent is what the store keeps: every image in it holds the blob of
each layer exactly as it came (``pull`` and ``load`` keep the registry's or
the archive's blob; the built-in ``lab`` image keeps the deterministic tar
it was made from, see :mod:`engine.images.layer`). Nothing is recompressed,
so the manifest sent is the stored one, byte for byte: the digest ``push``
prints is the local image's digest, and pulling it back gives the same image
id. A blob the store lacks is an error naming the layer, never a guess.

An interrupted push (a network cut, Ctrl-C, a kill) leaves the registry
with the blobs that were complete -- it keeps none that failed its digest
check -- and the unfinished upload, which it expires after a while.
Pushing again sends only what is missing, and a blob sent in chunks goes on
from the last chunk the registry took: its upload's location is noted in
the store after each chunk (:mod:`.uploads`), and the next push asks the
registry how much it holds (``GET <location>`` -> ``204``, ``Range: 0-N``)
and sends from byte N+1 ("Resuming upload at ..."). A registry that has
forgotten the upload (``404``), or answers a range that is no part of the
blob, gets the blob afresh. The note goes once the blob is committed.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Callable

from engine.errors import ImageError, InvalidArgument
from engine.images import uploads
from engine.images.pull import origins, registry_for, remember_origins
from engine.images.registry import Registry, RegistryError, Unreachable, locate

CHUNK = 16 << 20                # bytes: a blob up to this goes in one PUT, a bigger one in PATCHes this size
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
MOUNT_TRIES = 3                 # other repositories asked to lend a blob, at most


def chunk_from_env() -> int:
    """The upload chunk size (``CONTAINER_LAB_PUSH_CHUNK``, bytes, at least 64 KiB)."""
    raw = os.environ.get("CONTAINER_LAB_PUSH_CHUNK", "").strip()
    if not raw:
        return CHUNK
    if not raw.isdigit() or int(raw) < 1 << 16:
        raise InvalidArgument(f"CONTAINER_LAB_PUSH_CHUNK must be a number of bytes, at least 65536, not {raw[:40]!r}")
    return int(raw)


def push(store, ref: str, progress: Callable[[dict], None] | None = None, *,
         registry: Registry | None = None) -> dict:
    """Push the image ``ref`` (``NAME[:TAG]``, the tag ``latest`` if none) to
    the registry its name starts with (Docker Hub for a plain name). Returns
    {"ref", "tag", "digest", "size"} of the manifest pushed.

    ``progress`` gets ``{"event": ...}`` dicts: ``repository`` (where it goes),
    then per layer ``exists``, ``mounted`` (``from``), ``pushing`` (bytes so
    far) and ``pushed``, and ``manifest`` at the end."""
    from engine.images.reference import parse_reference

    say = progress or (lambda _event: None)
    r = parse_reference(ref)
    if r.digest:
        raise InvalidArgument(f"push a tag, not a digest: {r.name}:TAG (container-lab tag can give it one)")
    image = store.resolve(str(r))
    manifest, _config = store.manifest_and_config(image)
    media = manifest.get("mediaType") or MANIFEST_TYPES[0]
    if media not in MANIFEST_TYPES:
        raise ImageError(f"{r} has a manifest of type {media!r}, which cannot be pushed")
    host, repository = locate(r.name)
    reg = registry or registry_for(host)
    chunk = chunk_from_env()
    blobs = [*manifest["layers"], manifest["config"]]
    files = {}
    with store.reading():          # opened under the lock: a removal meanwhile cannot take them away
        manifest_bytes = store.blob_path(image.digest).read_bytes()
        for i, d in enumerate(blobs):
            if d["digest"] in files:
                continue
            try:
                files[d["digest"]] = open(store.blob_path(d["digest"]), "rb")
            except FileNotFoundError:
                for f in files.values():
                    f.close()
                what = "config" if i == len(blobs) - 1 else f"layer {i + 1} of {len(blobs) - 1}"
                raise ImageError(f"the store lacks the blob of {r}'s {what} ({d['digest'][:19]}...): remove "
                                 "the image and pull or load it again") from None
    say({"event": "repository", "name": f"{host}/{repository}", "endpoint": reg.label})
    scope = f"repository:{repository}:pull,push"
    try:
        done: set[str] = set()
        for i, d in enumerate(blobs):
            if d["digest"] in done:
                continue
            kind = "config" if i == len(blobs) - 1 else "layer"
            _push_blob(reg, store, host, repository, scope, d, files[d["digest"]], chunk,
                       lambda event, kind=kind: say({**event, "kind": kind}))
            done.add(d["digest"])
    finally:
        for f in files.values():
            f.close()
    digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    with reg.deadline(f"an answer to the manifest of {repository}:{r.tag}", len(manifest_bytes)), \
            reg.request("PUT", f"{repository}/manifests/{r.tag}", scope, body=manifest_bytes,
                        headers={"Content-Type": media}, what=f"the manifest {repository}:{r.tag}") as resp:
        said = resp.headers.get("Docker-Content-Digest")
    if said and said != digest:
        raise RegistryError(f"the registry {reg.label} stored the manifest of {repository}:{r.tag} under "
                            f"{said[:80]}, not {digest}")
    remember_origins(store, host, repository, [d["digest"] for d in blobs])
    say({"event": "manifest", "tag": r.tag, "digest": digest, "size": len(manifest_bytes)})
    return {"ref": str(r), "tag": r.tag, "digest": digest, "size": len(manifest_bytes)}


def _push_blob(reg: Registry, store, host: str, repository: str, scope: str, d: dict, f, chunk: int, say) -> None:
    digest, size = d["digest"], d["size"]
    if os.fstat(f.fileno()).st_size != size:
        raise ImageError(f"the stored blob {digest[:19]}... is {os.fstat(f.fileno()).st_size} bytes, its "
                         f"descriptor says {size}: the store is damaged")
    with reg.deadline(f"an answer about the blob {digest[:19]}"), \
            reg.request("HEAD", f"{repository}/blobs/{digest}", scope, expect=(404,),
                        what=f"the blob {digest[:19]}") as resp:
        status = getattr(resp, "status", None) or resp.code
    if status == 200:
        say({"event": "exists", "digest": digest})
        return
    location, offset = None, 0
    resumed = _resume(reg, store, host, repository, scope, d, say) if size > chunk else None
    if resumed:
        location, offset = resumed
    for source in [] if resumed else [s for s in origins(store, host, digest) if s != repository][:MOUNT_TRIES]:
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        with reg.deadline(f"an answer to mounting the blob {digest[:19]}"), \
                reg.request("POST", f"{repository}/blobs/uploads/?{query}", f"{scope} repository:{source}:pull",
                            body=b"", headers={"Content-Length": "0"}, what=f"mounting {digest[:19]}") as resp:
            status = getattr(resp, "status", None) or resp.code
            location = resp.headers.get("Location")
        if status == 201:
            say({"event": "mounted", "digest": digest, "from": source})
            return
        if location:
            break                   # not lent: the upload it opened instead is ours
    if not location:
        with reg.deadline(f"an answer to starting an upload of {digest[:19]}"), \
                reg.request("POST", f"{repository}/blobs/uploads/", scope, body=b"",
                            headers={"Content-Length": "0"}, what="a new upload") as resp:
            location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"the registry {reg.label} opened an upload without saying where (no Location)")
    location = _absolute(reg, location)
    sent = _Counted(f, size, lambda n: say({"event": "pushing", "digest": digest, "bytes": n, "size": size}))
    if size <= chunk:
        f.seek(0)
        with reg.deadline(f"an answer to the upload of {digest[:19]} ({size} bytes)", size), \
                reg.request("PUT", _with_digest(location, digest), scope, body=lambda: sent.rewound(),
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                            what=f"the upload of {digest[:19]}"):
            pass
    else:
        sent.report(offset)
        while offset < size:
            n = min(chunk, size - offset)
            data = os.pread(f.fileno(), n, offset)
            if len(data) != n:
                raise ImageError(f"the stored blob {digest[:19]}... ended early: the store is damaged")
            with reg.deadline(f"an answer to a part of {digest[:19]} ({n} bytes)", n), \
                    reg.request("PATCH", location, scope, body=data,
                                headers={"Content-Type": "application/octet-stream", "Content-Length": str(n),
                                         "Content-Range": f"{offset}-{offset + n - 1}"},
                                what=f"the upload of {digest[:19]}") as resp:
                following = resp.headers.get("Location")
            if not following:
                raise RegistryError(f"the registry {reg.label} took a part of {digest[:19]} without saying "
                                    "where the next goes (no Location)")
            location = _absolute(reg, following)
            offset += n
            uploads.note(store, host, repository, digest, location, offset)     # a push cut now resumes here
            sent.report(offset)
        with reg.deadline(f"an answer to the end of the upload of {digest[:19]}"), \
                reg.request("PUT", _with_digest(location, digest), scope, body=b"",
                            headers={"Content-Length": "0"}, what=f"the upload of {digest[:19]}"):
            pass
        uploads.forget(store, host, repository, digest)
    say({"event": "pushed", "digest": digest})


def _resume(reg: Registry, store, host: str, repository: str, scope: str, d: dict, say) -> tuple[str, int] | None:
    """Where an upload of ``d`` that an earlier push left part-way goes on,
    and from which byte -- as the registry says it (``GET`` on the upload:
    ``204``, ``Range: 0-<last byte held>``); None (the note dropped) when
    there is none, or the registry has forgotten it or holds a range that
    is no part of this blob: the blob is then sent from the start."""
    digest, size = d["digest"], d["size"]
    note = uploads.saved(store, host, repository, digest)
    if note is None:
        return None
    try:
        location = _absolute(reg, note["location"])
        if urllib.parse.urlsplit(location).netloc != urllib.parse.urlsplit(reg.base).netloc:
            raise RegistryError("the note names another host")     # not the registry's: never followed
        with reg.deadline(f"an answer about the unfinished upload of {digest[:19]}"), \
                reg.request("GET", location, scope, expect=(400, 404, 410, 416),
                            what=f"the unfinished upload of {digest[:19]}") as resp:
            status = getattr(resp, "status", None) or resp.code
            held, following = resp.headers.get("Range", ""), resp.headers.get("Location")
    except Unreachable:
        raise
    except RegistryError:
        status, held, following = 0, "", None
    start, _, last = held.partition("-")
    if status not in (200, 204) or start != "0" or not last.isdigit() or not 0 < int(last) + 1 <= size \
            or int(last) == 0:
        uploads.forget(store, host, repository, digest)
        say({"event": "restarting", "digest": digest, "size": size})
        return None
    offset = int(last) + 1
    say({"event": "resuming", "digest": digest, "bytes": offset, "size": size})
    return _absolute(reg, following or location), offset


def _absolute(reg: Registry, location: str) -> str:
    url = urllib.parse.urljoin(reg.base + "/", location)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RegistryError(f"the registry {reg.label} named an unusable upload location: {location[:120]!r}")
    return url


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})


class _Counted:
    """A stored blob read by the HTTP client, its progress reported every few MB."""

    EVERY = 4 << 20

    def __init__(self, f, size: int, report: Callable[[int], None]):
        self.f, self.size, self.report = f, size, report
        self.count = self.reported = 0

    def rewound(self) -> _Counted:
        self.f.seek(0)
        self.count = self.reported = 0
        return self

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n is not None and n >= 0 else 1 << 20)
        self.count += len(data)
        if self.count - self.reported >= self.EVERY:
            self.reported = self.count
            self.report(self.count)
        return data
