"""Registry credentials: what ``login`` stores, ``logout`` removes, and
``pull`` and ``push`` send.

The file is docker's ``config.json`` format, so the same words describe it
and tools can read it::

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}

It is ``auth.json`` in the learner's settings folder
(:func:`engine.images.config.config_home`: ``~/.config/container-lab``,
under ``sudo`` the invoking user's, owned by them), mode 0600 in a 0700
folder, written whole to a temporary file and renamed into place, so a
crash leaves the old file or the new one, never half of one. The password is
only encoded, as in docker's file without a credential helper: the file's
mode is what guards it.

Docker Hub's entry is ``docker.io``; the names docker itself uses for Hub
(``https://index.docker.io/v1/``, ``index.docker.io``,
``registry-1.docker.io``) are read as the same registry.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from engine.errors import InvalidArgument

FILE = "auth.json"
MAX_FILE = 1 << 20
HUB = "docker.io"
HUB_NAMES = (HUB, "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/",
             "https://index.docker.io/v1", "https://registry-1.docker.io")


class AuthError(InvalidArgument):
    """The credentials file cannot be read or written."""


def path() -> Path:
    """Where the credentials are kept."""
    from engine.images.config import config_home

    return config_home() / FILE


def server_key(server: str) -> str:
    """The key a registry's entry has: ``host[:port]`` (a URL's scheme and path
    dropped), Docker Hub's names all ``docker.io``."""
    server = server.strip()
    if server in HUB_NAMES or server.rstrip("/") in HUB_NAMES:
        return HUB
    if "://" in server:
        server = server.split("://", 1)[1]
    server = server.split("/", 1)[0]
    return HUB if server in HUB_NAMES else server


def _load(file: Path) -> dict:
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        return {"auths": {}}
    except OSError as e:
        raise AuthError(f"cannot read the credentials file {file}: {e.strerror or e}") from None
    try:
        if len(raw) > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE >> 10} KiB")
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.setdefault("auths", {}), dict):
            raise ValueError('no "auths" object in it')
    except (ValueError, UnicodeDecodeError) as e:
        raise AuthError(f"the credentials file {file} is damaged ({e}); remove it and log in again") from None
    return data


def lookup(server: str) -> tuple[str, str] | None:
    """(user, password) stored for ``server`` (``host[:port]``), or None."""
    key = server_key(server)
    for name, entry in _load(path())["auths"].items():
        if server_key(name) != key or not isinstance(entry, dict):
            continue
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, ValueError):
                raise AuthError(f"the credentials for {key} in {path()} are damaged; log in again") from None
            if sep:
                return user, password
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return entry["username"], entry["password"]
    return None


def store(server: str, user: str, password: str) -> Path:
    """Keep ``user``'s credentials for ``server``; returns the file's path."""
    if ":" in user:
        raise AuthError("a user name cannot hold ':'")
    file = path()
    data = _load(file)
    key = server_key(server)
    data["auths"] = {k: v for k, v in data["auths"].items() if server_key(k) != key}
    data["auths"][key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(file, data)
    return file


def erase(server: str) -> bool:
    """Forget the credentials for ``server``; whether there were any."""
    file = path()
    data = _load(file)
    key = server_key(server)
    kept = {k: v for k, v in data["auths"].items() if server_key(k) != key}
    if len(kept) == len(data["auths"]):
        return False
    data["auths"] = kept
    _write(file, data)
    return True


def _write(file: Path, data: dict) -> None:
    """``data`` into ``file``, atomically, mode 0600 (the folder 0700), owned by
    the learner under sudo."""
    from engine.paths import learner_owner
    from engine.records import atomic_file

    owner = learner_owner()
    made = []
    parent = file.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    try:
        for d in reversed(made):
            os.mkdir(d, 0o700)
            if owner:
                os.chown(d, *owner)
        with atomic_file(file, 0o600, text=True, owner=owner, durable=True) as f:
            json.dump(data, f, indent="\t", sort_keys=True)
            f.write("\n")
    except OSError as e:
        raise AuthError(f"cannot write the credentials file {file}: {e.strerror or e}") from None
