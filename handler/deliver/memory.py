"""What this instance already answered: a redelivery is not charged twice, and an answer that could not be
stored (`stored=False`) is written again instead of asked again. Bounded in entries and age: redeliveries
come within minutes, and an instance may live for days."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from handler.result import Result
from handler.values import Value


class Remembered(Value):
    result: Result
    stored: bool = True  # False: paid for, but not in the answer store or answer file yet


class AnsweredRecords:
    def __init__(self, *, capacity: int = 256, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Remembered]] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, key: str) -> Remembered | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            stored_at, entry = found
            if self._clock() - stored_at > self._ttl:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, result: Result, *, stored: bool = True) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), Remembered(result, stored))
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._entries)
