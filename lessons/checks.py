"""Declarative checks: did the learner really do it? Asked of the kernel and the event log.

A check in ``lesson.toml`` is a table with a ``kind`` and its arguments::

    [[steps.checks]]
    kind = "container-ran"
    image = "ubuntu"
    argv = ["echo", "Hello", "World"]
    exit_code = 0

Each kind is registered here with the arguments it takes (checked by
``course check``) and an ``evaluate(view, cursor, args, lang)`` that returns a
:class:`Result`: passed or not, what it saw and what it expected, in the
learner's language. Only events with a sequence number above ``cursor``
count -- the cursor is taken when the step begins, so something done for an
earlier step never satisfies a later one. State (a running container, its
namespaces, its writable layer) is read as it is now.

Kinds (``container`` is a container name; where it is optional, any
container started since the step began will do):

- ``container-ran``: a container ran [image, argv, exit_code, name,
  explained: started stage by stage with ``run --explain``].
- ``exec-ran``: a command ran in a running container [container, argv, exit_code].
- ``interactive-session``: a terminal session (``-t``) was opened in a
  container, by ``run -it`` or ``exec -it``; a non-interactive exec does not
  count [container, image].
- ``container-running``: container X is (or is not) running [container!, running, image].
- ``container-removed``: container X was removed since the step began and
  is gone (stopped is not enough) [container!].
- ``diff-read``: the changes of a container's writable layer were read
  (``docker diff``) since the step began [container].
- ``pid1``: PID 1 of the container is this command [command!, container, image].
- ``hostname-differs``: the hostname inside differs from the host's [container, equals].
- ``file-deleted``: a file was deleted in the container's writable layer
  while the image still has it [path!, container].
- ``limit-hit``: the kernel enforced a limit: memory (OOM), pids (a fork
  refused) or cpu (the container throttled: read live from its cgroup, so
  the container must still be running) [limit!, container].
- ``namespace``: two containers, or a container and the host, share or do
  not share namespace K [namespace!, container!, other, shared!].
- ``process-visible``: a process is (not) visible from a container, or from
  the host [command!, container!, visible].
- ``address-assigned``: the container has an address on network N (default
  ``bridge``) [container!, network].
- ``same-network``: two containers are (not) on a common network, or on N
  [container!, other!, network, shared].
- ``port-published``: container port P is published on a host port and, for
  TCP, a connection from the host to it is accepted [container!, port!,
  proto, reachable].
- ``image-built``, ``image-pushed``, ``image-pulled``, ``image-saved``: what
  the learner did to an image named N (:mod:`lessons.checks_images`).
- ``stats-read``, ``process-state``: what a container uses was read, a
  process in a state (a zombie) is or is not there (:mod:`lessons.checks_process`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.namespaces import KINDS as NAMESPACES

from .docker import LABEL_IMAGE, normalize_image
from .i18n import count, msg

LIMITS = ("memory", "pids", "cpu")


@dataclass(frozen=True)
class Result:
    """The outcome of one check, worded for the learner."""

    kind: str
    passed: bool
    saw: str
    expected: str
    skipped: bool = False       # not evaluated: the machine lacks what the step requires (saw says what)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "passed": self.passed, "saw": self.saw, "expected": self.expected,
                "skipped": self.skipped}


@dataclass(frozen=True)
class Param:
    types: tuple
    required: bool = False
    choices: tuple = ()

    def problem(self, name: str, value) -> str | None:
        if not isinstance(value, self.types) or (isinstance(value, bool) and bool not in self.types):
            names = " or ".join({str: "a string", int: "a number", bool: "true or false",
                                 list: "a list of strings"}[t] for t in self.types)
            return f"'{name}' must be {names}"
        if isinstance(value, list) and not (value and all(isinstance(v, str) for v in value)):
            return f"'{name}' must be a non-empty list of strings"
        if isinstance(value, str) and not value.strip():
            return f"'{name}' must not be empty"
        if self.choices and value not in self.choices:
            return f"'{name}' must be one of: {', '.join(self.choices)}"
        return None


@dataclass(frozen=True)
class CheckKind:
    name: str
    params: dict
    evaluate_fn: Callable

    def validate(self, args: dict) -> list[str]:
        """What is wrong with ``args`` (for instructors, in English); empty when fine."""
        problems = []
        for key, value in args.items():
            if key not in self.params:
                problems.append(f"check '{self.name}': unknown argument '{key}' "
                                f"(it takes: {', '.join(self.params) or 'nothing'})")
            elif (p := self.params[key].problem(key, value)) is not None:
                problems.append(f"check '{self.name}': {p}")
        for key, param in self.params.items():
            if param.required and key not in args:
                problems.append(f"check '{self.name}': '{key}' is required")
        return problems

    def evaluate(self, view, cursor: int, args: dict, lang: str = "en") -> Result:
        return self.evaluate_fn(view, cursor, args, lang)


CHECKS: dict[str, CheckKind] = {}

STR, INT, BOOL, ARGV = (str,), (int,), (bool,), (list, str)


def check(kind: str, /, **params: Param):
    """Register a check kind taking ``params``."""
    def register(fn):
        CHECKS[kind] = CheckKind(kind, params, fn)
        return fn
    return register


def validate(kind: str, args: dict) -> list[str]:
    if kind not in CHECKS:
        return [f"unknown check kind '{kind}' (known: {', '.join(sorted(CHECKS))})"]
    return CHECKS[kind].validate(args)


def evaluate(spec, view, cursor: int, lang: str = "en") -> Result:
    """Evaluate a :class:`~lessons.model.CheckSpec`; an engine error is a failed check, not a crash."""
    from engine.errors import EngineError

    kind = CHECKS.get(spec.kind)
    if kind is None:
        return Result(spec.kind, False, msg(lang, "check.unknown", kind=spec.kind), "")
    try:
        return kind.evaluate(view, cursor, spec.args, lang)
    except EngineError as e:
        return Result(spec.kind, False, msg(lang, "check.engine_error", error=str(e)), "")


def evaluate_all(specs, view, cursor: int, lang: str = "en", *, wait: float = 0.0, cancel=None) -> list[Result]:
    """Evaluate every check; with ``wait``, retry the failing ones for up to that
    many seconds (the engine records an exit a moment after the learner sees it)."""
    deadline = time.monotonic() + wait
    while True:
        results = [evaluate(s, view, cursor, lang) for s in specs]
        if all(r.passed for r in results) or time.monotonic() >= deadline or (cancel and cancel.is_set()):
            return results
        time.sleep(0.2)


# -- helpers -------------------------------------------------------------------------

def _argv(value) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else list(value)


def _cmd(argv) -> str:
    return shlex.join(argv) if argv else "?"


def _image_matches(event: dict, image: str | None) -> bool:
    if image is None:
        return True
    wanted = normalize_image(image)
    img = event.get("image") or {}
    names = {img.get("requested"), img.get("resolved"), (event.get("labels") or {}).get(LABEL_IMAGE)}
    return wanted in {normalize_image(n) for n in names if n}


def _image_text(event: dict, lang: str) -> str:
    img = event.get("image") or {}
    asked = (event.get("labels") or {}).get(LABEL_IMAGE)
    if asked:
        return msg(lang, "saw.image_fallback", image=asked, fallback=img.get("requested", ""))
    return img.get("requested", "?")


def _started_since(view, cursor: int) -> list[dict]:
    """The 'started' events since the cursor, newest first."""
    return [e for e in reversed(view.events(cursor)) if e.get("kind") == "started"]


def _join(lang: str, items: list[str], limit: int = 3) -> str:
    shown = items[:limit]
    more = len(items) - len(shown)
    text = msg(lang, "list.sep").join(shown)
    return text + (msg(lang, "list.more", n=more) if more > 0 else "")


def _candidates(view, cursor: int, container: str | None, image: str | None = None) -> list[dict]:
    """Inspect records: the named container, or every container started since the cursor."""
    if container:
        rec = view.container(container)
        return [rec] if rec else []
    seen, out = set(), []
    for e in _started_since(view, cursor):
        if e["id"] in seen or not _image_matches(e, image):
            continue
        seen.add(e["id"])
        rec = view.container(e["id"])
        if rec:
            out.append(rec)
    return out


def _where(lang: str, container: str | None) -> str:
    return msg(lang, "where.named", name=container) if container else msg(lang, "where.any")


# -- the kinds -----------------------------------------------------------------------

@check("container-ran", image=Param(STR), argv=Param(ARGV), exit_code=Param(INT), name=Param(STR),
       explained=Param(BOOL))
def _container_ran(view, cursor, args, lang) -> Result:
    image, argv, code, name = args.get("image"), _argv(args.get("argv")), args.get("exit_code"), args.get("name")
    explained = args.get("explained")
    want = [msg(lang, "exp.container_ran")]
    if explained:
        want.append(msg(lang, "exp.explained"))
    if image:
        want.append(msg(lang, "exp.image", image=image))
    if argv:
        want.append(msg(lang, "exp.argv", cmd=_cmd(argv)))
    if name:
        want.append(msg(lang, "exp.name", name=name))
    if code is not None:
        want.append(msg(lang, "exp.exit_code", code=code))
    expected = msg(lang, "list.sep").join(want)
    events = view.events(cursor)
    exits = {e["id"]: e for e in events if e.get("kind") == "exited"}
    seen = []
    for e in reversed([e for e in events if e.get("kind") == "started"]):
        ex = exits.get(e["id"])
        ok = _image_matches(e, image) and (argv is None or e.get("argv") == argv) \
            and (name is None or e.get("name") == name) \
            and (code is None or (ex is not None and ex.get("exit_code") == code)) \
            and (explained is None or bool(e.get("explained")) == explained)
        state = msg(lang, "saw.exited", code=ex.get("exit_code")) if ex else msg(lang, "saw.running")
        if e.get("explained"):
            state = msg(lang, "saw.explained", state=state)
        seen.append(msg(lang, "saw.container", name=e.get("name"), image=_image_text(e, lang),
                        cmd=_cmd(e.get("argv")), state=state))
        if ok:
            return Result("container-ran", True, seen[-1], expected)
    saw = _join(lang, seen) if seen else msg(lang, "saw.no_container")
    return Result("container-ran", False, saw, expected)


@check("exec-ran", container=Param(STR), argv=Param(ARGV), exit_code=Param(INT))
def _exec_ran(view, cursor, args, lang) -> Result:
    container, argv, code = args.get("container"), _argv(args.get("argv")), args.get("exit_code")
    want = [msg(lang, "exp.exec_ran", where=_where(lang, container))]
    if argv:
        want.append(msg(lang, "exp.argv", cmd=_cmd(argv)))
    if code is not None:
        want.append(msg(lang, "exp.exit_code", code=code))
    expected = msg(lang, "list.sep").join(want)
    seen = []
    for e in reversed(view.events(cursor)):
        if e.get("kind") != "exec-exited":
            continue
        seen.append(msg(lang, "saw.exec", name=e.get("name"), cmd=_cmd(e.get("argv")), code=e.get("exit_code")))
        if (container is None or e.get("name") == container) and (argv is None or e.get("argv") == argv) \
                and (code is None or e.get("exit_code") == code):
            return Result("exec-ran", True, seen[-1], expected)
    return Result("exec-ran", False, _join(lang, seen) if seen else msg(lang, "saw.no_exec"), expected)


@check("interactive-session", container=Param(STR), image=Param(STR))
def _interactive(view, cursor, args, lang) -> Result:
    container, image = args.get("container"), args.get("image")
    expected = msg(lang, "exp.interactive", where=_where(lang, container)) + (
        msg(lang, "list.sep") + msg(lang, "exp.image", image=image) if image else "")
    seen = []
    for e in reversed(view.events(cursor)):
        if e.get("kind") not in ("started", "exec"):
            continue
        how = "run" if e["kind"] == "started" else "exec"
        tty = bool(e.get("tty"))
        seen.append(msg(lang, f"saw.session.{how}.{'tty' if tty else 'plain'}", name=e.get("name"),
                        cmd=_cmd(e.get("argv"))))
        if tty and (container is None or e.get("name") == container) and _image_matches(e, image):
            return Result("interactive-session", True, seen[-1], expected)
    return Result("interactive-session", False, _join(lang, seen) if seen else msg(lang, "saw.no_session"),
                  expected)


@check("container-running", container=Param(STR, required=True), running=Param(BOOL), image=Param(STR))
def _running(view, cursor, args, lang) -> Result:
    name, running, image = args["container"], args.get("running", True), args.get("image")
    expected = msg(lang, "exp.running" if running else "exp.not_running", name=name)
    rec = view.container(name)
    if rec is None:
        return Result("container-running", not running, msg(lang, "saw.no_such", name=name), expected)
    is_running = rec.get("status") == "running"
    ok = is_running == running
    if image and ok:
        ok = _image_matches({"image": {"requested": rec["image"].get("requested"),
                                       "resolved": rec["image"].get("ref")},
                             "labels": rec["config"].get("labels")}, image)
    state = msg(lang, "saw.running") if is_running else msg(lang, "saw.status", status=rec.get("status"))
    return Result("container-running", ok, msg(lang, "saw.state_of", name=name, state=state,
                                                image=rec["image"].get("requested", "?")), expected)


@check("container-removed", container=Param(STR, required=True))
def _removed(view, cursor, args, lang) -> Result:
    name = args["container"]
    expected = msg(lang, "exp.removed", name=name)
    rec = view.container(name)
    if rec is not None:
        return Result("container-removed", False, msg(lang, "saw.state_of", name=name, state=(
            msg(lang, "saw.running") if rec.get("status") == "running" else
            msg(lang, "saw.status", status=rec.get("status"))), image=rec["image"].get("requested", "?")), expected)
    if any(e.get("kind") == "removed" and e.get("name") == name for e in view.events(cursor)):
        return Result("container-removed", True, msg(lang, "saw.removed", name=name), expected)
    return Result("container-removed", False, msg(lang, "saw.not_removed_here", name=name), expected)


def verb_read(check_kind: str, event: str, view, cursor, args, lang) -> Result:
    """A look the engine records as an event of its own (``diff``, ``stats``)
    was taken of the container named (any, without one): the keys are
    ``exp.EVENT.named|any``, ``saw.EVENT`` and ``saw.no_EVENT``."""
    container = args.get("container")
    expected = msg(lang, f"exp.{event}.named", name=container) if container else msg(lang, f"exp.{event}.any")
    seen = []
    for e in reversed(view.events(cursor)):
        if e.get("kind") != event:
            continue
        seen.append(msg(lang, f"saw.{event}", name=e.get("name")))
        if container is None or e.get("name") == container:
            return Result(check_kind, True, seen[-1], expected)
    return Result(check_kind, False, _join(lang, seen) if seen else msg(lang, f"saw.no_{event}"), expected)


@check("diff-read", container=Param(STR))
def _diff_read(view, cursor, args, lang) -> Result:
    return verb_read("diff-read", "diff", view, cursor, args, lang)


def _pid1_of(view, rec: dict) -> tuple[list[str], bool]:
    """PID 1's argv (live from the kernel when running, else from the record), and whether live."""
    if rec.get("status") == "running":
        snap = view.snapshot(rec["id"])
        for p in snap.get("processes", []):
            if p["pid"] == 1:
                return p["cmd"], True
    argv = list(rec.get("process", {}).get("argv", []))
    if rec.get("config", {}).get("init"):
        argv = ["init", "--", *argv]
    return argv, False


def _argv_matches(actual: list[str], wanted: list[str]) -> bool:
    """One word matches the program's name (``bash`` is ``/bin/bash``); more words, the whole argv."""
    if not actual:
        return False
    if len(wanted) == 1:
        return actual[0].rsplit("/", 1)[-1] == wanted[0].rsplit("/", 1)[-1]
    return len(actual) >= len(wanted) and actual[:len(wanted)] == wanted


@check("pid1", command=Param(ARGV, required=True), container=Param(STR), image=Param(STR))
def _pid1(view, cursor, args, lang) -> Result:
    wanted, container = _argv(args["command"]), args.get("container")
    expected = msg(lang, "exp.pid1", where=_where(lang, container), cmd=_cmd(wanted))
    seen = []
    for rec in _candidates(view, cursor, container, args.get("image")):
        argv, live = _pid1_of(view, rec)
        seen.append(msg(lang, "saw.pid1.live" if live else "saw.pid1.record", name=rec["name"], cmd=_cmd(argv)))
        if _argv_matches(argv, wanted):
            return Result("pid1", True, seen[-1], expected)
    return Result("pid1", False, _join(lang, seen) if seen else _nothing(lang, container), expected)


def _nothing(lang: str, container: str | None) -> str:
    return msg(lang, "saw.no_such", name=container) if container else msg(lang, "saw.no_container")


@check("hostname-differs", container=Param(STR), equals=Param(STR))
def _hostname(view, cursor, args, lang) -> Result:
    container, equals = args.get("container"), args.get("equals")
    host = view.host_hostname()
    expected = msg(lang, "exp.hostname", where=_where(lang, container), host=host) + (
        msg(lang, "list.sep") + msg(lang, "exp.hostname_is", name=equals) if equals else "")
    seen = []
    for rec in _candidates(view, cursor, container):
        if rec.get("status") != "running":
            seen.append(msg(lang, "saw.not_running", name=rec["name"]))
            continue
        inside = view.hostname_of(rec["pid"])
        if inside is None:
            seen.append(msg(lang, "saw.unreadable", name=rec["name"]))
            continue
        seen.append(msg(lang, "saw.hostname", name=rec["name"], inside=inside, host=host))
        if inside != host and (equals is None or inside == equals):
            return Result("hostname-differs", True, seen[-1], expected)
    return Result("hostname-differs", False, _join(lang, seen) if seen else _nothing(lang, container), expected)


@check("file-deleted", path=Param(STR, required=True), container=Param(STR))
def _file_deleted(view, cursor, args, lang) -> Result:
    import os

    path, container = "/" + args["path"].strip("/"), args.get("container")
    expected = msg(lang, "exp.deleted", path=path, where=_where(lang, container))
    seen = []
    for rec in _candidates(view, cursor, container):
        changes = dict((p, k) for k, p in view.diff(rec["id"]))
        kind = changes.get(path)
        layers = (rec.get("rootfs") or {}).get("layers", [])
        in_image = any(os.path.lexists(os.path.join(layer, path.lstrip("/"))) for layer in layers)
        if kind == "D" and in_image:
            return Result("file-deleted", True, msg(lang, "saw.deleted", name=rec["name"], path=path), expected)
        what = {"D": "saw.change.D", "C": "saw.change.C", "A": "saw.change.A"}.get(kind, "saw.change.none")
        seen.append(msg(lang, what, name=rec["name"], path=path))
    return Result("file-deleted", False, _join(lang, seen) if seen else _nothing(lang, container), expected)


@check("limit-hit", limit=Param(STR, required=True, choices=LIMITS), container=Param(STR))
def _limit_hit(view, cursor, args, lang) -> Result:
    limit, container = args["limit"], args.get("container")
    expected = msg(lang, f"exp.limit.{limit}", where=_where(lang, container))
    if limit == "cpu":
        return _cpu_throttled(view, cursor, container, expected, lang)
    for e in reversed(view.events(cursor)):
        if container is not None and e.get("name") != container:
            continue
        kind = e.get("kind")
        if limit == "memory" and (kind == "oom" or (kind == "exited" and e.get("oom_killed"))):
            return Result("limit-hit", True, msg(lang, "saw.oom", name=e.get("name")), expected)
        if limit == "pids" and kind == "pids-limit-hit":
            return Result("limit-hit", True, msg(lang, "saw.pids", name=e.get("name"),
                                                    count=count(lang, e.get("count", 1), "fork")),
                          expected)
    return Result("limit-hit", False, msg(lang, "saw.no_limit"), expected)


def _cpu_throttled(view, cursor: int, container: str | None, expected: str, lang: str) -> Result:
    """A CPU limit leaves no event: the kernel counts, in the container's
    cgroup, the scheduling periods in which it made the container wait."""
    seen = []
    for rec in _candidates(view, cursor, container):
        if rec.get("status") != "running":
            seen.append(msg(lang, "saw.not_running", name=rec["name"]))
            continue
        stat = view.cpu_throttled(rec)
        if stat is None:
            seen.append(msg(lang, "saw.cpu.unreadable", name=rec["name"]))
            continue
        throttled, periods = stat
        if throttled > 0:
            return Result("limit-hit", True, msg(lang, "saw.cpu", name=rec["name"], throttled=throttled,
                                                 periods=count(lang, periods, "cpu_period")), expected)
        seen.append(msg(lang, "saw.cpu.none", name=rec["name"], periods=count(lang, periods, "cpu_period")))
    return Result("limit-hit", False, _join(lang, seen) if seen else _nothing(lang, container), expected)


@check("namespace", namespace=Param(STR, required=True, choices=NAMESPACES), container=Param(STR, required=True),
       other=Param(STR), shared=Param(BOOL, required=True))
def _namespace(view, cursor, args, lang) -> Result:
    kind, name, other, shared = args["namespace"], args["container"], args.get("other", "host"), args["shared"]
    to = "host" if other == "host" else "ctr"
    expected = msg(lang, f"exp.ns.{'shared' if shared else 'isolated'}.{to}", kind=kind, name=name, other=other)

    def inode(ref: str) -> tuple[int | None, str | None]:
        if ref == "host":
            return view.host_namespaces().get(kind), None
        rec = view.container(ref)
        if rec is None:
            return None, msg(lang, "saw.no_such", name=ref)
        if rec.get("status") != "running":
            return None, msg(lang, "saw.not_running", name=ref)
        return view.namespace_inode(rec["pid"], kind), None
    a, why = inode(name)
    b, why_b = inode(other)
    if why or why_b:
        return Result("namespace", False, why or why_b, expected)
    if a is None or b is None:
        return Result("namespace", False, msg(lang, "saw.ns.unreadable", kind=kind), expected)
    same = a == b
    saw = msg(lang, f"saw.ns.{'same' if same else 'different'}.{to}", kind=kind, name=name, other=other, a=a, b=b)
    return Result("namespace", same == shared, saw, expected)


@check("process-visible", command=Param(ARGV, required=True), container=Param(STR, required=True),
       visible=Param(BOOL))
def _visible(view, cursor, args, lang) -> Result:
    wanted, name, visible = _argv(args["command"]), args["container"], args.get("visible", True)
    to = "host" if name == "host" else "ctr"
    expected = msg(lang, f"exp.{'visible' if visible else 'invisible'}.{to}", cmd=_cmd(wanted), where=name)
    if name == "host":
        procs = view.visible_processes(None)
    else:
        rec = view.container(name)
        if rec is None or rec.get("status") != "running":
            return Result("process-visible", False, msg(lang, "saw.no_such" if rec is None else "saw.not_running",
                                                        name=name), expected)
        procs = view.visible_processes(rec["pid"])
    hits = [(pid, argv) for pid, argv in procs if _argv_matches(argv, wanted)]
    if hits:
        saw = msg(lang, f"saw.visible.{to}", where=name, count=count(lang, len(procs), "process"),
                  cmd=_cmd(hits[0][1]), pid=hits[0][0])
    else:
        saw = msg(lang, f"saw.invisible.{to}", where=name, count=count(lang, len(procs), "process"),
                  cmd=_cmd(wanted))
    return Result("process-visible", bool(hits) == visible, saw, expected)


# The network kinds (address-assigned, same-network, port-published) and the image kinds
# (image-built, image-pushed, image-pulled, image-saved) and the process kinds (stats-read,
# process-state) live beside these; importing them registers them.
from . import checks_images, checks_network, checks_process  # noqa: E402,F401
