"""Runs inside one side's virtualenv, started by bench/run.py: `probe.py SIDE MODE [N]`.

SIDE is `project` (index.initialize then index.handler, as FC calls them) or `naive`
(bench/naive_handler.py). MODE `cold` answers one question and says so; `warm` answers N questions
after one warm-up and prints per-call times and memory as JSON. Only the standard library is used
here, so each side imports nothing but its own code and dependencies.
"""

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


class FormatAndDrop(logging.Handler):
    """FC's runtime owns the root logger; like it, format every record (then drop it here)."""

    def emit(self, record):
        self.format(record)


def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def load(side):
    # BENCH_CODE_DIR: a copy of the code and its dependencies with no .pyc, like FC's /code.
    code = os.environ.get("BENCH_CODE_DIR")
    sys.path.insert(0, code or str(ROOT if side == "project" else ROOT / "bench"))
    if side == "project":
        import index

        index.initialize(SimpleNamespace(request_id="init", function=SimpleNamespace(timeout=60)))
        return index.handler
    import naive_handler

    return naive_handler.handler


def main():
    side, mode = sys.argv[1], sys.argv[2]
    logging.getLogger().addHandler(FormatAndDrop())
    handler = load(side)
    context = SimpleNamespace(request_id="bench", function=SimpleNamespace(timeout=60), credentials=None)
    if mode == "cold":
        returned = handler("如何做西红柿炖牛腩?".encode(), context)
        assert '"status_code": 200' in returned or '"status_code":200' in returned, returned
        print("answered", flush=True)
        return
    count = int(sys.argv[3])
    handler(b"warm-up", context)
    times, cpu, rss = [], [], {}
    for i in range(1, count + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        returned = handler(f"question {i}".encode(), context)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert "200" in returned[:40], returned
        if i in (100, count):
            rss[i] = rss_kib()
    print(
        json.dumps(
            {
                "times": times,
                "cpu": cpu,
                "rss_kib": rss,
                "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
