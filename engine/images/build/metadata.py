"""The instructions that change an image's config and no file: ENV, LABEL,
WORKDIR, USER, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, EXPOSE, VOLUME and
MAINTAINER -- for a build's steps and for ``commit --change``.

:func:`config_change` reads one instruction and returns what the history
records for it (variables expanded, as ``docker history`` shows it) and the
change to make to a :class:`.state.State`. Reading and changing are apart
so the build cache can be asked between the two.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable

from engine.errors import ImageError

from . import dockerfile as df
from .state import State
from .words import WordError, expand, split_words

DEFAULT_SHELL = ["/bin/sh", "-c"]
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$")
CONFIG_ONLY = ("ENV", "LABEL", "WORKDIR", "USER", "STOPSIGNAL", "CMD", "ENTRYPOINT", "SHELL", "EXPOSE", "VOLUME",
               "MAINTAINER")
Change = Callable[[State], None]


class _Reader:
    def __init__(self, dockerfile: df.Dockerfile, ins: df.Instruction, env: dict[str, str]):
        self.df, self.ins, self.env = dockerfile, ins, env

    def error(self, message: str) -> ImageError:
        return self.df.error(self.ins.line, message)

    def expand(self, text: str) -> str:
        try:
            return expand(text, self.env, self.df.escape)
        except WordError as e:
            raise self.error(f"{self.ins.keyword}: {e}") from None


def argv_of(ins: df.Instruction, state: State) -> list[str]:
    """An instruction's command: the exec form as written, or the shell form through SHELL."""
    exec_form = ins.json_form()
    if exec_form is not None:
        return exec_form
    if not ins.rest.strip():
        return []
    shell = state.settings.get("Shell") or DEFAULT_SHELL
    return [*shell, ins.rest]


def pairs(r: _Reader) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` (or the old ``KEY VALUE``) of ENV and LABEL, expanded."""
    ins = r.ins
    words = split_words(ins.rest, r.df.escape)
    if not words:
        raise r.error(f"{ins.keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = ins.rest.split(None, 1)
        if len(parts) < 2:
            raise r.error(f"{ins.keyword} must have two arguments (KEY VALUE) or be KEY=VALUE")
        return [(r.expand(parts[0]), r.expand(parts[1]))]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise r.error(f"{ins.keyword}: can't find = in {word!r}; expected KEY=VALUE")
        key = r.expand(key)
        if not key:
            raise r.error(f"{ins.keyword} names no key")
        out.append((key, r.expand(value)))
    return out


def _shown(value: str) -> str:
    return json.dumps(value) if not value or any(c.isspace() or c in "\"'" for c in value) else value


def config_change(dockerfile: df.Dockerfile, ins: df.Instruction, state: State, env: dict[str, str], *,
                  reset_cmd: bool = False) -> tuple[str, Change]:
    """What the history records for ``ins`` and the change it makes.
    ``env``: what variables expand to; ``reset_cmd``: an ENTRYPOINT clears an
    inherited CMD (true when this stage has set no CMD yet)."""
    r = _Reader(dockerfile, ins, env)
    kw = ins.keyword
    settings = state.settings

    def set_key(key: str, value) -> Change:
        return lambda st: st.settings.__setitem__(key, value)

    if kw in ("ENV", "LABEL"):
        kv = pairs(r)
        text = " ".join(f"{k}={_shown(v)}" for k, v in kv)

        def change(st: State) -> None:
            for k, v in kv:
                if kw == "ENV":
                    st.set_env(k, v)
                else:
                    st.settings["Labels"] = {**(st.settings.get("Labels") or {}), k: v}
        return f"{kw} {text}", change
    if kw == "WORKDIR":
        path = posixpath.normpath(posixpath.join(settings.get("WorkingDir") or "/", r.expand(ins.rest)))
        return f"WORKDIR {path}", set_key("WorkingDir", path)
    if kw in ("USER", "STOPSIGNAL"):
        value = r.expand(ins.rest)
        if not value:
            raise r.error(f"{kw} requires a value")
        return f"{kw} {value}", set_key("User" if kw == "USER" else "StopSignal", value)
    if kw in ("CMD", "ENTRYPOINT"):
        argv = argv_of(ins, state)
        key = "Cmd" if kw == "CMD" else "Entrypoint"

        def change(st: State) -> None:
            st.settings[key] = argv
            if kw == "ENTRYPOINT" and reset_cmd:
                st.settings["Cmd"] = None
        return f"{kw} {json.dumps(argv)}", change
    if kw == "SHELL":
        argv = ins.json_form()
        if not argv:
            raise r.error('SHELL requires the arguments to be in JSON form: SHELL ["executable", "parameters"]')
        return f"SHELL {json.dumps(argv)}", set_key("Shell", argv)
    if kw == "EXPOSE":
        ports = []
        for word in ins.rest.split():
            value = r.expand(word)
            m = _PORT.match(value)
            if not m:
                raise r.error(f"EXPOSE {value}: invalid port (PORT, PORT/tcp, PORT/udp or a range PORT-PORT)")
            lo, hi = int(m[1]), int(m[2] or m[1])
            if not 0 < lo <= hi <= 65535 or hi - lo > 1024:
                raise r.error(f"EXPOSE {value}: invalid port number or range")
            ports += [f"{p}/{m[3] or 'tcp'}" for p in range(lo, hi + 1)]

        def change(st: State) -> None:
            st.settings["ExposedPorts"] = {**(st.settings.get("ExposedPorts") or {}), **{p: {} for p in ports}}
        return f"EXPOSE {' '.join(ports)}", change
    if kw == "VOLUME":
        paths = [r.expand(w) for w in (ins.json_form() or ins.rest.split())]
        if not paths or not all(paths):
            raise r.error("VOLUME specified can not be an empty string")

        def change(st: State) -> None:
            st.settings["Volumes"] = {**(st.settings.get("Volumes") or {}), **{p: {} for p in paths}}
        return f"VOLUME {json.dumps(paths)}", change
    if kw == "MAINTAINER":
        author = r.expand(ins.rest)
        return f"MAINTAINER {author}", lambda st: st.config.__setitem__("author", author)
    raise r.error(f"{kw} does not change the image's config only (it cannot be used here)")
