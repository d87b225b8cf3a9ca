"""Wall time and peak RSS of one instance submitting a 50,000-line, 100 MB `.jsonl` question file as a Batch API
job, and of another collecting it once the job is done, at s.yaml's spec: neither may read the file whole.

    .venv/bin/python -m bench.batches               # s.yaml's cpu, memorySize, timeout; 50,000 lines of 2,000 bytes
    .venv/bin/python -m bench.batches --cpu 1       # another CPU quota (--cpu 0: none)
    .venv/bin/python -m bench.batches --lines 2000  # a smaller file, to try the bench

Each step is one fresh interpreter (index.initialize, then index.handler, as FC calls them) with s.yaml's
environment variables and FC_FUNCTION_MEMORY_SIZE, against the local OSS and DashScope stand-ins, which run in
this process, outside the quota. As root the children run in a cgroup with a CPU quota of `--cpu` vCPUs
(bench/spec.py's Quota, FC's spec emulated); elsewhere the run says so and measures without one.
  1. submit: the OSS event of the file. The handler reads it from OSS, plans each line as a single question,
     spills the batch input to a temporary file, uploads it to the files API and creates the job;
  2. this process moves the stand-in's job to `completed` (its output file written, each answer padded to
     `--answer-chars`, so the answer file is about as large as the question file);
  3. collect: the timer trigger {"collect": "batches"}. The handler spills the output to SQLite, writes the
     answer file in input order to a temporary file and streams it to OSS; every line is checked answered.
Each child's peak RSS (VmHWM) once initialized is its baseline, measured in the same run. The target: each
step's peak at most 40 MB above its baseline (a question or answer file held whole would add its ~100 MB),
and under memorySize less 40 MB; exit status 1 otherwise. Printed: wall and CPU seconds, peaks, the growth,
the collect's seconds per job and per 10,000 lines, and whether each step fits s.yaml's timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

BUCKET = "bench-batches"
KEY = "inbox/bench.jsonl"
GROWTH_MB = 40  # the bound on peak minus baseline: well under the file's 100 MB
MARGIN_MB = 40  # as bench/documents.py: memorySize less this, for FC's runtime server and the page cache
FINISHED = ("completed", "failed", "expired", "cancelled")


# ---- the child: one step in a fresh interpreter (only the standard library besides the handler) ----------


def hwm_kib() -> int:
    """This process's peak RSS (VmHWM)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def child(step: str) -> None:
    """Initialize as FC does, then answer the event on stdin; print the figures as JSON."""
    import logging

    class FormatAndDrop(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.format(record)  # FC's runtime formats every record; the bench drops them

    event = sys.stdin.buffer.read()
    logging.getLogger().addHandler(FormatAndDrop())
    import index

    timeout = float(os.environ["BENCH_TIMEOUT"])
    context = SimpleNamespace(request_id=f"bench-{step}", function=SimpleNamespace(timeout=timeout), credentials=None)
    index.initialize(context)
    figures: dict[str, Any] = {"started_kib": hwm_kib()}
    started, started_cpu = time.perf_counter(), time.process_time()
    returned = index.handler(event, context)
    figures.update(wall_s=time.perf_counter() - started, cpu_s=time.process_time() - started_cpu)
    figures["peak_kib"] = hwm_kib()
    figures["result"] = json.loads(returned)
    print(json.dumps(figures))


# ---- this process: the stand-ins, the file, the children ----------------------------------------------


def shipped() -> dict[str, Any]:
    """s.yaml's cpu, memorySize, timeout and environment variables (its API key left out)."""
    import yaml

    from bench import run

    props = yaml.safe_load((run.ROOT / "s.yaml").read_text())["resources"]["qwen"]["props"]
    env = {k: str(v) for k, v in props["environmentVariables"].items() if k.startswith("QWEN_")}
    return {
        "cpu": float(props["cpu"]),
        "memory_mb": int(props["memorySize"]),
        "timeout": int(props["timeout"]),
        "env": env,
    }


def question_file(lines: int, line_bytes: int) -> bytes:
    """`lines` distinct questions, each line exactly `line_bytes` bytes with its line end."""
    filler = "Please explain, step by step and with an example, how a slow braise makes beef tender. "
    out = []
    for n in range(1, lines + 1):
        head = f'{{"custom_id":"q{n:06d}","prompt":"Question {n}: '
        room = line_bytes - len(head) - len('"}\n')
        text = (filler * (room // len(filler) + 1))[:room]
        out.append(f'{head}{text}"}}\n'.encode())
    return b"".join(out)


@contextlib.contextmanager
def quota(cpu: float) -> Iterator[tuple[list[str], str]]:
    """The command prefix that runs a child under a quota of `cpu` vCPUs, and what it is (none: why not)."""
    from bench import spec

    why = "--cpu 0" if cpu <= 0 else spec.quota_unavailable()
    if why is not None:
        yield [], f"no CPU quota ({why})"
        return
    group = spec.Quota(cpu)
    try:
        yield group.prefix, group.describe()
    finally:
        group.close()


def step(name: str, event: bytes, env: dict[str, str], prefix: list[str]) -> dict[str, Any]:
    from bench import run

    done = subprocess.run(
        [*prefix, sys.executable, "-m", "bench.batches", "--child", name],
        input=event,
        cwd=run.ROOT,
        env=env,
        capture_output=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr.decode(errors='replace')[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def measure(
    lines: int, line_bytes: int, answer_chars: int, cpu: float, settings: dict[str, Any], timeout: float
) -> dict[str, Any]:
    from bench import run
    from handler.local.standin import DashScopeStandIn
    from handler.local.standin_oss import OssStandIn

    data = question_file(lines, line_bytes)
    size = len(data)
    with DashScopeStandIn(api_key=run.KEY) as standin, OssStandIn() as oss, quota(cpu) as (prefix, spec_text):
        standin.keep_requests = oss.keep_requests = False  # the stand-ins' own memory stays flat
        standin.batches.answer_chars = answer_chars
        stored = oss.put(BUCKET, KEY, data)
        del data
        env = {
            **run.probe_env(standin),
            **settings["env"],
            "FC_FUNCTION_MEMORY_SIZE": str(settings["memory_mb"]),
            "QWEN_OSS_ENDPOINT": oss.url,
            "QWEN_OSS_BUCKETS": BUCKET,
            "BENCH_TIMEOUT": str(timeout),
        }
        obj = {"key": KEY, "eTag": stored.etag, "size": size}
        record = {"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                  "oss": {"bucket": {"name": BUCKET}, "object": obj}}  # fmt: skip
        submitted = step("submit", json.dumps({"events": [record]}).encode(), env, prefix)
        (result,) = submitted["result"]
        if result.get("code") != "BatchSubmitted":
            raise RuntimeError(f"not submitted: {json.dumps(result)[:2000]}")
        jobs = result["output"]["jobs"]
        uploaded = sum(standin.files.files[job["input_file_id"]].size for job in jobs)
        began = time.perf_counter()
        for job in jobs:  # the stand-in's work, not the function's: one state per retrieve
            while standin.batches.retrieve(job["id"])[1]["status"] not in FINISHED:
                pass
        finishing_s = time.perf_counter() - began
        timer = {"triggerTime": "2026-12-06T18:00:00Z", "triggerName": "collect", "payload": '{"collect": "batches"}'}
        collected = step("collect", json.dumps(timer).encode(), env, prefix)
        answer = oss.get(BUCKET, f"{settings['env'].get('QWEN_OSS_OUTPUT_PREFIX', 'answers/')}{KEY}.jsonl")
        written = [json.loads(line) for line in answer.data.splitlines()] if answer is not None else []
        answer_bytes = len(answer.data) if answer is not None else 0
    ids = [line.get("custom_id") for line in written]
    if ids != [f"q{n:06d}" for n in range(1, lines + 1)] or any(line["status_code"] != 200 for line in written):
        raise RuntimeError(f"the answer file does not answer every line in order: {len(written)} lines")
    return {
        "spec": spec_text,
        "lines": lines,
        "file_bytes": size,
        "answer_chars": answer_chars,
        "jobs": len(jobs),
        "batch_input_bytes": uploaded,
        "answer_bytes": answer_bytes,
        "finishing_s": finishing_s,
        "submit": {k: v for k, v in submitted.items() if k != "result"},
        "collect": {k: v for k, v in collected.items() if k != "result"},
    }


def report(figures: dict[str, Any], settings: dict[str, Any], timeout: float) -> bool:
    bound = settings["memory_mb"] - MARGIN_MB
    print(
        f"python {sys.version.split()[0]}, {figures['spec']}, FC_FUNCTION_MEMORY_SIZE={settings['memory_mb']}: "
        f"{figures['lines']:,} lines, {figures['file_bytes']:,} bytes; {figures['jobs']} job(s), batch input "
        f"{figures['batch_input_bytes']:,} bytes (spilled to /tmp by submit), answer file {figures['answer_bytes']:,} "
        f"bytes; the stand-in finished the job in {figures['finishing_s']:.1f} s"
    )
    ok = True
    for name in ("submit", "collect"):
        step_figures = figures[name]
        base, peak = step_figures["started_kib"] / 1024, step_figures["peak_kib"] / 1024
        growth = peak - base
        fits = step_figures["wall_s"] <= settings["timeout"]
        met = growth <= GROWTH_MB and peak <= bound
        ok = ok and met
        print(
            f"  {name:<7}: {step_figures['wall_s']:.1f} s wall ({step_figures['cpu_s']:.1f} s CPU), "
            f"{'fits' if fits else 'does NOT fit'} s.yaml's timeout {settings['timeout']} s; baseline {base:.1f} MB, "
            f"peak {peak:.1f} MB ({peak / base:.2f}x), +{growth:.1f} MB: "
            f"{'met' if met else 'NOT met'} (<= +{GROWTH_MB} MB, <= {bound} MB)"
        )
    collect_s = figures["collect"]["wall_s"]
    print(
        f"  collect: {collect_s / figures['jobs']:.1f} s per job, "
        f"{collect_s * 10_000 / figures['lines']:.1f} s per 10,000 lines"
    )
    print(json.dumps({**figures, "timeout_s": timeout, "bound_mb": bound, "growth_bound_mb": GROWTH_MB}))
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batches", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000, help="question lines (default 50,000: one job's most)")
    parser.add_argument("--line-bytes", type=int, default=2_000, help="bytes per line (default 2,000: 100 MB)")
    parser.add_argument(
        "--answer-chars", type=int, default=2_000, help="characters per answer (default 2,000: as long as a question)"
    )
    parser.add_argument("--cpu", type=float, help="vCPUs of the CPU quota (default s.yaml's cpu; 0: none)")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="the children's function timeout, s (default 3600: measured whole)"
    )
    parser.add_argument("--child", choices=("submit", "collect"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    if not 21 <= args.lines <= 50_000:
        parser.error("--lines: 21 (above s.yaml's real-time limit) to 50,000 (one job's most)")
    if args.line_bytes < 100:
        parser.error("--line-bytes: at least 100")
    settings = shipped()
    cpu = settings["cpu"] if args.cpu is None else args.cpu
    figures = measure(args.lines, args.line_bytes, args.answer_chars, cpu, settings, args.timeout)
    return 0 if report(figures, settings, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
