"""Registry settings: mirrors for Docker Hub, registries spoken to over plain
HTTP, and where the learner's own settings and credentials live.

Two TOML files, both optional, read by ``pull``, ``push``, ``login`` and a
``run`` that has to pull (never by a ``run`` whose image is here):

- ``/etc/container-lab/registries.toml`` -- the machine's (an instructor
  names the classroom's mirror here);
- ``~/.config/container-lab/registries.toml`` -- the learner's own
  (``$XDG_CONFIG_HOME`` if set; under ``sudo``, the invoking user's home, as
  for the learner's progress: :func:`engine.paths.learner_home`).

Each may hold these keys::

    mirrors = ["http://10.0.0.5:5000"]   # Docker Hub images: tried first, in order;
                                         # Docker Hub itself only after they fail
    insecure = ["10.0.0.5:5000"]         # registries spoken to over plain HTTP
    course-registry = "10.0.0.5:5000"    # where the course's lessons push their images

``mirrors`` works as docker's ``registry-mirrors``: only images of Docker Hub
(``ubuntu``, ``bitnami/redis``) go through a mirror -- a pull-through cache
such as ``docker-registry`` with ``proxy.remoteurl`` -- and a mirror that
fails (down, or without the image) hands over to the next, then to Hub. A
mirror is a URL; its scheme says how to speak to it. ``insecure`` works as
docker's ``insecure-registries``: ``host[:port]`` or a CIDR range of
addresses; loopback registries are always spoken to over HTTP, every other
one over HTTPS unless named here. The learner's entries come first, then the
machine's. A file that does not parse, an unknown key or a bad value is one
line naming the file and the line (or the key).

``course-registry`` (``host[:port]``, default :data:`COURSE_REGISTRY`) is
the registry the course's lessons push to and pull back from: in a
classroom the instructor's, on one's own machine a local ``docker-registry``.
The learner's file wins over the machine's. Lessons write it ``$REGISTRY``;
``container-lab doctor`` says whether it answers (``registry.course``).

Two environment variables move things for tests and sandboxes only:
``CONTAINER_LAB_HUB_ENDPOINT`` (a URL: where "Docker Hub" is -- the tests
stand a second local registry in for it) and ``CONTAINER_LAB_ETC_DIR`` (the
machine's settings folder instead of ``/etc/container-lab``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument
from engine.paths import APP, is_root, learner_home

ETC_DIR = "/etc/container-lab"
FILE = "registries.toml"
KEYS = ("mirrors", "insecure", "course-registry")
COURSE_REGISTRY = "localhost:5000"     # where a learner's own docker-registry listens by default
MAX_FILE = 1 << 20                 # bytes: a settings file is a few lines
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                        r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


class ConfigError(InvalidArgument):
    """A settings file that cannot be used, named with its line or key."""


@dataclass(frozen=True)
class Settings:
    """The registry settings in force: both files together."""

    mirrors: tuple[str, ...] = ()      # "scheme://host[:port]", in the order to try them
    insecure: tuple[str, ...] = ()     # "host[:port]" or CIDR ranges
    files: tuple[str, ...] = ()        # the files read (for messages)
    course_registry: str = COURSE_REGISTRY     # "host[:port]": where lessons push and pull back

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` (``host[:port]``) is to be spoken to over plain HTTP."""
        hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
        for entry in self.insecure:
            if "/" in entry:
                try:
                    if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
            else:
                named = urllib.parse.urlsplit(f"//{entry}")
                if entry == host or (named.port is None and (named.hostname or "") == hostname):
                    return True       # host:port exactly, or a host alone: any of its ports
        return False


def config_home() -> Path:
    """The learner's settings folder: ``$XDG_CONFIG_HOME/container-lab``, else
    ``~/.config/container-lab`` -- under ``sudo``, in the invoking user's home
    (root's environment is not theirs)."""
    sudo_user = os.environ.get("SUDO_USER")
    under_sudo = is_root() and sudo_user and sudo_user != "root"
    xdg = None if under_sudo else os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else learner_home() / ".config"
    return base / APP


def etc_dir() -> Path:
    """The machine's settings folder (``CONTAINER_LAB_ETC_DIR`` moves it)."""
    return Path(os.environ.get("CONTAINER_LAB_ETC_DIR") or ETC_DIR)


def files() -> list[Path]:
    """The settings files, the learner's first."""
    return [config_home() / FILE, etc_dir() / FILE]


def load(paths: list[Path] | None = None) -> Settings:
    """The settings of ``paths`` (default :func:`files`), merged in order; a
    missing file counts as empty. Raises :class:`ConfigError`, one line."""
    mirrors: list[str] = []
    insecure: list[str] = []
    read: list[str] = []
    course: str | None = None
    for path in files() if paths is None else paths:
        data = _read(path)
        if data is None:
            continue
        read.append(str(path))
        course = course or data.get("course-registry")
        for m in data.get("mirrors", []):
            if m not in mirrors:
                mirrors.append(m)
        for i in data.get("insecure", []):
            if i not in insecure:
                insecure.append(i)
    return Settings(tuple(mirrors), tuple(insecure), tuple(read), course or COURSE_REGISTRY)


def _read(path: Path) -> dict | None:
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a settings file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    if len(raw) > MAX_FILE:
        raise ConfigError(f"{path}: larger than {MAX_FILE >> 10} KiB: not a settings file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        text = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", text)
        if m:
            raise ConfigError(f"{path}:{m[1]}:{m[2]}: {text[:m.start()].strip()} (TOML)") from None
        m = re.search(r"\(at end of document\)$", text)
        line = raw.count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: {text[:m.start()].strip() if m else text} (TOML)") from None
    for key in data:
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(KEYS)})")
    out: dict = {}
    if "course-registry" in data:
        value = data["course-registry"]
        if not isinstance(value, str):
            raise ConfigError(f"{path}: key 'course-registry' must be a string, like course-registry = "
                              f"\"localhost:5000\"")
        try:
            out["course-registry"] = _insecure(value)
        except ValueError as e:
            raise ConfigError(f"{path}: key 'course-registry' ({value[:80]!r}): {e}") from None
        if "/" in out["course-registry"]:
            raise ConfigError(f"{path}: key 'course-registry' ({value[:80]!r}): a registry's host[:port], "
                              "not a range")
    for key, check in (("mirrors", _mirror), ("insecure", _insecure)):
        if key not in data:
            continue
        values = data[key]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{path}: key {key!r} must be a list of strings, like {key} = [\"...\"]")
        out[key] = []
        for i, value in enumerate(values):
            try:
                out[key].append(check(value))
            except ValueError as e:
                raise ConfigError(f"{path}: key {key!r}, entry {i + 1} ({value[:80]!r}): {e}") from None
    return out


def _mirror(value: str) -> str:
    """A mirror's URL as used: ``scheme://host[:port]``."""
    url = urllib.parse.urlsplit(value.strip())
    if url.scheme not in ("http", "https"):
        raise ValueError("a mirror is a URL starting with http:// or https://")
    if not url.netloc or not _HOST_PORT.fullmatch(url.netloc) or "@" in url.netloc:
        raise ValueError("no host in it")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError("a mirror is a registry's address alone, without a path (as docker's registry-mirrors)")
    try:
        port = url.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("its port is not a number from 1 to 65535")
    return f"{url.scheme}://{url.netloc}"


def _insecure(value: str) -> str:
    """``host[:port]`` or a CIDR range."""
    value = value.strip()
    if "://" in value:
        raise ValueError("write the registry as host[:port], without http://")
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError("neither host[:port] nor a CIDR range such as 10.0.0.0/8") from None
        return value
    if not _HOST_PORT.fullmatch(value):
        raise ValueError("not host[:port]")
    return value


def hub_endpoint() -> str | None:
    """Where Docker Hub is, when ``CONTAINER_LAB_HUB_ENDPOINT`` moves it (tests only): a URL."""
    raw = os.environ.get("CONTAINER_LAB_HUB_ENDPOINT", "").strip()
    if not raw:
        return None
    try:
        return _mirror(raw)
    except ValueError as e:
        raise ConfigError(f"CONTAINER_LAB_HUB_ENDPOINT={raw[:80]!r}: {e}") from None
