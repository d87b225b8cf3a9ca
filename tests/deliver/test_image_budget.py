"""The instance's byte budget for OSS files in flight: images wait for memory, not only for a batch slot."""

from __future__ import annotations

import threading
import time

import pytest

from handler.deliver.budget import MemoryBudget, instance_budget_bytes

MIB = 1024 * 1024


def run_together(budget: MemoryBudget, costs: list[int], work: float = 0.05) -> list[tuple[str, int, int]]:
    """Each cost held by its own thread for `work` seconds; the (begin|end, cost, bytes in flight) seen."""
    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def one(cost: int) -> None:
        with budget.held(cost):
            with lock:
                seen.append(("begin", cost, budget.in_flight))
            time.sleep(work)
            with lock:
                seen.append(("end", cost, budget.in_flight))

    threads = [threading.Thread(target=one, args=(cost,)) for cost in costs]
    for thread in threads:
        thread.start()
        time.sleep(0.005)  # in this order
    for thread in threads:
        thread.join(5)
    return seen


def most_at_once(seen: list[tuple[str, int, int]]) -> int:
    running = peak = 0
    for what, _, _ in seen:
        running += 1 if what == "begin" else -1
        peak = max(peak, running)
    return peak


def test_two_images_whose_costs_exceed_the_budget_run_one_after_the_other():
    budget = MemoryBudget(30 * MIB)
    seen = run_together(budget, [20 * MIB, 20 * MIB])
    assert [what for what, _, _ in seen] == ["begin", "end", "begin", "end"]
    assert max(in_flight for _, _, in_flight in seen) == 20 * MIB
    assert budget.in_flight == 0


def test_images_that_fit_together_run_together():
    budget = MemoryBudget(30 * MIB)
    seen = run_together(budget, [10 * MIB, 10 * MIB, 10 * MIB])
    assert most_at_once(seen) == 3
    assert budget.in_flight == 0


def test_an_image_larger_than_the_whole_budget_still_runs_alone():
    budget = MemoryBudget(30 * MIB)
    seen = run_together(budget, [5 * MIB, 90 * MIB, 5 * MIB])
    big = [i for i, (what, cost, _) in enumerate(seen) if cost == 90 * MIB]
    assert seen[big[0]][2] == 90 * MIB and big[1] == big[0] + 1  # nothing else in flight meanwhile
    assert budget.in_flight == 0


def test_a_failure_releases_what_it_held():
    budget = MemoryBudget(30 * MIB)
    with pytest.raises(RuntimeError), budget.held(25 * MIB):
        raise RuntimeError("DashScope failed")
    assert budget.in_flight == 0
    with budget.held(25 * MIB):  # would wait for ever if the failure had kept its bytes
        assert budget.in_flight == 25 * MIB


def test_a_failure_frees_the_bytes_its_frames_held():
    """The exception outlives the `with` (a batch keeps it to raise later): its frames must not keep the image."""
    budget = MemoryBudget(30 * MIB)
    freed = threading.Event()

    class Image(bytes):
        def __del__(self) -> None:
            freed.set()

    def ask() -> None:
        image = Image(b"\x89PNG" * 10)  # noqa: F841  # a local of the failing frame, as the data: URI is
        raise RuntimeError("DashScope failed")

    try:
        with budget.held(25 * MIB):
            ask()
    except RuntimeError as error:
        kept = error  # noqa: F841
        assert freed.is_set()


@pytest.mark.parametrize(
    ("memory", "expected"),
    [("192", (192 - 160) * MIB), ("512", (512 - 160) * MIB), ("128", 0), (None, (192 - 160) * MIB), ("x", 32 * MIB)],
)
def test_the_budget_is_the_instance_memory_less_what_the_instance_itself_needs(memory, expected):
    env = {} if memory is None else {"FC_FUNCTION_MEMORY_SIZE": memory}
    assert instance_budget_bytes(env) == expected
