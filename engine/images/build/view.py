"""An image's files as a container would see them, read straight from its
unpacked layers without mounting anything: :class:`LayerView`.

overlayfs merges the layers; here the same rules are applied by hand, top
layer first: an entry hides the same path below it; a whiteout (a 0/0
character device) hides it and leaves nothing; an opaque directory
(``trusted.overlay.opaque=y``, or ``user.overlay.opaque`` in a layer
unpacked without root) hides everything below it under that path; a file
hides any directory of the same name below. Symlinks resolve inside the
image's root, as ``openat2(RESOLVE_IN_ROOT)`` would: an absolute target
starts again at the image's ``/``, and ``..`` never climbs above it.

The builder uses it where it needs an image's files but runs nothing: where
``COPY`` writes (``/bin`` may be a symlink to ``/usr/bin``), what ``COPY
--from`` reads, the users and groups ``--chown`` names.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ImageError
from engine.images.unpack import is_opaque, is_whiteout

SYMLINK_MAX = 40                  # links followed in one path, as the kernel allows


def split(path: str) -> list[str]:
    """``path``'s components inside the image (absolute or not, ``.`` dropped, ``..`` applied at /)."""
    return [p for p in posixpath.normpath("/" + path).split("/") if p]


class LayerView:
    """The merged tree of ``layers`` (unpacked layer directories, bottom first)."""

    def __init__(self, layers: list[Path | str]):
        self.top_first = [Path(p) for p in reversed(layers)]

    def _layers_of(self, parts: list[str]) -> tuple[list[Path], os.stat_result | None, Path | None]:
        """For the directory chain ``parts``: the layers that hold the last
        one as a directory and show through (top first), the stat of the
        visible entry and its host path; ([], None, None) when nothing is there."""
        active = self.top_first
        st_top, path_top = None, None
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            below: list[Path] = []
            st_top = path_top = None
            for layer in active:
                p = layer / prefix
                try:
                    st = os.lstat(p)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if st_top is None:
                    if is_whiteout(st):
                        return [], None, None
                    st_top, path_top = st, p
                if not stat.S_ISDIR(st.st_mode):
                    break
                below.append(layer)
                if is_opaque(p):
                    break
            if st_top is None:
                return [], None, None
            if depth < len(parts) and not stat.S_ISDIR(st_top.st_mode):
                return [], None, None
            active = below
        return active, st_top, path_top

    def lstat(self, path: str) -> tuple[os.stat_result, Path] | None:
        """The visible entry at ``path`` (no symlink followed): its stat and
        the host file that holds it; None when there is none."""
        parts = split(path)
        if not parts:
            if not self.top_first:
                return None
            return os.lstat(self.top_first[0]), self.top_first[0]
        _layers, st, host = self._layers_of(parts)
        return (st, host) if st is not None else None

    def listdir(self, path: str) -> list[str]:
        """The names in the directory ``path`` (resolved already), merged across layers, sorted."""
        parts = split(path)
        layers = self.top_first if not parts else self._layers_of(parts)[0]
        names: dict[str, bool] = {}
        for layer in layers:
            d = layer / "/".join(parts) if parts else layer
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if e.name in names:
                    continue
                try:
                    names[e.name] = not is_whiteout(e.stat(follow_symlinks=False))
                except OSError:
                    continue
            if parts and is_opaque(d):
                break
        return sorted(n for n, visible in names.items() if visible)

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """``path`` with every symlink on the way followed inside the image's
        root; the last component only if ``follow_last``. What does not exist
        is kept as written. An ImageError after too many links."""
        todo = split(path)
        done: list[str] = []
        hops = 0
        while todo:
            comp = todo.pop(0)
            candidate = done + [comp]
            found = self.lstat("/".join(candidate))
            if found is None or not stat.S_ISLNK(found[0].st_mode) or (not todo and not follow_last):
                done = candidate
                continue
            hops += 1
            if hops > SYMLINK_MAX:
                raise ImageError(f"too many levels of symbolic links in {path!r} inside the image")
            target = os.readlink(found[1])
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p and p != "."] + todo
            while todo and todo[0] == "..":
                todo.pop(0)
                if done:
                    done.pop()
        # ".." met after a link was followed
        out: list[str] = []
        for comp in done:
            if comp == "..":
                if out:
                    out.pop()
            else:
                out.append(comp)
        return "/" + "/".join(out)

    def read_file(self, path: str, limit: int = 4 << 20) -> bytes | None:
        """The content of the regular file at ``path`` (symlinks followed), or None."""
        found = self.lstat(self.resolve(path))
        if found is None or not stat.S_ISREG(found[0].st_mode):
            return None
        with open(found[1], "rb") as f:
            return f.read(limit)

    def walk(self, path: str) -> Iterator[tuple[str, os.stat_result, Path]]:
        """Every entry under the directory ``path`` (resolved already): its
        path relative to ``path``, its stat and host file; parents first, sorted."""
        base = split(path)
        stack = [""]
        while stack:
            rel = stack.pop()
            here = "/".join(base + ([rel] if rel else []))
            for name in reversed(self.listdir(here)):
                child = f"{rel}/{name}" if rel else name
                found = self.lstat(f"{here}/{name}")
                if found is None:
                    continue
                yield child, found[0], found[1]
                if stat.S_ISDIR(found[0].st_mode):
                    stack.append(child)

    def user_ids(self, user: str, group: str | None) -> tuple[int, int]:
        """``--chown``'s user and group as numbers: a number as it is, a
        name looked up in the image's /etc/passwd and /etc/group."""
        uid = None
        if user.isdigit():
            uid = int(user)
        else:
            for line in (self.read_file("/etc/passwd") or b"").decode(errors="replace").splitlines():
                f = line.split(":")
                if len(f) >= 3 and f[0] == user and f[2].isdigit():
                    uid = int(f[2])
                    break
            if uid is None:
                raise ImageError(f"unable to find user {user}: no matching entries in the image's passwd file")
        if group is None:
            return uid, uid       # docker: "a user without a group uses the same number as the group"
        if group.isdigit():
            return uid, int(group)
        for line in (self.read_file("/etc/group") or b"").decode(errors="replace").splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[0] == group and f[2].isdigit():
                return uid, int(f[2])
        raise ImageError(f"unable to find group {group}: no matching entries in the image's group file")
