"""Function Compute entry points: `index.handler` for events, `index.initialize` for the initializer."""

from __future__ import annotations

from handler import no_collection

with no_collection():
    from typing import Any

    from handler.app import handle
    from handler.app import initialize as _initialize


def handler(event: bytes, context: Any) -> str:
    """Answer the question(s) in `event`; always serialized JSON, or an exception FC will retry."""
    return handle(event, context)


def initialize(context: Any) -> None:
    """Check the configuration and warm the SDK import before the first event arrives."""
    _initialize(context)
