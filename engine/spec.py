"""What a learner asks for: the configuration of one container.

:class:`ContainerConfig` is plain data (JSON round-trips through ``to_dict``
and ``from_dict``), built by the CLI from ``run`` flags or by the app and the
lessons directly, validated here once, and sent to the supervisor.

This module sits on the CLI's start-up path, so it is written without
dataclasses (whose import pulls in ``inspect``: ~20 ms of every command).
"""

from __future__ import annotations

import re

from .errors import InvalidArgument

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
NETWORK_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
ALIAS_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)*$")
ENV_KEY_RE = re.compile(r"^[^=\0]+$")
LABEL_KEY_RE = re.compile(r"^[^=\0\s]+$")

# Limits every container gets unless told otherwise. Docker sets none; a
# classroom shares one machine, so a runaway memory hog or fork bomb in one
# learner's container must not take the room down (see SECURITY.md).
DEFAULT_MEMORY = 1 << 30          # 1 GiB
DEFAULT_PIDS = 1024

# Namespace modes (docker's names). "container:NAME" joins that running
# container's namespace; "host" stays in the supervisor's (the host's).
NETWORK_MODES = ("bridge", "none", "host")      # or container:NAME, or a user network's name
PID_MODES = ("private", "host")
IPC_MODES = ("private", "shareable", "host")
UTS_MODES = ("private", "host")
USERNS_MODES = ("host", "private")
TIMENS_CLOCKS = ("monotonic", "boottime")
SECCOMP_MODES = ("default", "unconfined")


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"(\d+)(?:\.(\d+))?\s*(?:([kmgtp])(?:i?b)?|b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a docker size: ``"64m"``, ``"1g"``, ``"512k"``, ``"100b"``, ``"1.5g"``.

    Units are binary (``k`` = 1024) and case-insensitive; a bare number is bytes.
    """
    m = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        raise InvalidArgument(f"invalid size: {text!r}")
    whole, frac, unit = m.group(1), m.group(2) or "", (m.group(3) or "").lower()
    size = (int(whole + frac) * _UNITS[unit]) // 10 ** len(frac)      # exact, no float
    if size <= 0:
        raise InvalidArgument(f"invalid size: {text!r} (must be more than 0 bytes)")
    if size >= 1 << 63:
        raise InvalidArgument(f"invalid size: {text!r} (too large)")
    return size


def human_size(n: float) -> str:
    """A size as docker prints one: decimal units, three digits (``"64.1MB"``, ``"512B"``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return str(n)


USER_RE = re.compile(r"^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$")
MAX_ID = (1 << 31) - 1            # uids and gids as runc and Docker accept them
PIDS_MAX = 4194304                # the kernel's PID_MAX_LIMIT: pids.max takes no more


def _shown(value) -> str:
    """A value in an error message: quoted, control characters made visible, cut short."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return f"'{text[:80]}{'...' if len(text) > 80 else ''}'"


def check_process_options(env: list[str], workdir: str | None, user: str | None, *,
                          origin: str = "") -> None:
    """What ``run`` and ``exec`` share: -e K=V, -w DIR, -u USER[:GROUP].

    ``origin`` names where the values came from when not from the command
    line (``"the image's "``): an image's Env, WorkingDir and User are checked too."""
    the, where = origin or "the ", f" in {origin}environment" if origin else ""
    if not isinstance(env, list):
        raise InvalidArgument(f"{the}environment must be a list of KEY=VALUE")
    for item in env:
        if not isinstance(item, str) or "=" not in item or not ENV_KEY_RE.match(item.split("=", 1)[0]):
            raise InvalidArgument(f"invalid environment variable {_shown(item)}{where} (expected KEY=VALUE)")
        if "\0" in item:
            raise InvalidArgument(f"invalid environment variable {_shown(item)}{where}: it contains a NUL byte")
    if workdir is not None and not (isinstance(workdir, str) and workdir.startswith("/")):
        raise InvalidArgument(f"{the}working directory {_shown(workdir)} is invalid, "
                              "it needs to be an absolute path")
    if isinstance(workdir, str) and "\0" in workdir:
        raise InvalidArgument(f"{the}working directory {_shown(workdir)} contains a NUL byte")
    if user is not None and not (isinstance(user, str) and USER_RE.match(user)):
        raise InvalidArgument(f"invalid user {_shown(user)}{' in ' + origin + 'config' if origin else ''} "
                              "(expected USER[:GROUP], names or numbers)")
    for part in (user or "").split(":"):
        if part.isdigit() and int(part) > MAX_ID:
            raise InvalidArgument(f"invalid user '{user}'{' in ' + origin + 'config' if origin else ''}: "
                                  f"uids and gids must be in range 0-{MAX_ID}")


def check_argv(argv, origin: str = "") -> None:
    """A command to execute: a list of strings without NUL bytes."""
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise InvalidArgument(f"{origin or 'the '}command must be a list of strings")
    for arg in argv:
        if "\0" in arg:
            raise InvalidArgument(f"{origin or 'the '}command has an argument with a NUL byte: {_shown(arg)}")


class Volume:
    """A bind mount of a host path into the container (``-v HOST:CTR[:ro]``)."""

    __slots__ = ("source", "target", "readonly")

    def __init__(self, source: str, target: str, readonly: bool = False):
        self.source, self.target, self.readonly = source, target, readonly

    def __eq__(self, other) -> bool:
        return isinstance(other, Volume) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Volume({self.source!r}, {self.target!r}, readonly={self.readonly})"

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "readonly": self.readonly}

    @classmethod
    def parse(cls, text: str) -> Volume:
        """Parse ``HOST:CTR[:ro|rw]``; host paths must be absolute and exist."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise InvalidArgument(f"invalid volume specification: '{text}' (expected HOST:CONTAINER[:ro])")
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise InvalidArgument(f"invalid volume mode '{mode}' in '{text}' (expected ro or rw)")
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid volume '{text}': named volumes are not supported; use an absolute host path")
        if not target.startswith("/") or target == "/":
            raise InvalidArgument(f"invalid volume '{text}': the container path must be absolute and not /")
        return cls(source, target, mode == "ro")


def _check_mode(flag: str, value, modes: tuple, *, share: bool) -> None:
    """One namespace mode: one of ``modes`` or (if ``share``) ``container:NAME``."""
    if isinstance(value, str) and value in modes:
        return
    if share and isinstance(value, str) and value.startswith("container:") and NAME_RE.match(value[10:]):
        return
    if flag == "network" and isinstance(value, str) and NETWORK_NAME_RE.match(value):
        return                      # a user network (``network create NAME``): looked up when the container starts
    choices = ", ".join(modes + (("container:NAME",) if share else ()))
    raise InvalidArgument(f"invalid --{flag} value {value!r} (expected one of: {choices})")


def shared_container(mode: str) -> str | None:
    """The container named by a ``container:NAME`` mode, else None."""
    return mode[10:] if isinstance(mode, str) and mode.startswith("container:") else None


def parse_timens(text: str) -> dict[str, int]:
    """``boottime=-3600,monotonic=86400`` (seconds; a bare ``--timens`` means
    ``boottime=-UPTIME``: the container's clock starts as if just booted)."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        key, sep, value = item.strip().partition("=")
        key = key.strip().lower()
        try:
            if not sep or key not in TIMENS_CLOCKS or key in out:
                raise ValueError
            out[key] = int(value.strip().rstrip("s"))
        except ValueError:
            raise InvalidArgument(f"invalid clock offset {text!r}: expected CLOCK=SECONDS pairs, "
                                  f"CLOCK being {' or '.join(TIMENS_CLOCKS)} (e.g. boottime=-3600)") from None
    return out


def parse_security_opts(items: list[str]) -> dict:
    """docker's ``--security-opt`` values: ``seccomp=unconfined`` (no system call
    filter), ``no-new-privileges[=true|false]``; ``:`` works for ``=`` as in
    docker's older syntax. Returns the config fields they set."""
    out: dict = {}
    for item in items:
        key, sep, value = item.replace(":", "=", 1).partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "no-new-privileges" and value.lower() in ("", "true", "false"):
            out["no_new_privileges"] = value.lower() != "false"
        elif key == "seccomp" and value in ("unconfined", "default", "builtin"):
            out["seccomp"] = "unconfined" if value == "unconfined" else "default"
        elif key == "seccomp" and value:
            raise InvalidArgument(f"--security-opt {item}: profiles from a file are not supported; "
                                  "use seccomp=unconfined, or leave it out for the default filter")
        elif key in ("apparmor", "label", "systempaths", "mask", "unmask"):
            raise InvalidArgument(f"--security-opt {item}: {key} is not supported by this engine "
                                  "(available: seccomp=unconfined, no-new-privileges)")
        else:
            raise InvalidArgument(f"invalid --security-opt {item!r} "
                                  "(expected seccomp=unconfined or no-new-privileges[=true|false])")
    return out


def parse_storage_opts(items: list[str]) -> dict:
    """docker's ``--storage-opt size=SIZE`` (the writable layer's limit, e.g.
    size=1g); the config's ``storage_opt``."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if key.strip().lower() != "size" or not sep:
            raise InvalidArgument(f"invalid --storage-opt {item!r}: only size=SIZE is supported "
                                  "(the writable layer's limit, e.g. size=1g)")
        try:
            size = parse_size(value.strip())
        except InvalidArgument:
            size = 0
        if size <= 0:
            raise InvalidArgument(f"invalid --storage-opt {item!r}: expected a size such as 512m or 2g")
        out["size"] = size
    return out


# Every option of a container and its default (a callable makes a fresh one).
_FIELDS = {
    "image": None, "cmd": list, "entrypoint": None, "name": None, "hostname": None, "env": list,
    "workdir": None, "user": None, "volumes": list, "labels": dict, "init": False, "tty": False,
    "interactive": False, "detach": False, "remove": False, "network": "bridge",
    "network_aliases": list, "ip": None, "publish": list, "publish_all": False,
    "pid_mode": "private", "ipc_mode": "private", "uts_mode": "private", "userns_mode": "host",
    "timens": None, "seccomp": "default", "no_new_privileges": False,
    "memory": DEFAULT_MEMORY, "memory_swap": None, "pids_limit": DEFAULT_PIDS, "cpus": None,
    "storage_opt": dict,
}


class ContainerConfig:
    """Everything ``run`` needs to create and start one container.

    Fields (keyword arguments): image, cmd, entrypoint, name, hostname, env,
    workdir, user, volumes, labels, init, tty, interactive, detach, remove,
    network ("bridge", "none", "host", "container:NAME" or a network's name),
    network_aliases, ip (on a user network), publish (``-p`` specs), publish_all
    (``-P``), pid_mode, ipc_mode, uts_mode, userns_mode, timens, seccomp,
    no_new_privileges, memory, memory_swap, pids_limit, cpus, storage_opt
    ({"size": bytes}: the writable layer's limit) -- see ``run --help``.
    """

    __slots__ = tuple(_FIELDS)

    def __init__(self, image: str = "", **options):
        unknown = set(options) - set(_FIELDS)
        if unknown:
            raise InvalidArgument(f"unknown container option(s): {', '.join(sorted(unknown))}")
        options["image"] = image
        for key, default in _FIELDS.items():
            setattr(self, key, options[key] if key in options else (default() if callable(default) else default))

    def __eq__(self, other) -> bool:
        return isinstance(other, ContainerConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ContainerConfig({', '.join(f'{k}={getattr(self, k)!r}' for k in _FIELDS)})"

    def _check_types(self) -> None:
        """Each field of the JSON a client sent has the type it must have (a
        wrong one is named here, never met later as a Python exception)."""
        def integer(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def strings(v):
            return isinstance(v, list) and all(isinstance(x, str) for x in v)

        kinds = {
            "image": (lambda v: isinstance(v, str), "a string"),
            "cmd": (strings, "a list of strings"),
            "entrypoint": (lambda v: v is None or strings(v), "a list of strings"),
            "env": (lambda v: isinstance(v, list), "a list of KEY=VALUE"),
            "volumes": (lambda v: isinstance(v, list) and all(isinstance(x, Volume) for x in v),
                        "a list of volumes"),
            "labels": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                       "an object of strings"),
            "memory": (lambda v: v is None or integer(v), "a number of bytes"),
            "memory_swap": (lambda v: v is None or integer(v), "a number of bytes"),
            "pids_limit": (lambda v: v is None or integer(v), "a whole number"),
            "cpus": (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                     "a number"),
        }
        kinds.update({k: (lambda v: v is None or isinstance(v, str), "a string")
                      for k in ("name", "hostname", "workdir", "user", "ip")})
        kinds.update({k: (lambda v: isinstance(v, bool), "true or false")
                      for k in ("init", "tty", "interactive", "detach", "remove", "publish_all")})
        kinds.update({k: (strings, "a list of strings") for k in ("network_aliases", "publish")})
        for key, (ok, what) in kinds.items():
            if not ok(getattr(self, key)):
                raise InvalidArgument(f"invalid {key} {_shown(getattr(self, key))}: expected {what}")
        for vol in self.volumes:
            if not (isinstance(vol.source, str) and isinstance(vol.target, str)
                    and isinstance(vol.readonly, bool)):
                raise InvalidArgument(f"invalid volume {vol!r}: expected source, target and readonly")
            for path in (vol.source, vol.target):
                if "\0" in path:
                    raise InvalidArgument(f"invalid volume path {_shown(path)}: it contains a NUL byte")
                if not path.startswith("/"):
                    raise InvalidArgument(f"invalid volume path {_shown(path)}: it must be absolute")

    def validate(self) -> ContainerConfig:
        """Raise InvalidArgument naming the first bad field; return self."""
        self._check_types()
        if not self.image:
            raise InvalidArgument("an image name is required")
        if "\0" in self.image:
            raise InvalidArgument(f"invalid image name {_shown(self.image)}: it contains a NUL byte")
        check_argv(self.cmd)
        if self.entrypoint is not None:
            check_argv(self.entrypoint, "the entrypoint's ")
        if self.name is not None and not NAME_RE.match(self.name):
            raise InvalidArgument(f"invalid container name '{self.name}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if self.hostname is not None and (len(self.hostname) > 64 or not HOSTNAME_RE.match(self.hostname)):
            raise InvalidArgument(f"invalid hostname '{self.hostname}'")
        check_process_options(self.env, self.workdir, self.user)
        for key in self.labels:
            if not LABEL_KEY_RE.match(key):
                raise InvalidArgument(f"invalid label key '{key}'")
        _check_mode("network", self.network, NETWORK_MODES, share=True)
        self._check_network()
        _check_mode("pid", self.pid_mode, PID_MODES, share=True)
        _check_mode("ipc", self.ipc_mode, IPC_MODES, share=True)
        _check_mode("uts", self.uts_mode, UTS_MODES, share=False)
        _check_mode("userns", self.userns_mode, USERNS_MODES, share=False)
        if self.uts_mode == "host" and self.hostname is not None:
            raise InvalidArgument("conflicting options: --hostname and --uts host (the host's name would change)")
        if self.timens is not None:
            if not isinstance(self.timens, dict) or not set(self.timens) <= set(TIMENS_CLOCKS) \
                    or not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1 << 40
                               for v in self.timens.values()):
                raise InvalidArgument("invalid --timens: expected offsets like boottime=-3600,monotonic=86400 "
                                      "(whole seconds)")
        if self.seccomp not in SECCOMP_MODES:
            raise InvalidArgument(f"invalid seccomp mode {self.seccomp!r} (expected one of: {', '.join(SECCOMP_MODES)})")
        if not isinstance(self.no_new_privileges, bool):
            raise InvalidArgument("no_new_privileges must be true or false")
        if self.memory is not None and self.memory < 6 * 1024 * 1024:
            raise InvalidArgument("minimum memory limit allowed is 6MB")
        for key in ("memory", "memory_swap"):
            if (getattr(self, key) or 0) >= 1 << 63:
                raise InvalidArgument(f"invalid {key.replace('_', '-')} {getattr(self, key)}: too large")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise InvalidArgument("you should always set the memory limit when using the memory-swap limit")
            if self.memory_swap < self.memory:
                raise InvalidArgument("minimum memory-swap limit should be larger than the memory limit")
        if self.pids_limit is not None and self.pids_limit < 1:
            raise InvalidArgument("the pids limit must be a positive number (or -1 for no limit)")
        if self.pids_limit is not None and self.pids_limit > PIDS_MAX:
            raise InvalidArgument(f"invalid pids limit {self.pids_limit}: at most {PIDS_MAX} "
                                  "(the kernel's largest number of processes; -1 for no limit)")
        if self.cpus is not None and self.cpus != 0 and not 0.01 <= self.cpus <= 1024:   # 0: no limit
            raise InvalidArgument(f"invalid cpus value {self.cpus}: expected a number like 0.5")
        if not isinstance(self.storage_opt, dict) or set(self.storage_opt) - {"size"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in self.storage_opt.values()):
            raise InvalidArgument("invalid storage options: only size (a positive number of bytes) is supported")
        targets = [v.target for v in self.volumes]
        if len(set(targets)) != len(targets):
            raise InvalidArgument("duplicate mount point in volumes")
        return self

    def joins_network(self) -> bool:
        """Whether the container is plugged into a network (the default bridge or a user network)."""
        return self.network not in ("none", "host") and not self.network.startswith("container:")

    def _check_network(self) -> None:
        """--network-alias, --ip and -p/-P make sense only on a network of ours."""
        bridged = self.joins_network()
        if len(self.publish) > 64 or len(self.network_aliases) > 32:
            raise InvalidArgument("too many published ports or network aliases (at most 64 and 32)")
        if (self.publish or self.publish_all) and not bridged:
            raise InvalidArgument(f"ports cannot be published with --network {self.network}: "
                                  "the container has no network of ours to forward them to")
        if self.publish:
            from .network.ipam import parse_publish

            for spec in self.publish:
                parse_publish(spec)
        if self.network_aliases and (self.network == "bridge" or not bridged):
            raise InvalidArgument("network-scoped aliases are supported only on user networks "
                                  "(`network create NAME`, then --network NAME)")
        for alias in self.network_aliases:
            if len(alias) > 253 or not ALIAS_RE.match(alias):
                raise InvalidArgument(f"invalid network alias {_shown(alias)}: expected a DNS name such as web")
        if self.ip is not None:
            if self.network == "bridge" or not bridged:
                raise InvalidArgument("a user specified IP address (--ip) is supported on user networks only")
            parts = self.ip.split(".")
            if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 and len(p) <= 3 for p in parts):
                raise InvalidArgument(f"invalid --ip {_shown(self.ip)}: expected an IPv4 address such as 10.10.0.5")

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        out = {k: getattr(self, k) for k in _FIELDS}
        out["volumes"] = [v.to_dict() for v in self.volumes]
        out["cmd"], out["env"], out["labels"] = list(self.cmd), list(self.env), dict(self.labels)
        out["network_aliases"], out["publish"] = list(self.network_aliases), list(self.publish)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ContainerConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an InvalidArgument."""
        if not isinstance(data, dict):
            raise InvalidArgument("a container config must be an object")
        data = dict(data)
        volumes = data.get("volumes") or []
        if not isinstance(volumes, list) or not all(
                isinstance(v, dict) and set(v) <= {"source", "target", "readonly"} and {"source", "target"} <= set(v)
                for v in volumes):
            raise InvalidArgument("invalid volumes: expected a list of {source, target, readonly}")
        data["volumes"] = [Volume(**v) for v in volumes]
        return cls(**data)
