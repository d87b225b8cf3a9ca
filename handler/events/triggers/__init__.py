"""Read-only views of the envelopes FC's triggers deliver, one module per event source.

Each view wraps the parsed JSON and exposes a property per documented field; `matches` says
whether a parsed event has that envelope's shape. Nothing here does I/O.
"""
