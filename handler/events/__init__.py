"""Stage 1, the event: bytes -> records (questions, skips, refusals). Pure: no I/O, no configuration."""
