"""``commit``: a container's writable layer made into a new image, as
``docker commit`` makes one.

The new image is the container's image plus one layer -- its overlayfs
upperdir packed as a layer diff (:func:`.pack.upper_items`: whiteouts
become ``.wh.NAME``, opaque directories ``.wh..wh..opq``) -- and a config
that is the image's with what the container was run with (``-e``, a
command, ``-w``, ``-u``, labels) and ``--change`` instructions over it, one
history entry more (``created_by`` the container's command, ``comment``
the message), its diff_ids and creation time updated. It is stored through
:meth:`ImageStore.add_image` like any image.

A running container is paused while its layer is read, as docker pauses
it, so no file is caught half-written: on cgroup v2 its cgroup is frozen
(``cgroup.freeze``); on cgroup v1, where its cgroup has no freezer, each of
its processes is stopped with SIGSTOP (again until no new one appears) and
continued with SIGCONT after. ``pause=False`` reads it as it runs. Without
a name the image is kept untagged (``<none>``, used by its id), as a build's is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ImageError, InvalidArgument
from engine.images.reference import familiar_reference

from . import dockerfile as df
from .metadata import CONFIG_ONLY, config_change
from .pack import upper_items, write_layer
from .state import from_digest, store_state

# Docker's list for --change.
CHANGEABLE = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")


@dataclass
class Committed:
    id: str
    name: str                       # "" when it was committed without one
    warnings: list[str] = field(default_factory=list)


def commit(client, ref: str, name: str | None = None, *, pause: bool = True, message: str = "",
           author: str = "", changes: list[str] = (), store=None) -> Committed:
    """Commit container ``ref`` as the image ``name`` (see the module's docstring)."""
    from .builder import default_store

    store = store or default_store()
    if name is not None:
        try:
            name = familiar_reference(name)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid reference {name!r}: {e}") from None
        if "@" in name:
            raise InvalidArgument(f"invalid reference {name!r}: a tag names a committed image, not a digest")
    instructions = _changes(changes)
    record = client.inspect(ref)
    if not record["image"].get("digest"):
        raise ImageError(f"container {record['name']} has no image to commit on")
    state = from_digest(store, record["image"]["digest"])
    _container_settings(state, record["config"])
    env = state.env()
    for parsed, ins in instructions:
        _by, change = config_change(parsed, ins, state, env, reset_cmd=False)
        change(state)
    warnings: list[str] = []
    with store.work_dir("commit-") as work:
        running = record["status"] in ("running", "starting")
        with (_paused(record, warnings) if running and pause else contextlib.nullcontext()):
            written = write_layer(upper_items(record["rootfs"]["upper"]), work / "layer.tar.gz")
        state.add_layer(written.descriptor(), written.diff_id)
        if author:
            state.config["author"] = author
        state.add_history(" ".join(record["process"].get("argv") or record["config"].get("cmd") or []),
                          empty=False, comment=message)
        names = [name] if name else []
        image = store_state(store, state, names, {written.digest: written.path}, warn=warnings.append)
    return Committed(image.id, name or "", warnings)


def _changes(changes: list[str]) -> list[tuple[df.Dockerfile, df.Instruction]]:
    """Each ``--change`` line, read as a one-line Dockerfile."""
    out = []
    for text in changes:
        try:
            parsed = df.parse(text, "--change")
        except df.DockerfileError as e:
            raise InvalidArgument(str(e).replace("--change:1: ", "--change: ")) from None
        if len(parsed.instructions) != 1:
            raise InvalidArgument(f"--change {text!r}: one instruction per --change")
        ins = parsed.instructions[0]
        if ins.keyword not in CHANGEABLE or ins.keyword not in CONFIG_ONLY:
            raise InvalidArgument(f"--change {text!r}: {ins.keyword} is not supported by commit "
                                  f"(only {', '.join(CHANGEABLE)})")
        out.append((parsed, ins))
    return out


def _container_settings(state, config: dict) -> None:
    """What the container was run with, over its image's config (docker keeps them in the image)."""
    s = state.settings
    for item in config.get("env") or []:
        key, _, value = item.partition("=")
        state.set_env(key, value)
    if config.get("entrypoint") is not None:
        s["Entrypoint"] = list(config["entrypoint"])
        s["Cmd"] = list(config.get("cmd") or []) or None
    elif config.get("cmd"):
        s["Cmd"] = list(config["cmd"])
    if config.get("workdir"):
        s["WorkingDir"] = config["workdir"]
    if config.get("user"):
        s["User"] = config["user"]
    if config.get("labels"):
        s["Labels"] = {**(s.get("Labels") or {}), **config["labels"]}


@contextlib.contextmanager
def _paused(record: dict, warnings: list[str]):
    """The container's processes held still (see the module's docstring)."""
    cgroups = [Path(p) for p in (record.get("cgroup") or {}).values()]
    freeze = next((p / "cgroup.freeze" for p in cgroups if (p / "cgroup.freeze").is_file()), None)
    if freeze is not None:
        try:
            freeze.write_text("1")
        except OSError as e:
            warnings.append(f"could not pause the container ({e.strerror}); its layer was read as it ran")
            yield
            return
        try:
            _wait_frozen(freeze.parent)
            yield
        finally:
            freeze.write_text("0")
        return
    stopped: set[int] = set()
    try:
        procs = next((p / "cgroup.procs" for p in cgroups if (p / "cgroup.procs").is_file()), None)
        for _ in range(50):
            pids = _read_pids(procs) if procs else ({record["pid"]} if record.get("pid") else set())
            new = pids - stopped
            if not new:
                break
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
        if not stopped:
            warnings.append("could not pause the container (no process found); its layer was read as it ran")
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _wait_frozen(cgroup: Path, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "frozen 1" in (cgroup / "cgroup.events").read_text():
                return
        except OSError:
            return
        time.sleep(0.005)


def _read_pids(path: Path) -> set[int]:
    try:
        return {int(x) for x in path.read_text().split()}
    except (OSError, ValueError):
        return set()
