"""Batch benchmark: 8 MNS queue messages against one, through the real SDK and the local stand-in.

    .venv/bin/python -m bench.batch            # prints the figures and the ratio; target <= 1.5

The stand-in answers every request after 0.5 s, as a slow model would; the ratio shows whether the
batch's questions overlap (about 1x) or queue (about 8x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace

from handler.app import Runtime, handle
from handler.deliver.memory import AnsweredRecords
from handler.local.standin import DashScopeStandIn

LATENCY = 0.5
KEY = "sk-bench-000000000000"


def queue_batch(count: int, run: int) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "type": "mns:Queue:SendMessage",
                "id": f"e{run}-{i}",
                "data": {"messageId": f"m{run}-{i}", "messageBody": f"问题 {i}"},
            }
            for i in range(count)
        ]
    ).encode()


def timed(runtime: Runtime, count: int, run: int) -> float:
    context = SimpleNamespace(request_id=f"bench-{run}", function=SimpleNamespace(timeout=60))
    started = time.perf_counter()
    results = json.loads(handle(queue_batch(count, run), context, runtime))
    elapsed = time.perf_counter() - started
    assert len(results) == count and all(r["status_code"] == 200 for r in results), results
    return elapsed


def measure(runs: int = 5) -> dict[str, float]:
    with DashScopeStandIn(api_key=KEY, latency=LATENCY) as standin:
        runtime = Runtime(
            env={"DASHSCOPE_API_KEY": KEY, "DASHSCOPE_HTTP_BASE_URL": standin.url}, memory=AnsweredRecords()
        )
        timed(runtime, 8, -1)  # warm: SDK import, connection pool
        ones, eights = [], []
        for run in range(runs):
            ones.append(timed(runtime, 1, 2 * run))
            eights.append(timed(runtime, 8, 2 * run + 1))
    one, eight = statistics.median(ones), statistics.median(eights)
    return {"one_s": one, "eight_s": eight, "ratio": eight / one}


def main(argv: list[str] | None = None) -> None:
    # No options: parsed for --help, and so that a mistyped option does not start the run.
    argparse.ArgumentParser(
        prog="python -m bench.batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
    figures = measure()
    verdict = "meets" if figures["ratio"] <= 1.5 else "MISSES"
    print(f"batch of 8 vs 1 at {LATENCY}s upstream latency (median of 5):")
    print(f"  1 message : {figures['one_s']:.3f} s")
    print(f"  8 messages: {figures['eight_s']:.3f} s")
    print(f"  ratio     : {figures['ratio']:.2f} x  ({verdict} the target <= 1.5 x)")


if __name__ == "__main__":
    main()
