"""Runs inside one side's virtualenv, started by bench/run.py: `probe.py SIDE MODE [N]`.

SIDE is `project` (index.initialize then index.handler, as FC calls them), or `naive` or `pinned`
(bench/naive_handler.py, on the newest or the pinned SDK). MODE `cold` answers one question and says
so (with BENCH_AUDIT set, then prints which sources were compiled); `warm` answers N questions after
one warm-up and prints per-call times and memory as JSON; `peak` (project) answers one long question
and then a batch of them, and prints the process's peak RSS after each; `images` (project) loads the
tokenizer with a long question, then answers the OSS event of N image files read from stdin (bench/images.py
writes it and the stand-ins it names), and prints the peak RSS after each; `document` (project) answers the
OSS event of N document files read from stdin (bench/documents.py) and prints the peak RSS before and after
it; `batch` (project) times one
batch of N questions answered at once. Only the standard library is used
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
    # BENCH_CODE_DIR: the side's deployment package unpacked read-only, like FC's /code (and /code/python).
    code = os.environ.get("BENCH_CODE_DIR")
    sys.path[0:0] = code.split(os.pathsep) if code else [str(ROOT if side == "project" else ROOT / "bench")]
    if side == "project":
        import index

        index.initialize(SimpleNamespace(request_id="init", function=SimpleNamespace(timeout=60)))
        return index.handler
    import naive_handler

    return naive_handler.handler


def compiled_sources():
    """Every source file Python compiles from now on (the `compile` audit event): none when the
    package's bytecode is used. Audit hooks cannot be removed, so only a checking run installs one."""
    compiled = []

    def hook(event, args):
        if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
            compiled.append(args[1])

    sys.addaudithook(hook)
    return compiled


SIDES = ("project", "naive", "pinned")
MODES = ("cold", "warm", "peak", "batch", "images", "document")


def parse_args(argv):
    """(side, mode, n or None). The arguments bench/run.py passes are read without argparse: its import
    would be timed with every cold start. Anything else (--help, a mistake) goes to argparse."""
    if 2 <= len(argv) <= 3 and argv[0] in SIDES and argv[1] in MODES:
        if argv[1] == "cold" and len(argv) == 2:
            return argv[0], argv[1], None
        if argv[1] != "cold" and len(argv) == 3 and argv[2].isdigit():
            return argv[0], argv[1], int(argv[2])
    import argparse

    parser = argparse.ArgumentParser(
        prog="probe.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("n", nargs="?", type=int, help="questions (warm, batch) or the batch size (peak)")
    args = parser.parse_args(argv)
    parser.error("cold takes no N" if args.mode == "cold" else f"{args.mode} needs N, a whole number")


def main():
    side, mode, count = parse_args(sys.argv[1:])
    compiled = compiled_sources() if os.environ.get("BENCH_AUDIT") else None
    logging.getLogger().addHandler(FormatAndDrop())
    handler = load(side)
    context = SimpleNamespace(request_id="bench", function=SimpleNamespace(timeout=60), credentials=None)
    if mode == "cold":
        returned = handler("如何做西红柿炖牛腩?".encode(), context)
        assert '"status_code": 200' in returned or '"status_code":200' in returned, returned
        print("answered", flush=True)
        if compiled is not None:
            modules = [m for name, m in list(sys.modules.items()) if name.split(".")[0] == "dashscope"]
            loaded = [getattr(m, "__file__", None) for m in modules]
            print(json.dumps({"compiled": compiled, "dashscope_files": [f for f in loaded if isinstance(f, str)]}))
        return
    if mode == "peak":
        print(json.dumps(peak(handler, context, count)))
        return
    if mode == "batch":
        print(json.dumps(timed_batch(handler, context, count)))
        return
    if mode == "images":
        print(json.dumps(images(handler, context, count, sys.stdin.buffer.read())))
        return
    if mode == "document":
        print(json.dumps(document(handler, context, count, sys.stdin.buffer.read())))
        return
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
                "usage": _usage(returned),
            }
        )
    )


def batch_event(count, tag):
    """An MNS queue batch through EventBridge (CloudEvents), `count` messages of distinct ids."""
    messages = [
        {
            "id": f"bench-{tag}-{i}",
            "source": "MNS-qwen-queue",
            "specversion": "1.0",
            "type": "mns:Queue:SendMessage",
            "subject": "acs:mns:cn-hangzhou:1234567890:queues/qwen-questions",
            "data": {"requestId": f"r{i}", "messageId": f"bench-{tag}-message-{i}", "messageBody": f"问题 {i}"},
        }
        for i in range(count)
    ]
    return json.dumps(messages).encode()


def timed_batch(handler, context, count):
    """Wall and CPU time of one batch of `count` questions, answered at once (after one warm-up)."""
    handler(b"warm-up", context)
    started, started_cpu = time.perf_counter(), time.process_time()
    results = json.loads(handler(batch_event(count, "timed"), context))
    assert [r["status_code"] for r in results] == [200] * count, results
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - started_cpu}


def _usage(returned):
    """The token usage the project's last answer reported (the naive port returns no JSON)."""
    try:
        usage = json.loads(returned).get("usage")
    except (ValueError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


def peak(handler, context, batch):
    """Peak RSS (KiB, ru_maxrss) once started, after one long streamed answer, after a batch of
    `batch` MNS queue messages answered at once (each as long; the stand-in decides the length), and
    after a question too long for the byte bound, which loads the SDK's tokenizer to count it."""
    # FC's Python runtime serves invocations over HTTP from this same process: load what such a
    # server needs, as the closest stand-in for the runtime code that is not ours to measure.
    import http.server  # noqa: F401
    import socketserver  # noqa: F401

    def maxrss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    figures = {"started_kib": maxrss()}
    returned = json.loads(handler("请详细讲解西红柿炖牛腩的做法".encode(), context))
    assert returned["status_code"] == 200, returned
    figures["answer_chars"] = len(returned["output"]["choices"][0]["message"]["content"])
    figures["long_kib"] = maxrss()
    results = json.loads(handler(batch_event(batch, "peak"), context))
    assert [r["status_code"] for r in results] == [200] * batch, results
    figures["batch_kib"] = maxrss()
    # 50,000 characters, 150,000 UTF-8 bytes: over qwen-turbo's 131,072-token window in bytes, so the
    # guard counts it with the tokenizer (under the window in tokens).
    returned = json.loads(handler(("牛腩要炖多久才软烂" * 5556)[:50_000].encode(), context))
    assert returned["status_code"] == 200, returned
    figures["tokenizer_kib"] = maxrss()
    figures["tokenizer_loaded"] = "tiktoken" in sys.modules
    return figures


def hwm_kib():
    """This process's peak RSS (VmHWM): unlike ru_maxrss, not inherited through exec from a large parent."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def images(handler, context, count, event):
    """Peak RSS (KiB, VmHWM) once started, after a 50,000-character question (the tokenizer loaded and kept,
    as in `peak`), then after one OSS event of `count` image files, each answered 200 with its image."""
    figures = {"started_kib": hwm_kib()}
    returned = json.loads(handler(("牛腩要炖多久才软烂" * 5556)[:50_000].encode(), context))
    assert returned["status_code"] == 200 and "tiktoken" in sys.modules, returned
    figures["tokenizer_kib"] = hwm_kib()
    started = time.perf_counter()
    results = json.loads(handler(event, context))
    figures["images_s"] = time.perf_counter() - started
    assert [r["status_code"] for r in results] == [200] * count, str(results)[:2000]
    assert all("[1 image part received]" in r["output"]["choices"][0]["message"]["content"] for r in results)
    figures["images_kib"] = hwm_kib()
    return figures


def document(handler, context, count, event):
    """Peak RSS (KiB, VmHWM) once initialized (the baseline), with BENCH_TOKENIZER set after a 50,000-character
    question (the tokenizer loaded), then after one OSS event of `count` documents, each answered 200 naming
    the bytes DashScope's stand-in received."""
    figures = {"started_kib": hwm_kib()}
    if os.environ.get("BENCH_TOKENIZER"):  # a long-lived instance that has counted a long question before
        returned = json.loads(handler(("牛腩要炖多久才软烂" * 5556)[:50_000].encode(), context))
        assert returned["status_code"] == 200 and "tiktoken" in sys.modules, returned
    figures["tokenizer_kib"] = hwm_kib()
    started = time.perf_counter()
    results = json.loads(handler(event, context))
    figures["document_s"] = time.perf_counter() - started
    assert [r["status_code"] for r in results] == [200] * count, str(results)[:2000]
    assert all(" bytes, sha256 " in r["output"]["choices"][0]["message"]["content"] for r in results)
    figures["document_kib"] = hwm_kib()
    return figures


if __name__ == "__main__":
    main()
