"""What a step needs from this machine, asked of ``container-lab doctor``.

A step may declare ``requires = ["cgroup.memory"]`` in ``lesson.toml``: the
ids are those of :func:`engine.doctor.diagnose` (``root``, ``overlayfs``,
``ns.pid`` ... ``ns.time``, ``userns.private``, ``cgroup.memory``,
``cgroup.pids``, ``cgroup.cpu``, ``cgroup.swap``). ``course check`` refuses
an id doctor does not know; on a machine where one of them is not ``ok``,
the lab and ``course solve`` run nothing for that step and say why instead
(a memory hog is a lesson only where a memory limit is really applied).

``registry.course`` (the course's registry answers:
:func:`engine.doctor.course_registry`) is asked live, when a step needs it,
not read from the diagnosis taken at the app's start: a learner may start a
registry in the middle of a lesson, and asking costs a request over the
network. A diagnosis that has it (a test's, or ``doctor --format json``'s)
is believed.

The diagnosis is a seam: :class:`~lessons.lab.Lab` and
:func:`~lessons.solve.solve` take ``doctor=`` (a callable returning what
``diagnose()`` returns), so a test can play a machine that lacks something.
"""

from __future__ import annotations

from .i18n import msg


def diagnose() -> dict:
    """This machine's diagnosis (``container-lab doctor --format json``)."""
    from engine.doctor import diagnose as engine_diagnose
    return engine_diagnose()


def live() -> dict:
    """The requirements asked when a step needs them: id -> a callable giving its check."""
    from engine.doctor import course_registry_check
    return {"registry.course": course_registry_check}


def known_ids(diagnosis: dict | None = None) -> tuple[str, ...]:
    """Every id doctor reports (the same set on every machine), in its order."""
    ids = tuple(c["id"] for c in (diagnosis or diagnose())["checks"])
    return ids + tuple(rid for rid in live() if rid not in ids)


def lacking(requires, diagnosis: dict) -> list[dict]:
    """The doctor checks among ``requires`` that are not ok here (an id
    doctor does not report counts as lacking: nothing vouches for it)."""
    by_id = {c["id"]: c for c in diagnosis.get("checks", [])}
    asked = live()
    out = []
    for rid in requires:
        found = by_id.get(rid)
        if found is None and rid in asked:
            found = asked[rid]()
        if found is None:
            out.append({"id": rid, "ok": False, "detail": "not reported by container-lab doctor"})
        elif not found.get("ok"):
            out.append(found)
    return out


def name(lang: str, rid: str) -> str:
    """What requirement ``rid`` is, in words (``cgroup.memory`` -> "memory limits")."""
    if rid.startswith("ns."):
        return msg(lang, "req.ns", kind=rid[3:])
    key = f"req.{rid}"
    try:
        return msg(lang, key)
    except KeyError:
        return rid


def explain(lang: str, missing: list[dict]) -> str:
    """Why a step is not run here, for the learner: what it needs and what doctor said."""
    parts = [msg(lang, "req.one", what=name(lang, c["id"]), id=c["id"], detail=c.get("detail", ""))
             for c in missing]
    return msg(lang, "req.skipped", needs=msg(lang, "list.sep").join(parts))
