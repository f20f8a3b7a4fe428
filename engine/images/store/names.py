"""The store's index of names (``repositories.json``) and what it says about
untagged images -- docker's ``<none>:<none>``.

The index maps each name to a manifest digest: ``"app:latest"`` (a tag),
``"app@sha256:..."`` (an image pulled by digest). An image kept with no name
is an entry of its own, ``"<none>@sha256:<manifest digest>"`` mapped to that
same digest: ``<`` is in no valid reference, so such a key can never be
taken for a name, and an older container-lab reading the file sees a
well-formed entry it never matches (and keeps the image's blobs, as the
sweep keeps whatever an entry reaches). A store written before untagged
images existed is simply one without such entries.

How an image comes to have no name, as docker's do:

- it was stored without one (``build`` without ``-t``, ``commit`` or
  ``import`` without a name, ``load`` of an archive that names none);
- a name moved to another image (:func:`point`): ``build -t app`` again
  with a change, ``tag``, ``pull`` of a newer ``app:latest``, ``load``. The
  old image is not deleted -- a container may use it, and its layers serve
  the build cache -- it is *dangling* until ``image prune`` removes it;
- ``rmi -f`` of the last name of an image a container uses.

An untagged entry may stand beside a name of the same image (an image
stored without a name that is also a build's intermediate, or that was
tagged later): the name wins -- the image is not dangling while it has one
-- and the entry keeps the image when its names go without a removal (a
build's temporary names, dropped with :meth:`.ImageStore.untag`).
"""

from __future__ import annotations

from engine.images.reference import DIGEST_RE

UNTAGGED = "<none>@"


def untagged_key(digest: str) -> str:
    """The index key that keeps the image ``digest`` without a name."""
    return UNTAGGED + digest


def is_untagged(key: str) -> bool:
    return key.startswith(UNTAGGED)


def well_formed(data) -> bool:
    """Whether ``data`` (the parsed index) is a valid index: names (or
    untagged keys, each naming its own digest) to manifest digests."""
    return isinstance(data, dict) and all(
        isinstance(k, str) and isinstance(d, str) and DIGEST_RE.fullmatch(d)
        and (not is_untagged(k) or k == untagged_key(d))
        for k, d in data.items())


def named(repos: dict[str, str]) -> set[str]:
    """The manifest digests some name refers to."""
    return {d for k, d in repos.items() if not is_untagged(k)}


def dangling(repos: dict[str, str]) -> list[str]:
    """The manifest digests kept with no name at all, sorted."""
    have_name = named(repos)
    return sorted({d for k, d in repos.items() if is_untagged(k) and d not in have_name})


def point(repos: dict[str, str], names: list[str], digest: str) -> None:
    """Give ``digest`` the ``names`` (none: keep it untagged). An image a name
    moves away from, that nothing else in the index refers to any more, is
    kept untagged -- dangling, not deleted."""
    before = set(repos.values())
    for name in names:
        repos[name] = digest
    if not names:
        repos[untagged_key(digest)] = digest
    for old in before - set(repos.values()):
        repos[untagged_key(old)] = old
