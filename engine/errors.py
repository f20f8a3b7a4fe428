"""Errors the engine raises, one base class with grouped subclasses.

Every error carries a one-line message meant for a person and the exit code
that a docker-like CLI returns for it (125 for an engine error, as docker does).
Lower-level errors (OSError from a syscall, a JSON error from a record) are
mapped onto these at the module boundary, so callers -- the CLI, the app, the
tests -- only ever catch :class:`EngineError`.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 125

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(EngineError):
    """A flag, size, name or option that cannot be used as given."""


class ImageError(EngineError):
    """Images: lookup, assembly, storage."""


class ImageNotFound(ImageError):
    """No image by that name in the store (and it cannot be made locally)."""


class ContainerError(EngineError):
    """Containers: lookup, names, state."""


class ContainerNotFound(ContainerError):
    """No container by that name or id."""


class NameConflict(ContainerError):
    """A container by that name already exists."""


class StartError(ContainerError):
    """The container could not be started (a kernel call in a named stage failed)."""

    def __init__(self, message: str, *, stage: str = "", exit_code: int = 125):
        super().__init__(message)
        self.stage = stage
        self.exit_code = exit_code


class CgroupError(EngineError):
    """A cgroup could not be created, limited or removed."""


class SupervisorError(EngineError):
    """The supervisor could not be reached, started, or answered badly."""


class NotRunning(ContainerError):
    """The container exists but is not running (exec, kill); docker exits 1 here."""

    exit_code = 1
