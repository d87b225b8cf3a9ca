"""Versioned buckets void exactly once: OSS ignores x-oss-forbid-overwrite on a bucket whose versioning is
Enabled or Suspended, so each bucket's status is learnt once per instance and a versioned one is refused
(InvalidConfig) before anything is asked; a denied lookup is one WARNING, and the bucket is used as before.
"""

from __future__ import annotations

import logging
import threading

from handler import logs
from handler.deliver.store import ObjectStore
from handler.errors import InvalidConfig, ObjectAccessDenied, QwenError, TransientUpstreamError

VERSIONED = ("Enabled", "Suspended")

_lock = threading.Lock()
_known: dict[str, str | None] = {}  # bucket -> its status, as learnt by this instance (None: never versioned)


def check(store: ObjectStore, bucket: str, variable: str) -> None:
    """Raise InvalidConfig (naming `variable`, the bucket and why) when `bucket` is versioned."""
    with _lock:
        known = bucket in _known
        status = _known.get(bucket)
    if not known:
        status = _learn(store, bucket)
    if status in VERSIONED:
        raise InvalidConfig(
            variable,
            f"names the bucket {bucket}, whose versioning is {status}: OSS ignores x-oss-forbid-overwrite on a "
            "versioned bucket (Enabled or Suspended), so two instances could both ask and overwrite each "
            "other's answers; use a bucket that never had versioning enabled",
        )


def _learn(store: ObjectStore, bucket: str) -> str | None:
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
        _known[bucket] = status
    return status


def forget() -> None:
    """Tests: a new instance."""
    with _lock:
        _known.clear()
