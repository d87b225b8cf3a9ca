"""`python -m handler tokens`: count a text's Qwen tokens and say whether it fits a model and what it costs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from handler import tokens
from handler.errors import InvalidConfig
from handler.models import parse_table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler tokens",
        description="Count Qwen tokens offline (the SDK's local tokenizer) and check them against a model.",
    )
    p.add_argument("text", nargs="*", help="the text (words are joined); '-' reads stdin")
    p.add_argument("--file", metavar="PATH", help="count this UTF-8 file instead")
    p.add_argument("--model", default=None, help="the model to check against (default: QWEN_MODEL or qwen-turbo)")
    p.add_argument("--max-tokens", type=int, default=0, help="tokens to keep for the answer")
    return p


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    if bool(args.text) == (args.file is not None):
        print("give the text, '-' for stdin, or --file PATH (one of them)", file=sys.stderr)
        return 2
    try:
        text = _read(args)
        table = parse_table(os.environ.get("QWEN_MODEL_TABLE", ""))
    except (OSError, UnicodeDecodeError) as error:
        print(f"cannot read the text: {error}", file=sys.stderr)
        return 2
    except InvalidConfig as error:
        print(error.message, file=sys.stderr)
        return 2
    model = args.model or os.environ.get("QWEN_MODEL") or "qwen-turbo"
    count = tokens.count(text)
    as_question = count + tokens.template_overhead(1)
    print(f"tokens        {count:,}", file=out)
    print(f"bytes         {tokens.byte_bound([text]):,}", file=out)
    info = table.get(model)
    if info is None:
        print(f"model         {model}: not in the model table (set QWEN_MODEL_TABLE to add it)", file=out)
        return 0
    input_price, _ = info.prices(as_question)
    cost = info.cost(count, 0)
    priced = f"{cost:.8f} CNY at {input_price} CNY per 1K tokens" if cost is not None else "unknown (no price)"
    if info.context_window is None:
        print(f"model         {model}: context window not in the table, not guarded", file=out)
        print(f"input cost    {priced}", file=out)
        return 0
    budget = info.context_window - args.max_tokens
    fits = as_question <= budget
    verdict = f"fits, {budget - as_question:,} to spare" if fits else f"too long by {as_question - budget:,}"
    print(f"model         {model}: context {info.context_window:,} tokens", file=out)
    print(f"as a question {as_question:,} tokens with the chat template: {verdict}", file=out)
    print(f"input cost    {priced}", file=out)
    return 0 if fits else 1


def _read(args: argparse.Namespace) -> str:
    if args.file is not None:
        with open(args.file, "rb") as f:
            return f.read().decode("utf-8-sig")
    if args.text == ["-"]:
        return sys.stdin.buffer.read().decode("utf-8-sig")
    return " ".join(args.text)
