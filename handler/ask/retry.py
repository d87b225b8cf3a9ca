"""Attempts within a deadline: how long each may take, how long to wait between them, when to stop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from handler.values import Value, field

# Below this, an attempt cannot finish a model call; better to report than to start it.
MIN_ATTEMPT_SECONDS = 1.0


class Deadline(Value):
    """The moment the function must have returned by, minus a margin for writing results and logs."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def for_function(cls, timeout: float, *, started: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        margin = min(3.0, max(0.5, timeout * 0.1))
        return cls(at=started + timeout - margin, clock=clock)

    def remaining(self) -> float:
        return self.at - self.clock()


class Backoff(Value):
    """Exponential backoff with equal jitter: half the step is fixed, half is random."""

    base: float = 0.5
    cap: float = 8.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        step = min(self.cap, self.base * 2 ** (failures - 1))
        return step / 2 + (rng or random).uniform(0, step / 2)

    def wait(self, failures: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """The pause before the next attempt: ours, or longer when the server asked for longer."""
        ours = self.delay(failures, rng)
        return max(ours, retry_after) if retry_after is not None else ours
