"""A lesson's lab: its containers, the state each step starts from, and its checks.

:class:`Lab` is what the app (from a worker thread) and the automated
learner (``course solve``) use to work a lesson against the real engine:

- :meth:`Lab.begin_step` makes sure the lab is in the state the step starts
  from (the lesson's ``setup``, then the step's; what an earlier try of the
  step left -- its own ``run --name`` containers and ``network create``
  networks -- removed, so a step is safe to do again), and returns the *cursor*:
  the sequence number of the newest event, so the step's checks count only
  what happens from now on;
- :meth:`Lab.run` runs one docker command the learner typed (translated,
  labelled ``course``/``course.lesson``/``course.step``/``course.origin``);
- :meth:`Lab.run_explained` starts a ``docker run --explain`` one stage at
  a time, waiting for the learner between stages (:mod:`lessons.stepwise`);
- :meth:`Lab.show_me` performs the step as its "show me" does (from a clean
  start too: the learner's half-done try removed first);
- :meth:`Lab.check` evaluates the step's checks;
- :meth:`Lab.reset` removes the lesson's containers and networks and sets
  the lab up again ("reset step"); :meth:`Lab.cleanup` removes them for good.

Setup commands are ``docker run --name NAME ...`` or ``docker network
create NAME``, and they *ensure* a state: a container of that name that
already exists (running, if the command has ``-d``), or a network of that
name, is kept, so opening a step twice changes nothing. The lesson's
networks are those its commands create (:meth:`Lab.networks`); they go
after its containers, and one still in use by a container that is not the
lesson's (another session's) is left alone, as the engine refuses it.

A step that ``requires`` what this machine lacks (``container-lab doctor``
says, see :mod:`lessons.requirements`) is explained, not run:
:meth:`Lab.unavailable` gives the learner's message, :meth:`Lab.show_me`
runs nothing and returns one result with ``skipped`` set and the message as
its output, :meth:`Lab.check` returns one result per check with ``skipped``
(and ``passed``, so the learner may go on) and the message as what it saw,
and the step's own setup is not made.

Sessions: two apps of one user share one engine. A Lab made with a
``session`` id labels every container it starts ``course.session=ID``,
lists and removes only those (:meth:`Lab.containers`, :meth:`Lab.cleanup`),
and never takes over or removes a container of another session: a name one
of those holds is a one-line error saying whose (:meth:`Lab.taken`).
Without ``session`` (``course solve``) nothing changes.

The lesson's folder: a lesson with ``files`` (a Dockerfile to build) has a
folder of the learner's, ``work/<lesson folder>`` in their state dir
(:func:`engine.paths.learner_state_dir`, theirs under sudo), where the lab
writes them -- the missing ones when a step begins, all of them again on
"reset" -- and where its commands run, so ``docker build -t hello .`` builds
that folder (:meth:`Lab.workdir`). Commands may say ``$PWD`` (that folder)
and ``$REGISTRY`` (the course's registry: ``course-registry`` in
registries.toml, see :mod:`engine.images.config`).

The image fallback (``lab`` for a lesson's ``ubuntu`` that cannot be
pulled): whether a registry could give the image is asked once per lesson
(:meth:`Lab.translate` remembers the answer), and the learner is told why
``lab`` runs instead once per lesson too -- with the first command that
falls back, not with every one (:meth:`Lab.said` notes a notice shown).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from . import requirements
from .checks import Result, evaluate_all
from .docker import LABEL_COURSE, LABEL_LESSON, CommandError, Context, EngineCommand, registry_has, translate
from .i18n import msg
from .model import Command, Course, Lesson, Step
from .runner import RunResult, run

LABEL_SESSION = "course.session"     # the app session that started a container

TAKEN = {
    "en": "The name {name} is taken by a container of another container-lab app running as this user "
          "(process {pid}): use another name, or quit that app first.",
    "zh": "名称 {name} 已被本用户另一个正在运行的 container-lab 应用（进程 {pid}）的容器占用："
          "请换一个名称，或先退出那个应用。",
}


def session_of(container: dict) -> str | None:
    """The app session that started ``container`` (a ``ps`` or ``inspect`` record), if any."""
    labels = container.get("labels") or (container.get("config") or {}).get("labels") or {}
    return labels.get(LABEL_SESSION)


class Lab:
    """One lesson's lab against the real engine; ``lang`` is the learner's language."""

    def __init__(self, course: Course, lesson: Lesson, *, lang: str = "en", view=None, doctor=None,
                 session: str | None = None):
        """``doctor``: a callable returning what :func:`engine.doctor.diagnose`
        returns (the default); asked once, when a step first requires something.
        ``session``: the app session's id (its process id first), see the module docstring."""
        from .view import EngineView

        self.course, self.lesson, self.lang = course, lesson, lang
        self.session = session
        self.view = view or EngineView()
        self._doctor = doctor or requirements.diagnose
        self._diagnosis: dict | None = None
        self._pullable: dict[str, tuple[str, str]] = {}     # image -> what the registry said, this lesson
        self._said: set[str] = set()                        # images whose fallback the learner has been told
        self._networks: tuple[str, ...] | None = None

    # -- what this machine can do ----------------------------------------------------
    def lacking(self, step: Step) -> list[dict]:
        """The doctor checks ``step`` requires that fail on this machine."""
        if not step.requires:
            return []
        if self._diagnosis is None:
            self._diagnosis = self._doctor()
        return requirements.lacking(step.requires, self._diagnosis)

    def unavailable(self, step: Step) -> str | None:
        """Why ``step`` is not run here, in the learner's language; None when it can run."""
        missing = self.lacking(step)
        return requirements.explain(self.lang, missing) if missing else None

    # -- commands --------------------------------------------------------------------
    def context(self, step: Step | None, origin: str) -> Context:
        folder = self.workdir()
        return Context(course=self.course.id, lesson=self.lesson.id, step=step.id if step else "",
                       origin=origin, images=(self.lesson.image, *self.lesson.images),
                       fallback=self.lesson.fallback, lang=self.lang, cwd=str(folder) if folder else None,
                       variables=self.variables())

    # -- the lesson's folder and words -----------------------------------------------
    def workdir(self) -> Path | None:
        """The lesson's folder (its files, where its commands run); None for a lesson without files."""
        if not self.lesson.files:
            return None
        from engine.paths import learner_state_dir
        return learner_state_dir() / "work" / self.lesson.folder

    def variables(self) -> tuple[tuple[str, str], ...]:
        """What ``$PWD`` and ``$REGISTRY`` stand for in this lesson's commands (the
        settings read each time, as the registry requirement is asked: a learner
        may set ``course-registry`` in the middle of a lesson)."""
        from engine.images import config

        try:
            registry = config.load().course_registry
        except config.ConfigError:
            registry = config.COURSE_REGISTRY       # pull and push say what is wrong with the file
        folder = self.workdir()
        return (("PWD", str(folder) if folder else "/"), ("REGISTRY", registry))

    def write_files(self, *, again: bool = False) -> list[str]:
        """Write the lesson's files into its folder: those missing (a learner's
        edit stays), or with ``again`` every one as the lesson gives it. Under
        sudo they are the learner's, so their own editor may change them.
        Returns the paths written."""
        folder = self.workdir()
        if folder is None:
            return []
        from engine.paths import learner_owner

        owner = learner_owner()
        written = []
        for name, text in self.lesson.files:
            path = folder / name
            if path.exists() and not again:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            written.append(str(path))
            if owner is not None:
                inside = [q for q in path.parents if q == folder or folder in q.parents]
                for p in (path, *inside, folder.parent):
                    try:
                        os.chown(p, *owner)
                    except OSError:
                        pass
        return written

    def translate(self, text: str, step: Step | None = None, origin: str = "learner") -> EngineCommand:
        """The engine command for ``text`` (raises :class:`~lessons.docker.CommandError`);
        a container it starts carries this Lab's session label."""
        cmd = translate(text, self.context(step, origin), can_pull=self._can_pull)
        if self.session and cmd.verb == "run" and cmd.argv[:1] == ("run",):
            cmd = replace(cmd, argv=("run", "--label", f"{LABEL_SESSION}={self.session}", *cmd.argv[1:]),
                          labels={**cmd.labels, LABEL_SESSION: self.session})
        return self._once(cmd)

    def _can_pull(self, ref: str) -> tuple[str, str]:
        """:func:`lessons.docker.registry_has`, asked once per image in this lesson."""
        if ref not in self._pullable:
            self._pullable[ref] = registry_has(ref)
        return self._pullable[ref]

    def _once(self, cmd: EngineCommand) -> EngineCommand:
        """``cmd`` without a fallback notice the learner has been shown in this
        lesson (every command carries it until one has been shown: see :meth:`said`)."""
        if cmd.notices and cmd.image and cmd.image_used != cmd.image and cmd.image in self._said:
            return replace(cmd, notices=())
        return cmd

    def said(self, cmd: EngineCommand) -> None:
        """The learner has been shown ``cmd``'s notices: not again in this lesson."""
        if cmd.notices and cmd.image:
            self._said.add(cmd.image)

    def taken(self, cmd: EngineCommand) -> str | None:
        """Why ``cmd`` may not use its ``--name``: another app session's container has it
        (the learner's message, naming that session's process); None when it may."""
        if not self.session or cmd.verb != "run" or not cmd.name:
            return None
        existing = self.view.container(cmd.name)
        owner = session_of(existing) if existing is not None else None
        if owner is None or owner == self.session:
            return None
        return TAKEN.get(self.lang, TAKEN["en"]).format(name=cmd.name, pid=owner.split("-")[0])

    def run(self, command: Command | str, step: Step | None = None, *, origin: str = "learner",
            cancel=None, on_output=None, timeout: float = 120) -> RunResult:
        """Run one docker command; a command that cannot be translated is a
        failed result with the reason as its output, not an exception."""
        command, cmd = self._prepare(command, step, origin, on_output)
        if isinstance(cmd, RunResult):
            return cmd
        return run(cmd, typed=command.type, cancel=cancel, timeout=timeout, lang=self.lang, on_output=on_output)

    def _prepare(self, command: Command | str, step: Step | None, origin: str, on_output):
        """(the command, its translation) with the notices said -- or a failed
        result with the reason when it does not translate."""
        if isinstance(command, str):
            command = Command(command)
        try:
            cmd = self.translate(command.text, step, origin)
        except CommandError as e:
            return command, RunResult(command.text, 125, str(e), error=str(e))
        if (why := self.taken(cmd)) is not None:
            return command, RunResult(command.text, 125, why, error=why)
        for notice in cmd.notices:
            if on_output:
                on_output(notice + "\n")
        if on_output:
            self.said(cmd)
        return command, cmd

    def run_explained(self, command: Command | str, step: Step | None = None, *, gate, origin: str = "learner",
                      cancel=None, on_begin=None, on_stage=None, on_output=None) -> RunResult:
        """Start a ``docker run --explain`` command one stage at a time through the
        engine's client, the same container :meth:`run` would make (see
        :func:`lessons.stepwise.start_explained`); a command that cannot be
        translated is a failed result, as with :meth:`run`."""
        from .stepwise import start_explained

        command, cmd = self._prepare(command, step, origin, on_output)
        if isinstance(cmd, RunResult):
            return cmd
        return start_explained(cmd, gate=gate, cancel=cancel, on_begin=on_begin, on_stage=on_stage,
                               on_output=on_output, client=self.view.client)

    # -- the lab's state -------------------------------------------------------------
    def containers(self) -> list[dict]:
        """This lesson's containers (those its commands started -- in this session, if it has one), newest first."""
        return [c for c in self.view.containers()
                if (c.get("labels") or {}).get(LABEL_COURSE) == self.course.id
                and (c.get("labels") or {}).get(LABEL_LESSON) == self.lesson.id
                and (self.session is None or session_of(c) == self.session)]

    def networks(self) -> tuple[str, ...]:
        """The networks this lesson's commands create (``docker network create NAME``
        in its setup, its steps' setup, commands and "show me"), in order."""
        if self._networks is None:
            found: list[str] = []
            commands = [*self.lesson.setup]
            for step in self.lesson.steps:
                commands += [*step.setup, *step.commands, *step.show]
            for command in commands:
                try:
                    cmd = translate(command.text, self.context(None, "setup"), check_only=True)
                except CommandError:
                    continue                  # course check says so; nothing is made by it
                if cmd.network and cmd.network not in found:
                    found.append(cmd.network)
            self._networks = tuple(found)
        return self._networks

    def cleanup(self) -> list[str]:
        """Remove every container of this lesson, then the networks it creates;
        returns the containers' names."""
        from engine.errors import ContainerNotFound

        removed = []
        for c in self.containers():
            try:
                self.view.client.remove(c["id"], force=True)
                removed.append(c["name"])
            except ContainerNotFound:
                pass
        self.remove_networks()
        return removed

    def remove_networks(self) -> list[str]:
        """Remove the lesson's networks that exist; one a container not of this
        lesson still uses is kept (the engine refuses it). Returns those removed."""
        from engine.errors import EngineError

        mine = self.networks()
        if not mine:
            return []
        try:
            existing = set(self.view.networks())
        except EngineError:
            return []
        removed = []
        for name in mine:
            if name not in existing:
                continue
            try:
                self.view.client.network_remove(name)
                removed.append(name)
            except EngineError:
                pass
        return removed

    def ensure(self, commands, step: Step | None, *, cancel=None) -> list[RunResult]:
        """Bring each setup container (or network) into being unless it already is (a
        container of another session's by that name is neither used nor removed:
        CommandError, saying whose)."""
        results = []
        for command in commands:
            cmd = self.translate(command.text, step, "setup")
            if cmd.network is not None:
                if cmd.network not in self.view.networks():
                    results.append(run(cmd, cancel=cancel, lang=self.lang))
                continue
            if (why := self.taken(cmd)) is not None:
                raise CommandError(why)
            existing = self.view.container(cmd.name) if cmd.name else None
            if existing is not None and (existing.get("status") == "running" or not cmd.detach):
                continue
            if existing is not None:
                self.view.client.remove(existing["id"], force=True)
            results.append(run(cmd, cancel=cancel, lang=self.lang))
        return results

    def made_by(self, step: Step) -> tuple[set[str], set[str]]:
        """The containers (``run --name``) and networks (``network create``) that
        ``step``'s own commands make -- not those a setup ensures."""
        def made(commands) -> tuple[set[str], set[str]]:
            names, networks = set(), set()
            for command in commands:
                try:
                    cmd = translate(command.text, self.context(step, "setup"), check_only=True)
                except CommandError:
                    continue                  # course check says so; nothing is made by it
                if cmd.network:
                    networks.add(cmd.network)
                elif cmd.verb == "run" and cmd.name:
                    names.add(cmd.name)
            return names, networks
        names, networks = made((*step.commands, *step.show))
        kept_names, kept_networks = made((*self.lesson.setup, *step.setup))
        return names - kept_names, networks - kept_networks

    def clear_leftovers(self, step: Step) -> list[str]:
        """Remove what an earlier try of ``step`` left: this lesson's containers
        (of this session) named by the step's own ``run --name``, then the
        networks its own commands create -- so the step's commands never fail
        with "name in use" the second time. A container of that name that is
        not this lesson's is left alone (the learner's own: the engine says so).
        Returns the names removed."""
        from engine.errors import ContainerNotFound, EngineError

        names, networks = self.made_by(step)
        if not names and not networks:
            return []
        removed = []
        for c in self.containers():
            if c["name"] in names:
                try:
                    self.view.client.remove(c["id"], force=True)
                    removed.append(c["name"])
                except ContainerNotFound:
                    pass
        if networks:
            try:
                existing = set(self.view.networks())
            except EngineError:
                existing = set()
            for name in sorted(networks & existing):
                try:
                    self.view.client.network_remove(name)
                    removed.append(name)
                except EngineError:
                    pass                      # still in use by a container not of this step
        return removed

    def begin_step(self, step: Step, *, cancel=None) -> tuple[int, list[RunResult]]:
        """Set the step's starting state up (an earlier try's leftovers removed,
        see :meth:`clear_leftovers`); returns (cursor, setup results)."""
        self.write_files()
        results = self.ensure(self.lesson.setup, None, cancel=cancel)
        if not self.lacking(step):
            self.clear_leftovers(step)
            results += self.ensure(step.setup, step, cancel=cancel)
        return self.view.cursor(), results

    def reset(self, step: Step | None = None, *, cancel=None) -> tuple[int, list[RunResult]]:
        """Start over: remove the lesson's containers, set the step (or the lesson) up again."""
        self.cleanup()
        self.write_files(again=True)
        if step is None:
            return self.view.cursor(), self.ensure(self.lesson.setup, None, cancel=cancel)
        return self.begin_step(step, cancel=cancel)

    # -- doing and checking ----------------------------------------------------------
    def show_me(self, step: Step, *, cancel=None, on_output=None, origin: str = "show") -> list[RunResult]:
        """Perform the step: run its "show me" commands, typing what they need
        (or, where the machine lacks what the step requires, say so and run nothing)."""
        if (why := self.unavailable(step)) is not None:
            if on_output:
                on_output(why + "\n")
            return [RunResult("", 0, why, skipped=True)]
        self.clear_leftovers(step)          # what the learner's own try made: show me starts afresh
        results = []
        for command in step.show_me:
            if cancel is not None and cancel.is_set():
                break
            results.append(self.run(command, step, origin=origin, cancel=cancel, on_output=on_output))
        return results

    def check(self, step: Step, cursor: int, *, wait: float = 0.0, cancel=None) -> list[Result]:
        """The step's checks against what happened since ``cursor`` (skipped,
        with the reason, where the machine lacks what the step requires)."""
        if (why := self.unavailable(step)) is not None:
            return [Result(spec.kind, True, why, msg(self.lang, "check.skipped"), skipped=True) for spec in step.checks]
        return evaluate_all(step.checks, self.view, cursor, self.lang, wait=wait, cancel=cancel)
