"""Image references, parsed and normalised the way docker does.

``ubuntu`` becomes ``ubuntu:latest``; ``registry:5000/x/y:tag`` is kept as is;
a digest is accepted only as ``name@sha256:<64 hex>``. Unlike docker we do not
prefix ``docker.io/library/``: the store keys images by the short form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

DEFAULT_TAG = "latest"
NAME_MAX = 255  # docker's limit on the length of the name part

# The grammar of github.com/distribution/reference, restricted to lowercase
# names (docker refuses uppercase repositories; tags may be mixed case).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[a-f0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_REF_RE = re.compile(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG})|@(?P<digest>{DIGEST_RE.pattern}))?")


@dataclass(frozen=True)
class Reference:
    """A parsed reference: exactly one of ``tag`` and ``digest`` is set."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse_reference(ref: str) -> Reference:
    """Parse ``ref``, adding the ``latest`` tag when it names neither tag nor digest."""
    m = _REF_RE.fullmatch(ref)
    if m is None or len(m["name"]) > NAME_MAX:
        if ref and _REF_RE.fullmatch(ref.lower()):
            raise InvalidArgument(f"invalid reference format: repository name ({ref}) must be lowercase")
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    if m["digest"]:
        return Reference(m["name"], digest=m["digest"])
    return Reference(m["name"], tag=m["tag"] or DEFAULT_TAG)


def normalize_reference(ref: str) -> str:
    """``ubuntu`` -> ``ubuntu:latest``; raises InvalidArgument for a malformed ref."""
    return str(parse_reference(ref))


_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def familiar_reference(ref: str) -> str:
    """The store's short form of ``ref``: ``docker.io/library/busybox`` ->
    ``busybox:latest``, ``docker.io/bitnami/redis:7`` -> ``bitnami/redis:7``
    (what ``docker images`` shows); any other name is kept."""
    r = parse_reference(ref)
    name = r.name
    for prefix in _HUB_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            if name.startswith("library/") and name.count("/") == 1:
                name = name[len("library/"):]
            break
    return str(Reference(name, r.tag, r.digest))


def qualified_reference(ref: str) -> str:
    """The full form of ``ref``, as containerd names images:
    ``busybox:latest`` -> ``docker.io/library/busybox:latest``."""
    r = parse_reference(ref)
    first, _, rest = r.name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return str(r)
    name = f"docker.io/{r.name}" if rest else f"docker.io/library/{r.name}"
    return str(Reference(name, r.tag, r.digest))
