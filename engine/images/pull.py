"""Pulling images into the store: from which registry, in which order, and
what is said meanwhile.

- :func:`endpoints` -- where an image's registry is spoken to: for Docker
  Hub images the configured mirrors first, in order, then Hub itself (as
  docker's ``registry-mirrors``); for any other registry that registry, over
  plain HTTP when it is loopback or named ``insecure``
  (:mod:`engine.images.config`); each with the credentials ``login`` stored
  (:mod:`engine.images.auth`).
- :func:`pull` -- one image, by tag or by digest: its manifest (the host's
  platform out of an index), config and layers, each checked against its
  digest; layers the store has are not fetched again; nothing is stored
  unless all of it arrived. A mirror that fails hands over to the next
  endpoint; the last one's error is the one reported.
- :func:`ensure_image` -- what ``run`` and ``create`` do first
  (``--pull missing|always|never``), and :class:`Report`, docker's lines
  for a pull (``latest: Pulling from library/ubuntu``, ``...: Pull
  complete``, ``Digest: ...``, ``Status: ...``), shared by ``pull``,
  ``run`` (on stderr) and the course.
- :func:`probe` -- whether an image could be pulled now, asked by the
  course before it falls back to the built-in image.

The registry protocol itself is :mod:`engine.images.registry`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images.registry import (
    DOCKER_HUB,
    INDEXES,
    MANIFESTS,
    Registry,
    RegistryError,
    Unreachable,
    locate,
)

MAX_CONFIG = 16 << 20           # bytes: an image config is JSON, usually a few kB
PROBE_TIMEOUT = 3.0             # seconds the course waits to learn whether a registry answers
ORIGINS = "origins.json"        # in the store: which repositories of which registry hold each blob
MAX_ORIGINS = 4096              # blobs remembered per registry


def registry_for(host: str, settings=None) -> Registry:
    """The registry ``host`` itself (never a mirror: ``push`` and ``login`` go there)."""
    from engine.images import auth, config

    settings = settings if settings is not None else config.load()
    if host == DOCKER_HUB:
        return Registry(DOCKER_HUB, endpoint=config.hub_endpoint(), credentials=auth.lookup(DOCKER_HUB))
    return Registry(host, insecure=settings.is_insecure(host), credentials=auth.lookup(host))


def endpoints(host: str, settings=None) -> list[Registry]:
    """Where to pull an image of ``host`` from, in order: a Docker Hub
    image's mirrors, then the registry itself."""
    from engine.images import auth, config

    settings = settings if settings is not None else config.load()
    out = []
    if host == DOCKER_HUB:
        import urllib.parse

        for url in settings.mirrors:
            netloc = urllib.parse.urlsplit(url).netloc
            out.append(Registry(netloc, endpoint=url, credentials=auth.lookup(netloc)))
    out.append(registry_for(host, settings))
    return out


def pull(store, ref: str, progress: Callable[[dict], None] | None = None, *,
         registry: Registry | None = None) -> dict:
    """Pull ``ref`` (``NAME[:TAG]`` or ``NAME@DIGEST``) into ``store``; returns
    {"ref", "digest", "id", "new": whether any layer was downloaded, "host":
    the endpoint that served it}.

    ``progress`` gets ``{"event": ...}`` dicts: ``resolved`` (the manifest),
    then per layer ``exists`` or ``downloading`` (bytes so far) and ``done``;
    ``fallback`` when a mirror failed and the next endpoint is tried.
    ``registry``: that one only (no mirrors)."""
    from engine.images.reference import parse_reference

    say = progress or (lambda _event: None)
    r = parse_reference(ref)
    host, repository = locate(r.name)
    tried = [registry] if registry is not None else endpoints(host)
    failures: list[RegistryError | ImageNotFound] = []
    for i, reg in enumerate(tried):
        try:
            return _pull_from(store, r, host, repository, reg, say)
        except (RegistryError, ImageNotFound) as e:
            failures.append(e)
            if i == len(tried) - 1:
                break
            say({"event": "fallback", "from": reg.label, "to": tried[i + 1].label,
                 "error": str(e).split(" (offline?")[0]})
    if len(failures) > 1 and all(isinstance(e, Unreachable) for e in failures):
        raise Unreachable("; ".join(str(e).split(" (offline?")[0] for e in failures) +
                          " (offline? a classroom can `load` a saved image)",
                          where=", ".join(e.where for e in failures), reason="; ".join(e.reason for e in failures))
    if len(failures) > 1 and isinstance(failures[-1], Unreachable):
        raise failures[-2]       # the mirror's answer says more than an unreachable Hub
    raise failures[-1]


def _pull_from(store, r, host: str, repository: str, reg: Registry, say) -> dict:
    from engine.images.limits import check_declared_sizes, check_free_space, limits_from_env

    reference = r.digest or r.tag or "latest"
    body, manifest, digest = reg.image_manifest(repository, reference)
    say({"event": "resolved", "repository": repository, "host": host, "endpoint": reg.label, "digest": digest,
         "layers": len(manifest["layers"])})
    new = False
    config = manifest["config"]
    if config["size"] > MAX_CONFIG:
        raise RegistryError(f"the config of {repository}:{reference} is larger than {MAX_CONFIG >> 20} MiB")
    limits = limits_from_env()
    check_declared_sizes(manifest["layers"], limits, f"{repository}:{reference}")
    # The download, then at least as much again unpacked, must fit.
    missing = {d["digest"]: d["size"] for d in manifest["layers"] if not store.blob_path(d["digest"]).is_file()}
    check_free_space(store.root, limits, f"pulling {repository}:{reference}", 2 * sum(missing.values()))
    with store.work_dir("pull-") as area:
        reg.blob(repository, config, area / "config")
        files: dict[str, Path] = {}
        for d in manifest["layers"]:
            if d["digest"] in files:
                continue
            have = store.blob_path(d["digest"])
            if have.is_file():
                files[d["digest"]] = have
                say({"event": "exists", "digest": d["digest"]})
                continue
            dest = area / d["digest"].removeprefix("sha256:")
            reg.blob(repository, d, dest, lambda n, d=d: say({"event": "downloading", "digest": d["digest"],
                                                                "bytes": n, "size": d["size"]}))
            files[d["digest"]] = dest
            new = True
            say({"event": "done", "digest": d["digest"]})
        image = store.add_image(str(r), body, (area / "config").read_bytes(), files)
    remember_origins(store, host, repository, [config["digest"], *(d["digest"] for d in manifest["layers"])])
    return {"ref": str(r), "digest": digest, "id": image.id, "new": new, "host": reg.label}


# -- which repositories hold a blob (for push's cross-repository mounts) ------------------

def remember_origins(store, host: str, repository: str, digests: list[str]) -> None:
    """Note that ``repository`` of ``host`` holds ``digests`` (pulled from it
    or pushed to it), so a push to another repository of ``host`` can ask for
    a mount instead of sending them. Advisory: a lost or stale note only
    means a blob is sent after all."""
    path = Path(store.root) / ORIGINS
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    seen = data.get(host) if isinstance(data.get(host), dict) else {}
    for digest in digests:
        repos = [x for x in seen.pop(digest, []) if isinstance(x, str) and x != repository]
        seen[digest] = [repository, *repos][:8]
    while len(seen) > MAX_ORIGINS:
        seen.pop(next(iter(seen)))
    data[host] = seen
    try:
        fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="origins-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.rename(tmp, path)
    except OSError:
        pass


def origins(store, host: str, digest: str) -> list[str]:
    """The repositories of ``host`` known to hold the blob ``digest``, most recent first."""
    try:
        data = json.loads((Path(store.root) / ORIGINS).read_bytes())
        repos = data[host][digest]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [x for x in repos if isinstance(x, str)] if isinstance(repos, list) else []


# -- run and create: the image first ------------------------------------------------------

POLICIES = ("missing", "always", "never")


def ensure_image(store, ref: str, policy: str = "missing", report: Report | None = None) -> dict | None:
    """Make sure ``ref`` is in ``store`` before a container is made of it, as
    ``docker run --pull POLICY`` does: ``missing`` pulls it when it is not
    here, ``always`` pulls it anyway (a newer image under the tag), ``never``
    refuses when it is not here. Returns what :func:`pull` returned, or None
    when nothing was pulled. The built-in ``lab`` image is made here, never pulled.

    ``report`` says docker's lines: "Unable to find image ... locally" once
    the registry has answered, then the pull's. A failure is one line saying
    the image is not here and why the registry could not give it."""
    from engine.images.reference import parse_reference
    from engine.images.store import LAB_REF

    if policy not in POLICIES:
        raise InvalidArgument(f"invalid pull option: {policy!r}: must be one of \"missing\", \"always\" or \"never\"")
    r = parse_reference(ref)
    if str(r) == LAB_REF:
        return None
    try:
        store.find(ref)             # a name, or an image id (an untagged image's only handle)
        here = True
    except ImageNotFound:
        here = False
    if here and policy != "always":
        return None
    if not here and policy == "never":
        raise ImageNotFound(f"No such image: {r}")
    report = report or Report(str(r), lambda _line: None)
    report.ref = str(r)
    if not here:
        report.announce = f"Unable to find image '{r}' locally"
    missing = f"Unable to find image '{r}' locally, and " if not here else f"cannot pull {r}: "
    try:
        result = pull(store, str(r), report)
    except Unreachable as e:
        raise Unreachable(f"{missing}the registry {e.where} cannot be reached ({e.reason})",
                          where=e.where, reason=e.reason) from None
    except ImageNotFound as e:
        raise ImageNotFound(f"{missing}the registry does not have it ({e})") from None
    except RegistryError as e:
        raise RegistryError(f"{missing}pulling it failed: {e}") from None
    report.finish(result, fresh=result["new"] or not here)
    return result


class Report:
    """docker's lines for a pull of ``ref``, from :func:`pull`'s events:
    ``line(text)`` gets each finished line; ``progress(text)`` (if given) a
    line of progress to show in place of the last one (a terminal's), and
    ``done()`` clears it; ``quiet`` keeps only errors. ``announce``: a line
    said first, once the registry has answered."""

    def __init__(self, ref: str, line: Callable[[str], None], progress: Callable[[str], None] | None = None, *,
                 quiet: bool = False, done: Callable[[], None] | None = None):
        self.ref = ref
        self.quiet = quiet
        self._line = line
        self.progress = progress or (lambda _text: None)
        self.done = done or (lambda: None)
        self.shown: set[str] = set()
        self.announce: str | None = None

    def line(self, text: str) -> None:
        self.done()
        if self.quiet:
            return
        if self.announce:
            announce, self.announce = self.announce, None
            self._line(announce)
        self._line(text)

    def __call__(self, event: dict) -> None:
        from engine.spec import human_size

        short = event.get("digest", "").removeprefix("sha256:")[:12]
        kind = event["event"]
        if kind == "resolved":
            name, at, digest = self.ref.partition("@")
            self.line(f"{digest if at else name.rpartition(':')[2]}: Pulling from {event['repository']}")
        elif kind == "fallback":
            self.line(f"{event['from']}: {event['error']}; trying {event['to']}")
        elif kind == "downloading":
            if not self.quiet:
                self.progress(f"{short}: Downloading {human_size(event['bytes'])}/{human_size(event['size'])}")
        elif kind in ("exists", "done") and short not in self.shown:
            self.shown.add(short)
            self.line(f"{short}: {'Already exists' if kind == 'exists' else 'Pull complete'}")

    def finish(self, result: dict, *, fresh: bool) -> None:
        self.line(f"Digest: {result['digest']}")
        self.line(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {result['ref']}")


# -- the course: could it be pulled? --------------------------------------------------------

def probe(ref: str, timeout: float = PROBE_TIMEOUT) -> tuple[str, str]:
    """Whether ``ref`` could be pulled now: ("available", endpoint),
    ("absent", the registries asked) -- they answered, without it -- or
    ("unreachable", the registries asked). One quick manifest request per
    endpoint (``HEAD``: no pull counted against Docker Hub's limits)."""
    from engine.images.reference import parse_reference

    r = parse_reference(ref)
    host, repository = locate(r.name)
    answered: list[str] = []
    regs = endpoints(host)
    for reg in regs:
        reg.timeout = timeout
        try:
            with reg.deadline(f"the manifest {repository}"), \
                    reg.request("HEAD", f"{repository}/manifests/{r.digest or r.tag}", f"repository:{repository}:pull",
                                accept=INDEXES + MANIFESTS, expect=(404,)) as resp:
                status = getattr(resp, "status", None) or resp.code
        except Unreachable:
            continue
        except (RegistryError, ImageError):
            answered.append(reg.label)          # it answered, but not with the image (401 for no such repository)
            continue
        if 200 <= status < 300:
            return "available", reg.label
        answered.append(reg.label)
    if answered:
        return "absent", ", ".join(answered)
    return "unreachable", ", ".join(reg.label for reg in regs)
