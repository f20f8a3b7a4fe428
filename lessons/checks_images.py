"""Checks on what the learner did to images: built, pushed, pulled, saved.

``build``, ``pull``, ``push`` and ``save`` run in the engine's client, which
tells the supervisor afterwards; the event log keeps each as an ``image``
event (see :mod:`engine.events`) with the names the image got and, for a
build, how many of its instructions after FROM there were (``steps``) and how
many the build cache answered (``cached``). Registered with
:func:`lessons.checks.check`, as every kind:

- ``image-built``: an image named N was built; ``cached`` says how the
  build cache served it: ``all`` its steps (a rebuild of what did not
  change), ``none`` of them, or ``some`` (a change part-way down);
  ``changed = true``: from a Dockerfile other than that of an earlier build
  of N since the step began (the learner changed a line and built again --
  which the cache answers in full only if it has seen that change before)
  [image!, cached, changed].
- ``image-pushed``, ``image-pulled``, ``image-saved``: an image named N was
  pushed to a registry, pulled from one, saved to an archive [image!].

A name matches by repository, whatever the registry and tag: ``hello``
is ``hello:latest`` and ``localhost:5000/hello:latest`` alike; a name with a
tag (``hello:v2``) must have that tag.
"""

from __future__ import annotations

from .checks import BOOL, STR, Param, Result, _join, check
from .i18n import msg

CACHED = ("all", "some", "none")


def repository(ref: str) -> tuple[str, str | None]:
    """(repository without registry host or ``library/``, tag or None) of an image name."""
    name = ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last, _, tag = last.partition(":")
    name = f"{head}/{last}" if head else last
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        name = rest
    return name.removeprefix("library/"), tag or None


def _named(event: dict, wanted: str) -> str | None:
    """The event's name that is ``wanted``, or None."""
    repo, tag = repository(wanted)
    for name in [event.get("ref"), *(event.get("names") or [])]:
        if not isinstance(name, str):
            continue
        r, t = repository(name)
        if r == repo and (tag is None or (t or "latest") == tag):
            return name
    return None


def _image_events(view, cursor: int, action: str) -> list[dict]:
    """The ``image`` events of ``action`` since the cursor, newest first."""
    return [e for e in reversed(view.events(cursor)) if e.get("kind") == "image" and e.get("action") == action]


def _cache_fits(event: dict, cached: str | None) -> bool:
    steps, hits = event.get("steps", 0), event.get("cached", 0)
    if cached is None:
        return True
    if cached == "all":
        return steps > 0 and hits == steps
    if cached == "none":
        return hits == 0
    return 0 < hits < steps


@check("image-built", image=Param(STR, required=True), cached=Param(STR, choices=CACHED), changed=Param(BOOL))
def _image_built(view, cursor, args, lang) -> Result:
    wanted, cached, changed = args["image"], args.get("cached"), args.get("changed", False)
    want = [msg(lang, "exp.built", name=wanted)]
    if cached:
        want.append(msg(lang, f"exp.built.cached.{cached}"))
    if changed:
        want.append(msg(lang, "exp.built.changed"))
    expected = msg(lang, "list.sep").join(want)
    builds = _image_events(view, cursor, "build")
    seen = []
    for i, e in enumerate(builds):
        name = _named(e, wanted) or e.get("ref", "?")
        seen.append(msg(lang, "saw.built", name=name, cached=e.get("cached", 0), steps=e.get("steps", 0)))
        earlier = [b.get("dockerfile") for b in builds[i + 1:] if _named(b, wanted)]
        if _named(e, wanted) and _cache_fits(e, cached) and (
                not changed or any(d and d != e.get("dockerfile") for d in earlier)):
            return Result("image-built", True, seen[-1], expected)
    return Result("image-built", False, _join(lang, seen) if seen else msg(lang, "saw.no_image.build"), expected)


def _done(kind: str, action: str):
    def evaluate(view, cursor, args, lang) -> Result:
        wanted = args["image"]
        expected = msg(lang, f"exp.image.{action}", name=wanted)
        seen = []
        for e in _image_events(view, cursor, action):
            if (name := _named(e, wanted)) is not None:
                return Result(kind, True, msg(lang, f"saw.image.{action}", name=name), expected)
            seen.append(msg(lang, f"saw.image.{action}", name=e.get("ref", "?")))
        return Result(kind, False, _join(lang, seen) if seen else msg(lang, f"saw.no_image.{action}"), expected)
    return evaluate


for _kind, _action in (("image-pushed", "push"), ("image-pulled", "pull"), ("image-saved", "save")):
    check(_kind, image=Param(STR, required=True))(_done(_kind, _action))
