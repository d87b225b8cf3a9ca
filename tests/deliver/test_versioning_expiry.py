"""A bucket's versioning status expires: a bucket versioned later is refused without a redeploy."""

from __future__ import annotations

import pytest

from handler.deliver import versioning
from handler.errors import InvalidConfig


def test_a_buckets_versioning_is_looked_up_again_once_it_expires(store, clock):
    versioning.check(store, "bkt", "QWEN_OSS_BUCKETS", clock=clock)
    clock.now += versioning.TTL - 1
    store.versioning.return_value = "Enabled"
    versioning.check(store, "bkt", "QWEN_OSS_BUCKETS", clock=clock)  # still known as never versioned
    assert store.versioning.call_count == 1
    clock.now += 2
    with pytest.raises(InvalidConfig, match="versioning is Enabled"):
        versioning.check(store, "bkt", "QWEN_OSS_BUCKETS", clock=clock)
    assert store.versioning.call_count == 2
