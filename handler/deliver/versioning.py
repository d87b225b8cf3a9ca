"""Versioned buckets void exactly once: OSS ignores x-oss-forbid-overwrite on a bucket whose versioning is
Enabled or Suspended, so each bucket's status is learnt (again after TTL) and a versioned one is refused
(InvalidConfig) before anything is asked; a denied lookup is one WARNING, and the bucket is used as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from handler import logs
from handler.deliver.store import ObjectStore
from handler.errors import InvalidConfig, ObjectAccessDenied, QwenError, TransientUpstreamError

VERSIONED = ("Enabled", "Suspended")
TTL = 300.0  # seconds: versioning enabled on a bucket later is refused without a redeploy

_lock = threading.Lock()
_known: dict[str, tuple[str | None, float]] = {}  # bucket -> (its status, None: never versioned; when learnt)


def check(store: ObjectStore, bucket: str, variable: str, *, clock: Callable[[], float] = time.monotonic) -> None:
    """Raise InvalidConfig (naming `variable`, the bucket and why) when `bucket` is versioned."""
    now = clock()
    with _lock:
        status, at = _known.get(bucket, (None, None))
    if at is None or now - at >= TTL:
        status = _learn(store, bucket, now)
    if status in VERSIONED:
        raise InvalidConfig(
            variable,
            f"names the bucket {bucket}, whose versioning is {status}: OSS ignores x-oss-forbid-overwrite on a "
            "versioned bucket (Enabled or Suspended), so two instances could both ask and overwrite each "
            "other's answers; use a bucket that never had versioning enabled",
        )


def _learn(store: ObjectStore, bucket: str, now: float) -> str | None:
    try:
        status = store.versioning(bucket)
    except TransientUpstreamError:
        raise  # nothing asked yet: the delivery comes again, and the lookup with it
    except ObjectAccessDenied as denied:
        logs.emit(
            "bucket_versioning_unknown",
            level=logging.WARNING,
            bucket=bucket,
            message=f"cannot learn whether {bucket} is versioned ({denied.code}): grant the function's role "
            f"oss:GetBucketVersioning on acs:oss:*:*:{bucket}; on a versioned bucket answers are not exactly once",
        )
        status = None
    except QwenError:
        status = None  # an answer the lookup did not expect: the bucket is used as before
    with _lock:
        _known[bucket] = (status, now)
    return status


def forget() -> None:
    """Tests: a new instance."""
    with _lock:
        _known.clear()
