"""Stage 3, the delivery: each record answered once, its answer returned, stored or written beside it."""
