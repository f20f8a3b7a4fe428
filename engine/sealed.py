"""Sealed copies of the executables the engine runs, so no container can write a host file.

The lesson of CVE-2019-5736 (runc, 2019): a process that a container can see
or reach must never have a host file as its executable. ``/proc/PID/exe`` is
a handle to that file, and a process in the container that opens it holds
the host's file -- and once nothing executes the file any more (no ETXTBSY),
it can write it. The next time the host runs that program, it runs the
container's code as root on the host.

Here the file at risk is the supervisor's interpreter, the host's Python.
Every process of a container starts as a fork of the supervisor
(:mod:`engine.runtime`), and until it execs, its executable is the
supervisor's. Two ways in:

* the kernel itself: a container makes ``/usr/bin/sh`` a script whose first
  line is ``#!/proc/self/exe``. The next ``exec CONTAINER sh`` is a fork of
  the supervisor whose last step is execve("/usr/bin/sh"); the kernel reads
  the ``#!`` line and resolves ``/proc/self/exe`` in that process -- still
  the supervisor's image -- so the host's interpreter starts inside the
  container, as a process the container may inspect: its ``/proc/PID/exe``
  is the host's Python;
* a fork that never execs: the old ``--init`` was one, PID 1 of the
  container for its whole life (and its memory, the supervisor's, held
  every other container's configuration: passwords in ``-e``).

The answer, runc's: the supervisor re-execs itself, once, at start-up, from
a *memfd* -- an anonymous file in memory -- holding a copy of its
interpreter, *sealed* before the exec: F_SEAL_WRITE, F_SEAL_SHRINK and
F_SEAL_GROW forbid any change of its bytes or size, F_SEAL_SEAL forbids
lifting them. Seals bind everyone, root included, and cannot be undone.
From then on every fork's ``/proc/self/exe`` is that copy: the ``#!`` trick
runs a sealed copy, and a handle to it cannot be written. The children are
also non-dumpable until they exec (their ``/proc/PID`` files are refused to
the container), and ``--init`` is a real init, Debian's ``tini-static``,
run from a sealed copy made here once (:func:`init_copy`) -- never a fork.

Why not the alternatives:

* a read-only bind mount (Docker mounts its ``docker-init`` into each
  container that way): the executable is still the host's inode, only seen
  through a read-only view -- one remount on the host away from writable --
  and every container gets one more mount. A sealed copy is no host file at
  all and sits in no mount table;
* runc 1.2's private read-only overlayfs over its own binary avoids the
  copy, which matters to runc (it would copy at every container start). The
  supervisor copies once per life: the memory of one executable (17 KiB for
  an interpreter built with a shared libpython, 6.5 MiB for Debian's
  python3.11, 0.7 MiB for tini once ``--init`` is used) and one more start
  of the interpreter (about 40 ms, once).

What stays a host file: the shared libraries (libc; libpython where the
interpreter is built shared). They are mapped, not executed, and a mapping is
reached only through ``/proc/PID/map_files`` (CAP_SYS_ADMIN in the host's
user namespace, which no container holds) or ``/proc/PID/mem`` (refused: the
children are non-dumpable until they exec, and after the exec the mapping is
gone).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys

SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
MFD_EXEC = 0x0010        # Linux 6.3+: say that the memfd may be executed (vm.memfd_noexec)
# Debian's tini package (static: it needs nothing from the image), as Docker's --init.
INIT_NAMES = ("tini-static",)
INIT_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/sbin", "/bin")
INIT_MISSING = "--init needs tini: install Debian's tini package (apt-get install tini)"
_REEXEC_MARK = "CONTAINER_LAB_SEALED_EXE"


class SealError(OSError):
    """A sealed copy could not be made or run."""


def sealed_copy(path: str, name: str) -> int:
    """A memfd (close-on-exec) with the bytes of ``path``, sealed for good.

    The copy is made with sendfile(2) (copy_file_range refuses to cross from
    a disk into tmpfs); then no one can change it: not its bytes, not its size,
    not its seals."""
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        fd = _memfd(name)
        try:
            done = 0
            while done < size:
                sent = os.sendfile(fd, src, done, size - done)
                if sent == 0:
                    raise SealError(f"{path} shrank while it was copied")
                done += sent
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.close(src)
    return fd


def _memfd(name: str) -> int:
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        return os.memfd_create(name, flags | MFD_EXEC)
    except OSError as e:
        if e.errno != 22:            # EINVAL: a kernel before 6.3, where every memfd may be executed
            raise
    return os.memfd_create(name, flags)


def is_sealed(fd: int) -> bool:
    """Whether ``fd`` is a memfd with every seal of :func:`sealed_copy`."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
    except OSError:                 # EINVAL: not a memfd at all
        return False


def running_sealed() -> bool:
    """Whether this process's executable is a sealed copy."""
    try:
        fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return is_sealed(fd)
    finally:
        os.close(fd)


def reexec_sealed() -> None:
    """Run this very command again, from a sealed copy of the interpreter.

    Returns only when the process already runs from one. ``argv[0]`` stays
    :data:`sys.executable`, so the copy finds its virtual environment and
    ``sys.path`` exactly as the original did (Python looks for them beside
    ``argv[0]``, not beside ``/proc/self/exe``). Raises :class:`SealError`."""
    if running_sealed():
        os.environ.pop(_REEXEC_MARK, None)
        return
    if os.environ.get(_REEXEC_MARK):
        raise SealError("the interpreter's sealed copy does not show as sealed in /proc/self/exe")
    try:
        fd = sealed_copy("/proc/self/exe", "python")
        argv = [sys.executable or os.readlink("/proc/self/exe"), *sys.orig_argv[1:]]
        os.execve(fd, argv, {**os.environ, _REEXEC_MARK: "1"})
    except OSError as e:
        raise SealError(f"cannot run from a sealed copy of the interpreter: {e.strerror or e}") from None


def find_init() -> str | None:
    """Where Debian's ``tini-static`` is installed, or None."""
    for name in INIT_NAMES:
        for d in INIT_DIRS:
            path = os.path.join(d, name)
            if os.access(path, os.X_OK) and os.path.isfile(path):
                return path
        found = shutil.which(name)
        if found:
            return found
    return None


_init: tuple[int, str] | None = None


def init_copy() -> tuple[int, str]:
    """The sealed copy of tini that every ``--init`` runs as PID 1, made once
    per process: ``(fd, the path it was copied from)``. Raises
    :class:`SealError` with :data:`INIT_MISSING` where tini is not installed."""
    global _init
    if _init is None:
        path = find_init()
        if path is None:
            raise SealError(INIT_MISSING)
        try:
            _init = (sealed_copy(path, "init"), path)
        except OSError as e:
            raise SealError(f"--init: cannot copy {path}: {e.strerror or e}") from None
    return _init
