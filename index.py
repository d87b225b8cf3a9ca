"""Function Compute entry points: `index.handler` for events, `index.initialize` for the initializer."""

from __future__ import annotations

import gc

# Importing the handler creates only objects that live as long as the instance (modules, classes,
# functions): a garbage collection meanwhile can free nothing, yet the allocations trigger a dozen
# or more of them (about a tenth of the handler's own import time, multiplied at a small spec).
# Frozen afterwards, they are never scanned: without the freeze, the first allocation after
# gc.enable() would collect all of them at once. `initialize` does the same for the SDK's import.
_collecting = gc.isenabled()
gc.disable()
try:
    from typing import Any

    from handler.app import handle
    from handler.app import initialize as _initialize

    gc.freeze()
finally:
    if _collecting:
        gc.enable()


def handler(event: bytes, context: Any) -> str:
    """Answer the question(s) in `event`; always serialized JSON, or an exception FC will retry."""
    return handle(event, context)


def initialize(context: Any) -> None:
    """Check the configuration and warm the SDK import before the first event arrives."""
    _initialize(context)
