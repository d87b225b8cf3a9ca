"""Which DashScope API serves a model: the table's word for it, else what this instance learned.

Each model is served on text-generation or multimodal-generation, and the other answers 400
InvalidParameter "url error, ..." (nothing generated or billed). A model the table does not place is
asked on text-generation, on exactly that 400 once more on multimodal-generation, and the instance
remembers where it was answered for TTL seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from handler import logs
from handler.ask.models import TEXT, ModelInfo
from handler.result import Result

URL_ERROR = "url error"  # DashScope's message begins "url error, please check url!"


def is_url_error(result: Result) -> bool:
    return result.status_code == 400 and result.code == "InvalidParameter" and URL_ERROR in result.message.lower()


class ModelApis:
    """One instance's learned APIs by model name, bounded: a long-lived instance must not grow without end."""

    LIMIT = 256
    TTL = 600.0  # seconds: a model DashScope moves to the other API is found again without a redeploy

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._learned: dict[str, tuple[str, float]] = {}  # model -> (its API, when it was learned)
        self._lock = threading.Lock()
        self._clock = clock

    def api(self, model: str, info: ModelInfo | None) -> tuple[str, bool]:
        """(the API to ask first, whether it is settled): the table's, else the learned one, else text."""
        if info is not None and info.api is not None:
            return info.api, True
        with self._lock:
            api, at = self._learned.get(model, (TEXT, None))
        return (api, True) if at is not None and self._clock() - at < self.TTL else (TEXT, False)

    def learn(self, model: str, api: str) -> None:
        """Remember `model`'s API; the first time, log the QWEN_MODEL_TABLE entry that makes it permanent."""
        with self._lock:
            known = self._learned.get(model, (None, 0.0))[0] == api
            if not known and len(self._learned) >= self.LIMIT:
                self._learned.clear()
            self._learned[model] = (api, self._clock())
        if known:
            return
        entry = json.dumps({model: {"api": api}}, ensure_ascii=False)
        logs.emit(
            "model_api_learned",
            level=logging.WARNING,
            model=model,
            api=api,
            message=(
                f"{model} is served by DashScope's {api} API, not the table's default: learned by this instance "
                f"after one 'url error' refusal. Add QWEN_MODEL_TABLE='{entry}' to skip that first request "
                "on every new instance"
            ),
            model_table_entry=entry,
        )
