"""The :class:`Builder`: what every stage is written with.

It holds what the stages share -- the spec, the kernel's calls (a
:class:`~engine.syscalls.Syscalls`, or a recording stand-in in the tests),
the transcript, the start channel and the new root's fd -- and the helpers
they use: :meth:`~Builder.begin` a stage (and with ``run --explain`` pause
after the one before), :meth:`~Builder.fail` it, :meth:`~Builder.mount` with
the equivalent shell command written down, and :meth:`~Builder.in_root`, a
path resolved inside the container's root and never outside it. The stages
themselves are the mixins it is made of (:mod:`.namespaces`, :mod:`.mounts`,
:mod:`.process`).
"""

from __future__ import annotations

import errno
import json
import os
import socket
from typing import NoReturn

from .. import syscalls as sc
from ..transcript import Transcript
from .mounts import MountStages
from .namespaces import NamespaceStages
from .process import ProcessStages
from .spec import EXIT_ENGINE, ChildSpec, StageError, send


def _mount_flags_text(flags: int) -> str:
    names = {sc.MS_RDONLY: "ro", sc.MS_NOSUID: "nosuid", sc.MS_NODEV: "nodev",
             sc.MS_NOEXEC: "noexec", sc.MS_REMOUNT: "remount", sc.MS_BIND: "bind",
             sc.MS_REC: "rec", sc.MS_PRIVATE: "private", sc.MS_STRICTATIME: "strictatime"}
    return ",".join(n for bit, n in names.items() if flags & bit)


class Builder(NamespaceStages, MountStages, ProcessStages):
    """Runs the stages with a :class:`~engine.syscalls.Syscalls` and records them."""

    def __init__(self, spec: ChildSpec, kernel, transcript: Transcript, chan: socket.socket | None):
        self.spec = spec
        self.k = kernel
        self.t = transcript
        self.chan = chan
        self.stage_id = ""
        self.root_fd = -1
        self.joined: dict | None = None
        self.reported = 0          # stages reported so far (run --explain)

    # -- helpers ---------------------------------------------------------
    def await_join(self) -> dict | None:
        """The supervisor's word that this process is in its cgroup (once;
        None when the child joins by itself). A failing child reads it too
        before it leaves, so the supervisor's message never meets a closed door."""
        if not self.spec.join_by_parent or self.chan is None or self.joined is not None:
            return self.joined
        self.chan.settimeout(30)
        try:
            self.joined = json.loads(self.chan.recv(65536) or b"{}")
        except (OSError, ValueError):
            self.joined = {}
        self.chan.settimeout(None)
        return self.joined

    def begin(self, sid: str, title: str) -> None:
        self.checkpoint()
        self.stage_id = sid
        self.t.stage(sid, title)

    def checkpoint(self) -> None:
        """With ``pause`` (run --explain): report the stage just done and wait
        for the word to go on -- meanwhile the half-built container can be
        looked at from outside (top, inspect)."""
        if not self.spec.pause or self.chan is None or not self.t.stages:
            return
        stage = self.t.done()[-1]
        if self.reported >= len(self.t.stages):
            return
        self.reported = len(self.t.stages)
        send(self.chan, {"stage": stage})
        while True:
            try:
                msg = json.loads(self.chan.recv(65536) or b"{}")
            except (OSError, ValueError):
                msg = {}
            if "joined" in msg:          # the cgroup word may come first: keep it for cgroupns
                self.joined = msg
                continue
            if not msg.get("go"):
                os._exit(EXIT_ENGINE)    # the supervisor has gone or ended the start
            return

    def fail(self, message: str, code: int = EXIT_ENGINE) -> NoReturn:
        raise StageError(self.stage_id, message, code)

    def mount(self, source, target, fstype, flags=0, data=None, *, shown_target=None, shown_source=None) -> None:
        shown = shown_target or target
        shown_src = shown_source or source
        opts = ",".join(x for x in (_mount_flags_text(flags), data or "") if x)
        if flags & sc.MS_BIND and not flags & sc.MS_REMOUNT:
            shell = f"mount --{'r' if flags & sc.MS_REC else ''}bind {shown_src} {shown}"
        elif flags & sc.MS_REMOUNT:
            shell = f"mount -o {opts} {shown}"
        elif fstype is None and flags & sc.MS_PRIVATE:
            shell = f"mount --make-{'r' if flags & sc.MS_REC else ''}private {shown}"
        else:
            shell = f"mount -t {fstype} {'-o ' + opts + ' ' if opts else ''}{source} {shown}"
        self.t.op("mount", shell, source=shown_src, target=shown, fstype=fstype,
                  flags=_mount_flags_text(flags), data=data)
        try:
            self.k.mount(source, target, fstype, flags, data)
        except OSError as e:
            self.fail(f"{shell}: {os.strerror(e.errno)}")

    def in_root(self, path: str, kind: str = "dir", *, refuse_symlink: bool = False) -> int:
        """O_PATH fd of ``path`` resolved inside the rootfs, created as ``kind`` if missing.

        The whole path is resolved at once, from the container's root, with
        RESOLVE_IN_ROOT: a symlink in the image -- relative or absolute
        (Debian's /var/run -> /run) -- resolves as it would inside the
        container, and none can lead out of it (a hostile /escape -> / ends at
        the container's own /). What is missing is made one component at a
        time in the longest part that is there, and the path resolved again
        from the root; a dangling symlink on the way (an /etc/resolv.conf ->
        /run/systemd/...) is followed by making its target, inside the root.
        ``refuse_symlink`` (/proc, /dev, /sys): a symlink anywhere on the way is refused."""
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts:
            self.fail(f"path {path!r} may not contain '..'")
        resolve = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS | (sc.RESOLVE_NO_SYMLINKS if refuse_symlink else 0)

        def open_in_root(n: int) -> int:
            return sc.openat2(self.root_fd, "/".join(parts[:n]) or ".", os.O_PATH, resolve=resolve)

        try:
            for _ in range(40):              # as many symlinks as the kernel follows in one path
                try:
                    return open_in_root(len(parts))
                except FileNotFoundError:
                    pass
                have = len(parts) - 1        # the longest part of the path that is there
                while True:
                    try:
                        fd = open_in_root(have)
                        break
                    except FileNotFoundError:
                        have -= 1
                name = parts[have]
                try:
                    if have == len(parts) - 1 and kind == "file":
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                         0o644, dir_fd=fd))
                    else:
                        os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    # Only a dangling symlink is there and not there: go where it points.
                    link = os.readlink(name, dir_fd=fd)
                    rest = [p for p in link.split("/") if p and p != "."]
                    parts = (rest if link.startswith("/") else parts[:have] + rest) + parts[have + 1:]
                finally:
                    os.close(fd)
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        except OSError as e:
            if e.errno == errno.ELOOP and refuse_symlink:
                self.fail(f"the image's {path} is a symlink (or lies under one); refusing to mount over it")
            self.fail(f"cannot make {path} inside the container: {os.strerror(e.errno)}")

    def mount_in_root(self, source, path, fstype, flags=0, data=None, *, kind="dir",
                      refuse_symlink=False, shown_source=None) -> None:
        fd = self.in_root(path, kind, refuse_symlink=refuse_symlink)
        try:
            self.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data, shown_target=path,
                       shown_source=shown_source)
        finally:
            os.close(fd)
