"""Speaking to an OCI distribution registry (Docker Hub by default): its
requests, its authentication, and what pulling reads from it (manifests,
platforms, blobs). What is pulled into the store, and from which endpoint
(mirrors first), is :mod:`engine.images.pull`; pushing is :mod:`engine.images.push`.

The protocol (the OCI distribution spec, which Docker's registry speaks):

* ``GET /v2/<repository>/manifests/<tag or digest>`` with an ``Accept`` of
  every manifest type we read. An image *index* (Docker's "manifest list")
  names one manifest per platform: the host's is picked (``linux`` and this
  machine's architecture), never an attestation manifest.
* ``GET /v2/<repository>/blobs/<digest>`` for the config and each layer; every
  byte is checked against the descriptor's size and sha256 as it arrives.
* A ``401`` names how to authenticate in ``WWW-Authenticate``: ``Bearer
  realm=...,service=...,scope=...`` means "get a token from realm" (anonymous
  pulls get one too); the token then goes with each request to the registry
  host only -- never along a redirect to a blob CDN (so it is added with
  ``add_unredirected_header``). With credentials (``login``), the token
  request carries them (Basic, with ``account=USER``), as docker's does;
  ``Basic realm=...`` means the registry itself wants them on every request.
  Scopes asked for are the challenge's and the request's together, one entry
  per repository (``repository:x:pull,push``; a mount adds ``repository:y:pull``).

Registries on a loopback address (a classroom's mirror, the tests' server) are
spoken to over plain HTTP, as docker does, and those registries.toml calls
``insecure`` (:mod:`engine.images.config`); every other one over HTTPS. A
registry that does not answer at all is :class:`Unreachable`, so a caller can
tell "offline" from "said no".
Every answer is hostile input: sizes are bounded, JSON is checked field by
field, and any mismatch is a one-line :class:`RegistryError`.

Every request has a deadline, not only a timeout per read (which a server
sending a byte every few seconds never trips): the whole answer must arrive
within ``CONTAINER_LAB_PULL_TIMEOUT`` seconds (default 30), plus, for a blob,
its declared size at ``CONTAINER_LAB_PULL_MIN_RATE`` bytes a second (default
32 KiB/s). A watchdog shuts the connection when the time is up.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import platform
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import ImageError, ImageNotFound
from engine.images.reference import DIGEST_RE, Reference
from engine.records import json_object

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)

MAX_MANIFEST = 4 << 20          # bytes: manifests and indexes are small JSON
MAX_TOKEN = 1 << 20
CHUNK = 1 << 16
SEND_BLOCK = 1 << 20            # bytes of an upload handed to the socket at a time (http.client's 8 KiB is slow)
TIMEOUT = 30.0                  # seconds: to connect, and for a whole answer (besides a blob's bytes)
MIN_RATE = 32 << 10             # bytes a second a blob must at least arrive at

# platform.machine() -> the GOARCH (and variant) an image index names.
ARCH = {"x86_64": ("amd64", ""), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "i686": ("386", ""),
        "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


class RegistryError(ImageError):
    """The registry said no, or said something we cannot accept."""


class Unreachable(RegistryError):
    """The registry did not answer at all (offline, a wrong address, nothing
    listening): ``where`` names it, ``reason`` says what the network said."""

    def __init__(self, message: str, *, where: str = "", reason: str = ""):
        super().__init__(message)
        self.where, self.reason = where, reason


def deadlines_from_env() -> tuple[float, float]:
    """(seconds for an answer, bytes a second for a blob) from the environment, or the defaults."""
    out = []
    for var, default in (("CONTAINER_LAB_PULL_TIMEOUT", TIMEOUT), ("CONTAINER_LAB_PULL_MIN_RATE", MIN_RATE)):
        raw = os.environ.get(var, "").strip()
        try:
            value = float(raw) if raw else float(default)
        except ValueError:
            value = -1.0
        if not value > 0 or value != value or value == float("inf"):
            raise ImageError(f"{var} must be a positive number, not {raw[:40]!r}")
        out.append(value)
    return out[0], out[1]


_watched = threading.local()      # the deadline of the request this thread is making


class _Deadline:
    """One request's time limit. Connections made meanwhile (redirects too)
    register their socket; when the time is up, a timer shuts them, which
    ends any read blocked on them at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if not self.expired:
                return
        self._shut(sock)

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _watch(sock) -> None:
    deadline = getattr(_watched, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("blocksize", SEND_BLOCK)
        super().__init__(*args, **kwargs)

    def connect(self):
        super().connect()
        _watch(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("blocksize", SEND_BLOCK)
        super().__init__(*args, **kwargs)

    def connect(self):
        super().connect()
        _watch(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


def locate(name: str) -> tuple[str, str]:
    """(registry host, repository) of a reference's name, docker's way:
    ``ubuntu`` -> (docker.io, library/ubuntu); ``127.0.0.1:5000/x/y`` -> (127.0.0.1:5000, x/y)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return DOCKER_HUB, name if "/" in name else f"library/{name}"


def is_loopback(host: str) -> bool:
    hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def host_platform() -> tuple[str, str]:
    machine = platform.machine()
    return ARCH.get(machine, (machine, ""))


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (a registry may send blobs to a CDN), checked: only
    http(s), and never from https down to http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if new.scheme not in ("http", "https") or (old.scheme == "https" and new.scheme == "http"):
            raise RegistryError(f"the registry redirected to an unsafe address: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Registry:
    """One registry, and the tokens it has granted (per scope).

    ``host`` names it (``127.0.0.1:5000``, ``docker.io``) in messages and in
    the credentials file; ``endpoint`` (a URL) is where it is spoken to when
    that is not the host itself -- a mirror, or a Docker Hub moved for the
    tests. ``credentials`` (user, password) answer a Basic challenge and go to
    the token service of a Bearer one; ``insecure``: plain HTTP beyond
    loopback (:mod:`engine.images.config`)."""

    def __init__(self, host: str, *, endpoint: str | None = None, credentials: tuple[str, str] | None = None,
                 insecure: bool = False, timeout: float | None = None, min_rate: float | None = None):
        self.host = host
        if endpoint:
            self.base = endpoint.rstrip("/")
        else:
            api = DOCKER_HUB_API if host == DOCKER_HUB else host
            self.base = f"{'http' if is_loopback(api) or insecure else 'https'}://{api}"
        self.label = host if not endpoint or urllib.parse.urlsplit(self.base).netloc == host \
            else f"{host} (at {self.base})"
        self.credentials = credentials
        self.basic = False              # it asked for Basic authentication: every request carries it
        env_timeout, env_rate = deadlines_from_env()
        self.timeout = timeout if timeout is not None else env_timeout
        self.min_rate = min_rate if min_rate is not None else env_rate
        self.tokens: dict[str, str] = {}
        self.opener = urllib.request.build_opener(_CheckedRedirects(), _HTTPHandler(), _HTTPSHandler())

    @contextmanager
    def deadline(self, what: str, size: int = 0) -> Iterator[None]:
        """The request made inside ends within the timeout (plus ``size``
        bytes at the minimum rate), or fails with one line that says so."""
        seconds = self.timeout + size / self.min_rate
        deadline, outer = _Deadline(seconds), getattr(_watched, "deadline", None)
        late = RegistryError(f"the registry {self.label} did not send {what} within {seconds:.0f} s (too slow "
                             "or stuck; CONTAINER_LAB_PULL_TIMEOUT and CONTAINER_LAB_PULL_MIN_RATE set the limits)")
        _watched.deadline = deadline
        deadline.timer.start()
        try:
            yield
        except Exception as e:
            if deadline.expired and not (isinstance(e, RegistryError) and "did not send" in str(e)):
                raise late from None
            raise
        finally:
            deadline.timer.cancel()
            _watched.deadline = outer
        if deadline.expired:        # a read cut short by the watchdog may look like the end of the answer
            raise late

    _deadline = deadline

    # -- HTTP ---------------------------------------------------------------
    def request(self, method: str, target: str, scope: str, *, body=None, headers: dict | None = None,
                accept: tuple[str, ...] = (), expect: tuple[int, ...] = (), what: str = ""):
        """Send one request and return the response, authenticating once if asked to.

        ``target``: a path under ``/v2/`` or a whole URL (an upload's
        Location; credentials go only to the registry's own host).
        ``scope``: the access it needs (``repository:x:pull,push``, several
        separated by spaces). ``body``: bytes, or a callable giving them (or a
        file) afresh for each attempt. An answer whose status is in ``expect``
        (404 ...) is returned, not raised; any other error status is a
        one-line :class:`RegistryError` (:class:`ImageNotFound` for 404)."""
        url = target if "://" in target else f"{self.base}/v2/{target}"
        ours = urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(self.base).netloc
        for attempt in (0, 1):
            data = body() if callable(body) else body
            req = urllib.request.Request(url, data=data, method=method)
            req.add_header("User-Agent", "container-lab")
            for key, value in (headers or {}).items():
                req.add_header(key, value)
            if accept:
                req.add_header("Accept", ", ".join(accept))
            sent = self._authorization(scope) if ours else None
            if sent:
                req.add_unredirected_header("Authorization", sent)
            try:
                return self.opener.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 0 and ours:
                    challenge = e.headers.get("WWW-Authenticate", "")
                    e.close()
                    self._authenticate(challenge, scope)
                    continue
                if e.code in expect:
                    return e
                if e.code == 401 and sent and sent.startswith("Basic "):
                    e.close()
                    raise RegistryError(f"the registry {self.label} refused the user name and password of "
                                        f"{self.credentials[0]} (wrong password? log in again: "
                                        f"container-lab login {self.host})") from None
                raise self._http_error(e, what or target) from None
            except urllib.error.URLError as e:
                raise Unreachable(f"cannot reach the registry {self.label}: {_reason(e)} (offline? a classroom "
                                  "can `load` a saved image, or pull from a local mirror)",
                                  where=self.label, reason=_reason(e)) from None
            except (OSError, ValueError, http.client.HTTPException) as e:   # timeouts, resets, a bad URL
                raise RegistryError(f"talking to the registry {self.label} failed: "
                                    f"{getattr(e, 'strerror', None) or e}") from None
        raise RegistryError(f"the registry {self.label} refused the token it gave")

    def _open(self, path: str, scope: str, accept: tuple[str, ...] = ()):
        """GET ``path`` (under /v2/)."""
        return self.request("GET", path, scope, accept=accept)

    def _authorization(self, scope: str) -> str | None:
        if scope in self.tokens:
            return f"Bearer {self.tokens[scope]}"
        if self.basic and self.credentials:
            return "Basic " + _basic(*self.credentials)
        return None

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials:
                raise RegistryError(f"the registry {self.label} wants a user name and password: "
                                    f"log in first (container-lab login {self.host})")
            self.basic = True
            return
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(f"the registry {self.label} asked for authentication we do not know: "
                                f"{challenge[:120]!r}")
        realm = params["realm"]
        where = urllib.parse.urlsplit(realm)
        if where.scheme not in ("http", "https"):
            raise RegistryError(f"the registry {self.label} named an unusable token service: {realm[:120]!r}")
        query = [("scope", s) for s in merge_scopes((params.get("scope") or "").split(" ") + scope.split(" "))]
        if params.get("service"):
            query.append(("service", params["service"]))
        req = urllib.request.Request(realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query),
                                     headers={"User-Agent": "container-lab"})
        if self.credentials:
            # Never in clear text to a service elsewhere, unless this registry is spoken to in clear text too.
            if where.scheme == "http" and not is_loopback(where.netloc) and not self.base.startswith("http:"):
                raise RegistryError(f"the registry {self.label} sends logins to a token service over plain "
                                    f"HTTP ({realm[:120]}); refused")
            req.full_url += "&" + urllib.parse.urlencode({"account": self.credentials[0]})
            req.add_unredirected_header("Authorization", "Basic " + _basic(*self.credentials))
        try:
            with self.deadline(f"a token (from {where.netloc})"), \
                    self.opener.open(req, timeout=self.timeout) as resp:
                body = resp.read(MAX_TOKEN + 1)
        except urllib.error.HTTPError as e:
            if e.code == 401 and self.credentials:
                raise RegistryError(f"the token service of {self.label} refused the user name and password of "
                                    f"{self.credentials[0]} (wrong password? log in again: "
                                    f"container-lab login {self.host})") from None
            raise RegistryError(f"the token service of {self.label} said {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise RegistryError(f"cannot reach the token service of {self.label}: {_reason(e)}") from None
        try:
            if len(body) > MAX_TOKEN:
                raise ValueError("too large")
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
            if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
                raise ValueError("no token in it")
        except (ValueError, AttributeError) as e:
            raise RegistryError(f"the token service of {self.label} gave an unusable answer ({e})") from None
        self.tokens[scope] = token

    def _http_error(self, e: urllib.error.HTTPError, path: str) -> RegistryError:
        detail = ""
        try:
            errors = json.loads(e.read(65536)).get("errors") or []
            detail = "; ".join(str(x.get("message") or x.get("code")) for x in errors if isinstance(x, dict))
        except (ValueError, AttributeError, OSError):
            pass
        finally:
            e.close()
        if e.code == 429:
            return RegistryError(f"the registry {self.label} says too many requests (429): Docker Hub allows "
                                 "anonymous users a limited number of pulls per hour and address; a classroom "
                                 "should `save` images once and `load` them, or use a local mirror")
        if e.code == 404:
            return ImageNotFound(f"not found in the registry {self.label}: {path}" + (f": {detail}" if detail else ""))
        if e.code in (401, 403):
            return RegistryError(f"the registry {self.label} refused access to {path}" +
                                 (f": {detail}" if detail else "") + " (does the repository exist? is it private? "
                                 f"log in: container-lab login {self.host})")
        return RegistryError(f"the registry {self.label} answered {e.code} {e.reason} for {path}" +
                             (f": {detail}" if detail else ""))

    def check_login(self) -> None:
        """``GET /v2/`` with the credentials (through the token service, if
        the registry has one): returns when the registry takes them."""
        with self.deadline("an answer to the login"), self.request("GET", "", "", what="/v2/") as resp:
            resp.read(MAX_TOKEN)

    # -- manifests and blobs ------------------------------------------------------
    def manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index; a digest reference is verified."""
        scope = f"repository:{repository}:pull"
        try:
            with self._deadline(f"the manifest {repository}:{reference}"), \
                    self._open(f"{repository}/manifests/{reference}", scope,
                               INDEXES + MANIFESTS + DOCKER_SCHEMA1) as resp:
                body = resp.read(MAX_MANIFEST + 1)
                media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f"reading the manifest {repository}:{reference} from the registry {self.label} "
                                f"failed: {e}") from None
        if len(body) > MAX_MANIFEST:
            raise RegistryError(f"the manifest {repository}:{reference} is larger than {MAX_MANIFEST >> 20} MiB")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if DIGEST_RE.fullmatch(reference) and digest != reference:
            raise RegistryError(f"the manifest {reference} of {repository} does not match its digest "
                                f"(got {digest})")
        try:
            media_type = json.loads(body).get("mediaType") or media_type
        except (ValueError, AttributeError):
            raise RegistryError(f"the manifest {repository}:{reference} is not JSON") from None
        if media_type in DOCKER_SCHEMA1:
            raise RegistryError(f"{repository}:{reference} has an old (schema 1) manifest, which is not supported")
        return body, media_type, digest

    def image_manifest(self, repository: str, reference: str) -> tuple[bytes, dict, str]:
        """The host platform's image manifest: (body, parsed, digest), through an index if need be."""
        body, media_type, digest = self.manifest(repository, reference)
        parsed = json_object(body, "registry's manifest", RegistryError)
        if media_type in INDEXES or "manifests" in parsed:
            chosen = pick_platform(parsed, repository, reference)
            body, media_type, digest = self.manifest(repository, chosen)
            parsed = json_object(body, "registry's manifest", RegistryError)
            if media_type in INDEXES or "manifests" in parsed:
                raise RegistryError(f"{repository}: an index that points at another index is not supported")
        check_manifest(parsed, f"{repository}:{reference}")
        return body, parsed, digest

    def blob(self, repository: str, descriptor: dict, dest: Path, progress: Callable[[int], None] | None = None) -> None:
        """Download one blob into ``dest``, checking its size and sha256 as it arrives."""
        digest, size = descriptor["digest"], descriptor["size"]
        h, got = hashlib.sha256(), 0
        try:
            with self._deadline(f"the blob {digest[:19]} ({size} bytes)", size):
                got = self._receive(repository, descriptor, dest, h, progress)
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f"downloading the blob {digest[:19]} of {repository} from the registry "
                                f"{self.label} failed: {getattr(e, 'strerror', None) or e}") from None
        if got != size:
            raise RegistryError(f"the blob {digest[:19]} of {repository} ended after {got} of {size} bytes")
        if "sha256:" + h.hexdigest() != digest:
            raise RegistryError(f"the blob {digest[:19]} of {repository} does not match its digest")

    def _receive(self, repository: str, descriptor: dict, dest: Path, h, progress) -> int:
        """Stream one blob into ``dest``, hashing it and stopping at the first
        byte past its declared size; returns the bytes received."""
        digest, size = descriptor["digest"], descriptor["size"]
        got = 0
        with self._open(f"{repository}/blobs/{digest}", f"repository:{repository}:pull") as resp, \
                open(dest, "wb") as out:
            announced = resp.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > size:
                raise RegistryError(f"the blob {digest[:19]} of {repository} is larger than its "
                                    f"manifest says ({announced} bytes announced, {size} declared); refused")
            while chunk := resp.read(CHUNK):
                got += len(chunk)
                if got > size:
                    raise RegistryError(f"the blob {digest[:19]} of {repository} is larger than its "
                                        f"manifest says ({size} bytes)")
                h.update(chunk)
                out.write(chunk)
                if progress:
                    progress(got)
            out.flush()
            os.fsync(out.fileno())
        return got


# -- checking what the registry says ----------------------------------------------------

def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def merge_scopes(scopes: list[str]) -> list[str]:
    """Token scopes with one entry per resource, its actions joined:
    ``repository:x:pull`` and ``repository:x:pull,push`` -> ``repository:x:pull,push``."""
    merged: dict[tuple[str, str], list[str]] = {}
    for item in scopes:
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if not item or not name:
            continue
        have = merged.setdefault((kind, name), [])
        have.extend(a for a in actions.split(",") if a and a not in have)
    return [f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in merged.items()]


def pick_platform(index: dict, repository: str, reference: str) -> str:
    """The digest of the host platform's manifest in an image index."""
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError(f"the index of {repository}:{reference} has no list of manifests")
    arch, variant = host_platform()
    found, offered = [], []
    for m in entries:
        if not isinstance(m, dict) or not isinstance(m.get("platform"), dict):
            continue
        annotations = m.get("annotations") if isinstance(m.get("annotations"), dict) else {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue                      # build provenance, not an image
        p = m["platform"]
        offered.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        if p.get("os") == "linux" and p.get("architecture") == arch:
            if not isinstance(m.get("digest"), str) or not DIGEST_RE.fullmatch(m["digest"]):
                raise RegistryError(f"the index of {repository}:{reference} has a malformed digest")
            found.append((p.get("variant", "") in ("", variant), m["digest"]))
    if not found:
        raise RegistryError(f"{repository}:{reference} has no image for linux/{arch} "
                            f"(it has: {', '.join(offered) or 'none'})")
    found.sort(key=lambda f: not f[0])
    return found[0][1]


def check_manifest(m: dict, what: str) -> None:
    """An image manifest we can use: schema 2, a config and layer descriptors."""
    def descriptor(d, where: str) -> None:
        if not (isinstance(d, dict) and isinstance(d.get("digest"), str) and DIGEST_RE.fullmatch(d["digest"])
                and isinstance(d.get("size"), int) and not isinstance(d.get("size"), bool) and d["size"] >= 0):
            raise RegistryError(f"the manifest of {what} has a malformed {where} descriptor")

    if m.get("schemaVersion") != 2:
        raise RegistryError(f"the manifest of {what} is not schema version 2")
    descriptor(m.get("config"), "config")
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers:
        raise RegistryError(f"the manifest of {what} lists no layers")
    from engine.images.store import MAX_LAYERS

    if len(layers) > MAX_LAYERS:
        raise RegistryError(f"{what} has {len(layers)} layers; at most {MAX_LAYERS} can be stacked "
                            "(as Docker allows); refused before downloading")
    for layer in layers:
        descriptor(layer, "layer")
        media = layer.get("mediaType", "")
        if "zstd" in media:
            raise RegistryError(f"{what} has zstd-compressed layers, which are not supported")
        if "foreign" in media or "nondistributable" in media:
            raise RegistryError(f"{what} has a foreign layer ({media}), which cannot be pulled")


def _reason(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e)


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def reference_parts(r: Reference) -> tuple[str, str, str]:
    """(host, repository, tag-or-digest) of a parsed reference."""
    host, repository = locate(r.name)
    return host, repository, r.digest or r.tag or "latest"
