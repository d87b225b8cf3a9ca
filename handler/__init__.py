"""qwen-fc: ask Qwen from a Function Compute event function."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_collection() -> Iterator[None]:
    """Import what lives as long as the instance without collecting, then freeze it out of the collector's
    reach: a collection meanwhile frees nothing, and a later one would rescan it all (docs/performance.md)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
