"""The instance's memory for OSS files in flight (docs/performance.md#images): a file holds its estimated
cost from before its bytes are read until its answer is done; one over the whole budget runs alone."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

MIB = 1024 * 1024
SHIPPED_MB, INSTANCE_MB = 192, 160  # s.yaml's memorySize; the tokenizer-loaded instance and FC's 30 MB
COST_PER_BYTE = 3  # an image's peak: its bytes and its data: URI's text while one is made from the other
COLLECTED = 8 * MIB  # a cost from this size up frees its garbage when done (about 15 ms of CPU)


class MemoryBudget:
    """Bytes in flight across the instance's threads, at most `total` unless one holder alone is over it."""

    def __init__(self, total: int) -> None:
        self.total, self.in_flight = total, 0
        self._changed = threading.Condition()

    @contextmanager
    def held(self, cost: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self.in_flight == 0 or self.in_flight + cost <= self.total)
            self.in_flight += cost
        try:
            yield
        except BaseException as error:
            traceback.clear_frames(error.__traceback__)  # a batch keeps it: its frames must not keep the image
            raise
        finally:
            if cost >= COLLECTED:
                # Caught errors (oss2's, the SDK's) keep their callers' frames, image included, in cycles;
                # glibc keeps freed pages in each batch thread's arena.
                gc.collect()
                if _LIBC is not None:
                    _LIBC.malloc_trim(0)
            with self._changed:
                self.in_flight -= cost
                self._changed.notify_all()


def instance_budget_bytes(env: Mapping[str, str]) -> int:
    """FC_FUNCTION_MEMORY_SIZE (MB, set by FC) less what the instance itself needs; SHIPPED_MB without it."""
    memory = env.get("FC_FUNCTION_MEMORY_SIZE", "")
    return max(0, (int(memory) if memory.isdigit() else SHIPPED_MB) - INSTANCE_MB) * MIB


M_MMAP_THRESHOLD = -3  # glibc's mallopt option: buffers from this size up are mapped on their own

try:  # so a freed image goes back to the system at once; not glibc (macOS, musl): the budget alone bounds it
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)
    _LIBC.mallopt(M_MMAP_THRESHOLD, MIB)
    _LIBC.malloc_trim  # noqa: B018  # raises AttributeError where there is no malloc_trim
except (OSError, AttributeError):
    _LIBC = None
INSTANCE = MemoryBudget(instance_budget_bytes(os.environ))  # one per instance: every invocation's OSS files share it
