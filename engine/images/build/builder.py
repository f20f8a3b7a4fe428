"""The build itself: a Dockerfile and a context in, an image in the store out.

:func:`build` reads the Dockerfile (:mod:`.dockerfile`) and the context
(:mod:`.context`), works out the global ``ARG`` s, picks the stages the
target needs (the last stage unless ``target``; a stage no other needs is
skipped, as BuildKit skips it), builds each (:class:`.steps.StageBuild`)
and stores the target's image under its tags -- or, without a tag, with
none (``<none>`` in ``images``; ``run <id>`` works). A tag that named an
older image moves to the new one; the old one stays, dangling, until
``image prune`` -- and its layers keep serving the build cache till then,
as docker's do.

It runs where the CLI runs, as ``pull`` does: it reads the context in
place and writes the store itself, and asks the supervisor only to run the
``RUN`` containers. What it leaves behind is what it was asked for: its
work directory (layer tars) goes, its intermediate images lose their names
(:meth:`ImageStore.untag`; their layers stay for the build cache while an
image uses them, and ``image prune`` takes the rest), every RUN container
is removed; on failure no image is tagged. What a build killed outright
leaves, the next one clears (:mod:`.debris`).

ARG scope, as docker has it: an ``ARG`` before the first ``FROM`` is global
and visible to the ``FROM`` lines only; inside a stage an ``ARG`` is visible
from its line to the stage's end, its value the ``--build-arg`` one, else
its default, else -- for ``ARG NAME`` alone -- the global one of that name.
A ``--build-arg`` no ``ARG`` declares is reported at the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images.reference import familiar_reference

from . import dockerfile as df
from .context import Context
from .progress import Progress
from .state import State, from_image, store_state
from .view import LayerView
from .words import WordError, expand, split_words

ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMP_REPOSITORY = "container-lab-build"


@dataclass
class Options:
    """What ``build`` was asked (its flags)."""

    tags: list[str] = field(default_factory=list)
    dockerfile: str | None = None           # a path, "-" for standard input; CONTEXT/Dockerfile if None
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    target: str | None = None
    quiet: bool = False
    network: str = "bridge"


@dataclass
class Result:
    """The image built: its id, the names it was stored under, warnings said,
    and how many of its instructions after FROM the build cache answered."""

    id: str
    names: list[str]
    image: object
    warnings: list[str] = field(default_factory=list)
    steps: int = 0
    cached: int = 0
    dockerfile: str = ""                    # "sha256:..." of the Dockerfile's text: which one was built


def default_store():
    from engine import paths
    from engine.client import Client
    from engine.images.store import ImageStore

    Client().enter_userns()          # rootless: owners as the image names them
    return ImageStore(paths.ensure_private_dir(paths.data_dir()) / "images")


def build(client, context: str | Path, options: Options | None = None, *, store=None, stream=None) -> Result:
    """Build the image the Dockerfile describes; see the module's docstring.
    Raises ImageError (one line naming the Dockerfile's line) on failure."""
    options = options or Options()
    return Build(client, store or default_store(), Path(context), options, Progress(stream, quiet=options.quiet)).run()


class Build:
    """One build's state: its stages' results, temporary names, containers."""

    def __init__(self, client, store, context: Path, options: Options, progress: Progress):
        from engine import paths

        from .cache import BuildCache

        self.client, self.store, self.opt, self.progress = client, store, options, progress
        self.context_dir = context
        self.cache = BuildCache(paths.data_dir() / "build-cache", store)
        self.token = secrets.token_hex(6)
        self.temp_names: list[str] = []
        self.results: dict[int, State] = {}
        self.consumed: set[str] = set()
        self.warnings: list[str] = []
        self.global_args: dict[str, str | None] = {}
        self.work: Path | None = None
        self.steps = self.cached_steps = 0      # instructions after FROM, and the build cache's answers
        self.dockerfile_digest = ""

    # -- the whole build -----------------------------------------------------

    def run(self) -> Result:
        tags = []
        for t in self.opt.tags:
            try:
                tags.append(familiar_reference(t))
            except InvalidArgument as e:
                raise InvalidArgument(f"invalid tag {t!r}: {e}") from None
            if "@" in tags[-1]:
                raise InvalidArgument(f"invalid tag {t!r}: a tag, not a digest, names a built image")
        if not self.context_dir.is_dir():
            raise ImageError(f"unable to prepare context: path {str(self.context_dir)!r} is not a directory")
        self.dockerfile = self._read_dockerfile()
        n = self.progress.vertex("[internal] load .dockerignore")
        self.context = Context.open(self.context_dir)
        self.progress.log(n, f"transferring context: {len(self.context.ignore.patterns)} pattern(s) done")
        self.progress.done(n)
        global_args, stages = df.stages(self.dockerfile)
        self._global_args(global_args)
        target = self._target(stages)
        needed = self._needed(stages, target)
        from .debris import Running, sweep
        from .runner import BUILD_LABEL

        self.running = Running(self.cache.root, self.token)
        try:
            sweep(self.cache.root, self.store, self.client, BUILD_LABEL)
            with self.store.work_dir("build-") as work:
                self.work = work
                from .steps import StageBuild

                for stage in stages:
                    if stage.index in needed:
                        self.results[stage.index] = StageBuild(self, stage, stages).run()
                return self._export(self.results[target.index], tags)
        finally:
            self.work = None
            try:
                if self.temp_names:
                    self.store.untag(self.temp_names)
            except ImageError as e:
                print(f"WARNING: {e}", file=sys.stderr)
            else:
                self.running.close()        # kept on failure: the next build drops the names

    def _read_dockerfile(self) -> df.Dockerfile:
        given = self.opt.dockerfile
        path = Path(given) if given and given != "-" else self.context_dir / "Dockerfile"
        shown = "Dockerfile" if given in (None, "-") else path.name
        n = self.progress.vertex(f"[internal] load build definition from {shown}")
        try:
            text = sys.stdin.read() if given == "-" else path.read_text(errors="surrogateescape")
        except FileNotFoundError:
            raise ImageError(f"failed to read the Dockerfile: {path}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"failed to read the Dockerfile: {path} is a directory") from None
        except OSError as e:
            raise ImageError(f"failed to read the Dockerfile: {path}: {e.strerror or e}") from None
        self.progress.log(n, f"transferring dockerfile: {len(text.encode(errors='surrogateescape'))}B done")
        self.dockerfile_digest = "sha256:" + hashlib.sha256(text.encode(errors="surrogateescape")).hexdigest()
        parsed = df.parse(text, shown)
        for note in parsed.notes:
            self.progress.log(n, f"WARN: {note}")
        self.progress.done(n)
        return parsed

    def _global_args(self, instructions: list[df.Instruction]) -> None:
        for ins in instructions:
            for name, default in self.arg_words(ins, {k: v for k, v in self.global_args.items() if v is not None}):
                self.consumed.add(name)
                self.global_args[name] = self.opt.build_args.get(name, default)

    def arg_words(self, ins: df.Instruction, env: dict[str, str]) -> list[tuple[str, str | None]]:
        """``ARG a b=1``: each name and its default (expanded), or None."""
        out = []
        for word in split_words(ins.rest, self.dockerfile.escape):
            name, eq, default = word.partition("=")
            if not ARG_NAME.match(name):
                raise self.dockerfile.error(ins.line, f"ARG {name!r}: not a valid name for a build argument")
            out.append((name, self.expand(ins, default, env) if eq else None))
        return out

    def expand(self, ins: df.Instruction, text: str, env: dict[str, str]) -> str:
        try:
            return expand(text, env, self.dockerfile.escape)
        except WordError as e:
            raise self.dockerfile.error(ins.line, f"{ins.keyword}: {e}") from None

    def _target(self, stages: list[df.Stage]) -> df.Stage:
        if self.opt.target is None:
            return stages[-1]
        for s in stages:
            if s.name == self.opt.target.lower():
                return s
        raise ImageError(f"failed to reach build target {self.opt.target} in the Dockerfile (no stage "
                         f"is named so: {', '.join(s.name for s in stages if s.name) or 'no stage has a name'})")

    def stage_ref(self, stages: list[df.Stage], name: str, before: int) -> df.Stage | None:
        """The stage ``name`` (a name or an index) names among those before ``before``, or None."""
        for s in stages[:before]:
            if s.name == name.lower() or (name.isdigit() and int(name) == s.index):
                return s
        return None

    def _needed(self, stages: list[df.Stage], target: df.Stage) -> set[int]:
        """The stages ``target`` needs: itself, its base stage and the stages
        it copies from, and theirs."""
        meta = {k: v for k, v in self.global_args.items() if v is not None}
        needed: set[int] = set()
        todo = [target]
        while todo:
            s = todo.pop()
            if s.index in needed:
                continue
            needed.add(s.index)
            base = self.expand(s.from_line, s.base, meta)
            if (dep := self.stage_ref(stages, base, s.index)) and not base.isdigit():
                todo.append(dep)
            for ins in s.instructions:
                if ins.keyword == "COPY" and "from" in ins.flags:
                    src = ins.flags["from"]
                    dep = self.stage_ref(stages, src, s.index) if "$" not in src else None
                    if dep is not None:
                        todo.append(dep)
                    elif "$" in src:
                        todo.extend(x for x in stages[:s.index])      # decided later: build what it may name
        return needed

    # -- helpers for the stages ----------------------------------------------------

    def temp_name(self) -> str:
        name = f"{TEMP_REPOSITORY}/{self.token}:{len(self.temp_names) + 1}"
        self.running.note(name)
        self.temp_names.append(name)
        return name

    def store_state(self, state: State, new_blobs: dict | None = None) -> None:
        """Put ``state`` in the store under a temporary name of this build."""
        warned: list[str] = []
        store_state(self.store, state, [self.temp_name()], new_blobs, warn=warned.append)
        self.warnings.extend(warned)

    def layer_dirs(self, state: State) -> list[Path]:
        return [self.store.layers / d.removeprefix("sha256:") for d in state.diff_ids()]

    def view(self, state: State) -> LayerView:
        return LayerView(self.layer_dirs(state))

    def image_state(self, ref: str, n: int) -> State:
        """The state of the image ``ref``: from the store, else pulled."""
        try:
            return from_image(self.store, self.store.resolve(ref))
        except ImageNotFound:
            pass
        from engine.images.pull import pull

        self.progress.log(n, f"pulling {ref}")

        def report(event: dict) -> None:
            if event["event"] in ("exists", "done"):
                self.progress.log(n, f"{event.get('digest', '')[7:19]}: "
                                     f"{'already exists' if event['event'] == 'exists' else 'pull complete'}")
        pull(self.store, ref, report)
        return from_image(self.store, self.store.resolve(ref))

    # -- the end -------------------------------------------------------------

    def _export(self, state: State, tags: list[str]) -> Result:
        n = self.progress.vertex("exporting to image")
        self.progress.log(n, "exporting layers done")
        image_id = state.image_id()
        names = list(tags)          # none: the image is kept untagged, used by its id
        self.progress.log(n, f"writing image {image_id} done")
        warned: list[str] = []
        image = store_state(self.store, state, names, warn=warned.append)
        for name in names:
            self.progress.log(n, f"naming to {name} done")
        self.progress.done(n)
        unused = sorted(set(self.opt.build_args) - self.consumed)
        if unused:
            self.warnings.append(f"one or more build-args [{' '.join(unused)}] were not consumed")
        return Result(image.id, names, image, self.warnings + warned, self.steps, self.cached_steps,
                      self.dockerfile_digest)


def parse_build_args(values: list[str], environ=os.environ) -> dict[str, str]:
    """``--build-arg K=V`` (or ``K``: the value from the environment, left out if unset)."""
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not ARG_NAME.match(key):
            raise InvalidArgument(f"invalid --build-arg {item!r}: expected NAME=VALUE")
        if eq:
            out[key] = value
        elif key in environ:
            out[key] = environ[key]
    return out
