"""What a container may use: the :class:`Limits` asked for at ``run`` (``-m``,
``--memory-swap``, ``--pids-limit``, ``--cpus``), checked when made.

The drivers (:mod:`.v1`, :mod:`.v2`) turn them into control-file writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument

CPU_PERIOD = 100_000            # microseconds: the CFS period docker uses


@dataclass(frozen=True)
class Limits:
    """What a container may use. ``None`` everywhere means no limit at all.

    ``memory_swap`` follows docker: memory *plus* swap. Left ``None`` with a
    memory limit it equals the limit (no swap); ``-1`` allows unlimited swap.
    ``cpus=0.5`` means half of one CPU: 50 ms of every 100 ms period.
    """

    memory: int | None = None
    memory_swap: int | None = None
    pids: int | None = None
    cpus: float | None = None

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory <= 0:
            raise InvalidArgument(f"invalid memory limit: {self.memory} (must be > 0)")
        if self.pids is not None and self.pids <= 0:
            raise InvalidArgument(f"invalid pids limit: {self.pids} (must be > 0)")
        if self.cpus is not None and not self.cpus >= 0.01:
            raise InvalidArgument(f"invalid cpus: {self.cpus} (the smallest is 0.01)")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise InvalidArgument("a memory+swap limit needs a memory limit too")
            if self.memory_swap < self.memory:
                raise InvalidArgument(
                    f"memory+swap limit ({self.memory_swap}) must be at least "
                    f"the memory limit ({self.memory})")

    @property
    def swap(self) -> int | None:
        """Swap bytes allowed on top of memory: 0 = swap off, None = unlimited."""
        if self.memory is None or self.memory_swap == -1:
            return None
        if self.memory_swap is None:
            return 0
        return self.memory_swap - self.memory

    @property
    def cpu_quota(self) -> int | None:
        """Microseconds of CPU per :data:`CPU_PERIOD`, or None for no limit."""
        return None if self.cpus is None else round(self.cpus * CPU_PERIOD)

