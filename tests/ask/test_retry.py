"""Backoff is jittered: instances that fail together do not all retry at the same moment."""

from __future__ import annotations

import random

import pytest

from handler.ask.attempts import Backoff

SEEDS = range(200)


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 6])
def test_the_delay_is_spread_across_random_draws(failures):
    """Across seeded draws, the pause after the same failure varies over at least a quarter of its step."""
    backoff = Backoff(base=0.5, cap=4.0)
    step = min(backoff.cap, backoff.base * 2 ** (failures - 1))
    delays = [backoff.delay(failures, random.Random(seed)) for seed in SEEDS]
    assert all(0 < d <= backoff.cap for d in delays), delays
    assert max(delays) - min(delays) >= step / 4, (min(delays), max(delays), step)
    assert len(set(delays)) > len(delays) // 2  # not a handful of fixed values


def test_the_wait_between_attempts_is_jittered_too():
    """wait() (what the handler sleeps) varies with the draw when the server sets no Retry-After."""
    backoff = Backoff(base=0.5, cap=4.0)
    waits = [backoff.wait(2, None, random.Random(seed)) for seed in SEEDS]
    assert max(waits) - min(waits) >= 0.25, (min(waits), max(waits))


def test_a_seeded_draw_is_repeatable():
    """The same seed gives the same pause, so the tests above are deterministic."""
    backoff = Backoff(base=0.5, cap=4.0)
    assert [backoff.delay(3, random.Random(7)) for _ in range(3)] == [backoff.delay(3, random.Random(7))] * 3
