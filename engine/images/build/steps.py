"""One build stage, instruction by instruction: :class:`StageBuild`.

Each instruction turns the stage's :class:`.state.State` into the next. A
``RUN``, ``COPY`` or ``ADD`` adds one layer; every other instruction changes
the config only, and adds a history entry marked ``empty_layer`` -- so the
image's history has one line per instruction of its stages (after the
base image's own). Before doing anything a step asks the build cache
(:mod:`.cache`) for its key; a hit takes the state it recorded (``#5
CACHED``) and costs nothing but, for ``COPY``, reading the files to
checksum them.

Variables in an instruction (``ENV``, ``LABEL``, ``COPY`` ...) expand from
the ``ARG`` s in scope and the ``ENV`` s, an ``ENV`` winning over an ``ARG``
of the same name. ``RUN``, ``CMD`` and ``ENTRYPOINT`` are not expanded here:
the shell does that, and a ``RUN`` gets the ``ARG`` s in scope in its
environment (not kept in the image).
"""

from __future__ import annotations

import json
import re
import time

from engine.errors import EngineError, ImageError, InvalidArgument
from engine.spec import ContainerConfig

from . import dockerfile as df
from .cache import chain_key
from .context import Resolved
from .copying import Options as CopyOptions
from .copying import Planner, checksum, image_sources, parse_chmod
from .metadata import argv_of, config_change
from .pack import upper_items, write_layer
from .runner import BUILD_LABEL, StepContainer
from .state import State, scratch

_URL = re.compile(r"^(https?://|git@|git://)", re.IGNORECASE)
# Instructions shown as steps ([2/5] ...); the others change the config only.
SHOWN = ("FROM", "RUN", "COPY", "ADD")


class StageBuild:
    """Build one stage of ``build`` (a :class:`.builder.Build`)."""

    def __init__(self, build, stage: df.Stage, stages: list[df.Stage]):
        self.b, self.stage, self.stages = build, stage, stages
        self.df = build.dockerfile
        self.args: dict[str, str | None] = {}          # ARGs declared in this stage so far
        self.cmd_set = False
        self.state: State | None = None
        self.steps = 1 + sum(1 for i in stage.instructions if i.keyword in SHOWN)
        self.step = 0

    # -- helpers ---------------------------------------------------------------

    def error(self, ins: df.Instruction, message: str) -> ImageError:
        return self.df.error(ins.line, message)

    def vars(self) -> dict[str, str]:
        """What variables expand to here: the ARGs with a value, then the ENVs over them."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.state.env())
        return out

    def expand(self, ins: df.Instruction, text: str) -> str:
        return self.b.expand(ins, text, self.vars())

    def vertex(self, ins: df.Instruction, text: str | None = None) -> int:
        self.step += 1
        label = f"{self.stage.name} {self.step}/{self.steps}" if self.stage.name else f"{self.step}/{self.steps}"
        return self.b.progress.vertex(f"[{label}] {text or ins.original}")

    def cached(self, key: str) -> State | None:
        """The build cache's answer for this step (asked once per instruction after FROM, and counted)."""
        hit = None if self.b.opt.no_cache else self.b.cache.get(key)
        self.b.steps += 1
        self.b.cached_steps += hit is not None
        return hit

    # -- the stage -----------------------------------------------------------------

    def run(self) -> State:
        self.from_(self.stage.from_line)
        handlers = {"RUN": self.run_, "COPY": self.copy, "ADD": self.copy, "ARG": self.arg}
        for ins in self.stage.instructions:
            handler = handlers.get(ins.keyword)
            if handler is not None:
                handler(ins)
            else:
                self.metadata(ins)
        return self.state

    def from_(self, ins: df.Instruction) -> None:
        meta = {k: v for k, v in self.b.global_args.items() if v is not None}
        base = self.b.expand(ins, self.stage.base, meta)
        if not base:
            raise self.error(ins, "FROM names no image (an ARG that expands to nothing?)")
        if self.stage.platform is not None:
            self.b.warnings.append(f"{self.df.name}:{ins.line}: FROM --platform is ignored: images are "
                                   "built for this machine's platform")
        n = self.vertex(ins, f"FROM {base}" + (f" AS {self.stage.name}" if self.stage.name else ""))
        if base.lower() == "scratch":
            self.state = scratch()
        elif (dep := self.b.stage_ref(self.stages, base, self.stage.index)) is not None and not base.isdigit():
            self.state = self.b.results[dep.index].copy()
        else:
            try:
                self.state = self.b.image_state(base, n)
            except EngineError as e:
                self.b.progress.error(n, str(e))
                raise self.error(ins, f"FROM {base}: {e}") from None
        self.b.progress.done(n)

    def arg(self, ins: df.Instruction) -> None:
        for name, default in self.b.arg_words(ins, self.vars()):
            self.b.consumed.add(name)
            if name in self.b.opt.build_args:
                value = self.b.opt.build_args[name]
            elif default is not None:
                value = default
            else:
                value = self.b.global_args.get(name)
            self.args[name] = value
        self.metadata_step(ins, f"ARG {ins.rest}", lambda s: None)

    # -- metadata ----------------------------------------------------------------------

    def metadata_step(self, ins: df.Instruction, created_by: str, change) -> None:
        """Apply ``change(state)`` and record ``created_by``, or take the cached result."""
        key = chain_key(self.state.key, created_by)
        hit = self.cached(key)
        if hit is not None:
            if hit.layers == self.state.layers:
                hit.stored = self.state.stored      # the same layers: the image stored for them serves
            self.state = hit
            return
        state = self.state.copy()
        change(state)
        state.add_history(created_by, empty=True)
        state.key = key
        self.b.cache.put(key, state)
        self.state = state

    def metadata(self, ins: df.Instruction) -> None:
        created_by, change = config_change(self.df, ins, self.state, self.vars(),
                                           reset_cmd=ins.keyword == "ENTRYPOINT" and not self.cmd_set)
        if ins.keyword == "CMD":
            self.cmd_set = True
        self.metadata_step(ins, created_by, change)

    # -- RUN ---------------------------------------------------------------------------

    def run_(self, ins: df.Instruction) -> None:
        argv = argv_of(ins, self.state)
        if not argv:
            raise self.error(ins, "RUN requires a command")
        env_names = set(self.state.env())
        args = sorted((k, v) for k, v in self.args.items() if v is not None and k not in env_names)
        prefix = f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in args) + " " if args else ""
        shown = " ".join(argv) if ins.json_form() is None else json.dumps(argv)
        created_by = f"RUN {prefix}{shown}"
        key = chain_key(self.state.key, created_by)
        n = self.vertex(ins, f"RUN {ins.rest}")
        hit = self.cached(key)
        if hit is not None:
            self.b.progress.cached(n)
            self.state = hit
            return
        if self.state.stored is None:
            self.b.store_state(self.state)
        s = self.state.settings
        config = ContainerConfig(
            self.state.stored, cmd=argv, entrypoint=[], name=f"build-{self.b.token}-{self.b.progress.count}",
            env=[*(s.get("Env") or []), *(f"{k}={v}" for k, v in args)],
            workdir=s.get("WorkingDir") or None, user=s.get("User") or None,
            labels={BUILD_LABEL: self.b.token}, network=self.b.opt.network)
        try:
            config.validate()
        except InvalidArgument as e:
            raise self.error(ins, f"RUN: {e}") from None
        try:
            with StepContainer(self.b.client, config) as c:
                result = c.run(lambda line: self.b.progress.output(n, line))
                if result.exit_code != 0 or result.error:
                    why = f"exit code {result.exit_code}" + (" (out of memory)" if result.oom else "")
                    self.b.progress.error(n, f"process {shown!r} did not complete successfully: {why}")
                    raise self.error(ins, f"RUN failed with {why}"
                                     + (f": {result.error}" if result.error and result.exit_code else ""))
                written = write_layer(upper_items(result.upper), self.b.work / f"layer-{n}.tar.gz")
        except ImageError:
            raise
        except EngineError as e:
            self.b.progress.error(n, str(e))
            raise self.error(ins, f"RUN failed: {e}") from None
        self.add_layer(key, created_by, written)
        self.b.progress.done(n)

    def add_layer(self, key: str, created_by: str, written) -> None:
        state = self.state.copy()
        state.add_layer(written.descriptor(), written.diff_id)
        state.add_history(created_by, empty=False)
        state.key = key
        self.b.store_state(state, {written.digest: written.path})
        self.b.cache.put(key, state)
        written.path.unlink()
        self.state = state

    # -- COPY and ADD ------------------------------------------------------------------

    def copy(self, ins: df.Instruction) -> None:
        kw = ins.keyword
        words = ins.json_form()
        words = [self.expand(ins, w) for w in (words if words is not None else ins.rest.split())]
        if len(words) < 2:
            raise self.error(ins, f"{kw} requires at least two arguments: SOURCE... DEST")
        *sources, dest = words
        opts = CopyOptions(unpack=kw == "ADD", now=time.time())
        flags = []
        try:
            if "chmod" in ins.flags:
                opts.chmod = parse_chmod(self.expand(ins, ins.flags["chmod"]))
                flags.append(f"--chmod={ins.flags['chmod']}")
        except ImageError as e:
            raise self.error(ins, f"{kw}: {e}") from None
        chown = self.expand(ins, ins.flags["chown"]) if "chown" in ins.flags else None
        if chown is not None:
            flags.append(f"--chown={chown}")
        source_state = None
        if "from" in ins.flags:
            src = self.expand(ins, ins.flags["from"])
            flags.append(f"--from={src}")
            source_state = self.source_state(ins, src)
        n = self.vertex(ins, f"{kw} {' '.join(flags + words)}")
        try:
            resolved = self.resolve_sources(ins, sources, source_state)
            total = checksum(resolved, keep_owners=source_state is not None)
        except ImageError as e:
            self.b.progress.error(n, str(e))
            raise self.error(ins, f"{kw} {e}") from None
        created_by = f"{kw} {' '.join(flags + words)}"
        key = chain_key(self.state.key, created_by, total,
                        source_state.key if source_state is not None else "context")
        hit = self.cached(key)
        if hit is not None:
            self.b.progress.cached(n)
            self.state = hit
            return
        try:
            view = self.b.view(self.state)
            if chown is not None:
                user, _, group = chown.partition(":")
                opts.chown = view.user_ids(user, group or None)
            opts.keep_owners = source_state is not None
            planner = Planner(view, opts, self.b.work)
            items = planner.plan(resolved, dest, self.state.settings.get("WorkingDir") or "/",
                                 several=len(sources) > 1)
            written = write_layer(items, self.b.work / f"layer-{n}.tar.gz")
        except ImageError as e:
            self.b.progress.error(n, str(e))
            raise self.error(ins, f"{kw} failed: {e}") from None
        except OSError as e:
            self.b.progress.error(n, str(e))
            raise self.error(ins, f"{kw} failed: {e.strerror or e}"
                             + (f" ({e.filename})" if e.filename else "")) from None
        self.add_layer(key, created_by, written)
        self.b.progress.done(n)

    def source_state(self, ins: df.Instruction, src: str) -> State:
        """What ``--from=`` names: an earlier stage (name or index), else an image."""
        if src.isdigit():
            dep = self.b.stage_ref(self.stages, src, self.stage.index)
            if dep is None:
                raise self.error(ins, f"COPY --from={src}: there is no stage {src} before this one")
            return self.b.results[dep.index]
        dep = self.b.stage_ref(self.stages, src, self.stage.index)
        if dep is not None:
            return self.b.results[dep.index]
        if src.lower() == self.stage.name:
            raise self.error(ins, f"COPY --from={src}: a stage cannot copy from itself")
        try:
            return self.b.image_state(src, self.b.progress.count)
        except EngineError as e:
            raise self.error(ins, f"COPY --from={src}: {e}") from None

    def resolve_sources(self, ins: df.Instruction, sources: list[str], source_state: State | None) -> list[Resolved]:
        out: list[Resolved] = []
        for src in sources:
            if _URL.match(src):
                if ins.keyword == "ADD":
                    raise ImageError(f"{src}: ADD from a URL is not supported; download the file into the "
                                     "build context and ADD or COPY it from there")
                raise ImageError(f"{src}: COPY copies from the build context, not from a URL")
            if source_state is not None:
                out += image_sources(self.b.view(source_state), src)
            else:
                out += self.b.context.sources(src)
        return out

