"""Failed joins, counted per source address: brute force of the room code is slowed, then refused.

After ``limit`` failures within ``window`` seconds an address is refused,
whatever it sends, for ``lockout`` seconds (doubling each time it comes back
to the limit, up to an hour). Both doors share one limiter. No Textual here.
"""

from __future__ import annotations

import time


class Limiter:
    def __init__(self, limit: int = 5, window: float = 60.0, lockout: float = 60.0, clock=time.monotonic):
        self.limit, self.window, self.lockout, self.clock = limit, window, lockout, clock
        self.failures: dict[str, list[float]] = {}
        self.locked: dict[str, tuple[float, float]] = {}     # address -> (until, its lockout)

    def locked_for(self, address: str) -> float:
        """Seconds left of the address's lockout (0: it may try)."""
        until, _ = self.locked.get(address, (0.0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, address: str) -> None:
        now = self.clock()
        recent = [t for t in self.failures.get(address, []) if now - t < self.window] + [now]
        self.failures[address] = recent
        if len(recent) >= self.limit:
            _, last = self.locked.get(address, (0.0, 0.0))
            span = min(3600.0, last * 2 if last else self.lockout)
            self.locked[address] = (now + span, span)
            self.failures[address] = []
        if len(self.failures) > 10000:                 # forget the oldest addresses
            for key in list(self.failures)[:5000]:
                del self.failures[key]

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
