"""qwen-fc: ask Qwen from a Function Compute event function."""

import gc


class no_collection:  # noqa: N801  # used as a function: `with no_collection():`
    """Import what lives as long as the instance without collecting, then freeze it out of the collector's
    reach: a collection meanwhile frees nothing, and a later one would rescan it all (docs/performance.md).
    A class, not contextlib: this module is imported before the collector is paused."""

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            gc.freeze()
        if self.collecting:
            gc.enable()
