"""Token-guard benchmark: what the guard costs a short question and a 5 MB document.

    .venv/bin/python -m bench.tokens

Each figure comes from a fresh process, so the tokenizer's one-time load is counted where it
happens. Targets: a 5 MB document for qwen-long judged in under 3 s; a short question never loads
the tokenizer (tiktoken stays unimported).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, random, sys, time
from handler.ask import guard, tokens
from handler.ask.models import DEFAULT_MODELS
from handler.ask.plan import Call
from handler.events.question import Message

size, model = int(sys.argv[1]), sys.argv[2]
random.seed(7)
words = ["西红柿", "牛腩", "炖", "函数计算", "模型", "hello", "world", "serverless", "，", "。", "\n"]
parts, total = [], 0
while total < size:
    word = random.choice(words) + (" " if random.random() < 0.3 else "")
    parts.append(word)
    total += len(word.encode())
text = "".join(parts)
call = Call(mode="messages", model=model,
            messages=(Message("system", "You are a helpful assistant."), Message("user", text)))
started = time.perf_counter()
try:
    verdict = guard.check(call, DEFAULT_MODELS[model]).counted_tokens and "fits (counted)" or "fits (byte bound)"
except Exception as error:
    verdict = getattr(error, "code", type(error).__name__)
elapsed = time.perf_counter() - started
print(json.dumps({"bytes": len(text.encode()), "seconds": elapsed, "verdict": verdict,
                  "tokenizer_loaded": tokens.loaded(), "tiktoken_imported": "tiktoken" in sys.modules}))
"""


MB = 1024 * 1024
CASES = [
    ("short question, qwen-turbo", 40, "qwen-turbo"),
    ("5 MB document, qwen-long", 5 * MB, "qwen-long"),
    ("5 MB document, qwen-plus (must be counted)", 5 * MB, "qwen-plus"),
    ("12 MB document, qwen-long (must be counted)", 12 * MB, "qwen-long"),
]


def probe(size: int, model: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(size), model],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def measure() -> dict[str, dict]:
    return {name: probe(size, model) for name, size, model in CASES}


def main(argv: list[str] | None = None) -> None:
    # No options: parsed for --help, and so that a mistyped option does not start the run. The probes
    # are fresh `python -c` processes: argparse is not in what they measure.
    argparse.ArgumentParser(
        prog="python -m bench.tokens", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
    figures = measure()
    print("token guard, one fresh process per case (the tokenizer's load counted where it happens):")
    for name, figure in figures.items():
        print(
            f"  {name:46} {figure['bytes']:>12,} B  {figure['seconds']:8.3f} s  {figure['verdict']:18} "
            f"tokenizer loaded: {figure['tokenizer_loaded']}"
        )
    short = figures[CASES[0][0]]
    slowest = max(f["seconds"] for f in figures.values())
    print(f"  short question never loads the tokenizer: {'yes' if not short['tiktoken_imported'] else 'NO'}")
    print(f"  slowest 5-12 MB judgement: {slowest:.2f} s ({'meets' if slowest < 3 else 'MISSES'} the target < 3 s)")


if __name__ == "__main__":
    main()
