"""`python -m handler tokens`: count what the handler would send for a text, say whether it fits the model and
what its input costs.

The count is the handler's: the text is decoded as an event (plain text or a JSON request), planned with
the deployment's settings (system prompt, QWEN_PARAMETERS' max_tokens, the model table) and judged by the
same guard, so "fits" here means the handler will send it. The settings are the shell's over s.yaml's
environmentVariables, as for `python -m handler` (handler/local/deployed_env.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from handler.ask import guard, tokens
from handler.ask.models import ModelInfo
from handler.ask.plan import Call, plan
from handler.config import Settings
from handler.errors import InvalidConfig, InvalidInput
from handler.events.decode import decode
from handler.events.question import Question
from handler.local import deployed_env
from handler.values import replace

# The calculator never calls DashScope; the settings only need some key to be read.
NO_KEY = "sk-unused-by-the-token-calculator"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler tokens",
        description="Count offline (the SDK's local tokenizer) what the handler would send for a question, "
        "with the deployment's QWEN_* settings (s.yaml's environmentVariables, overridden by the shell's), "
        "and check it against the model.",
    )
    p.add_argument("text", nargs="*", help="the question or JSON request (words are joined); '-' reads stdin")
    p.add_argument(
        "--file",
        metavar="PATH",
        help="read the question from this UTF-8 file instead (read as the handler reads events)",
    )
    p.add_argument("--model", default=None, help="the model to check against (default: QWEN_MODEL or qwen-turbo)")
    p.add_argument(
        "--no-s-yaml", action="store_true", help="do not read s.yaml's environmentVariables: the shell's alone"
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="tokens to keep for the answer (default: max_tokens in QWEN_PARAMETERS, else the guard's default "
        "reservation: the window less the max input, else the max output)",
    )
    return p


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    if bool(args.text) == (args.file is not None):
        print("give the text, '-' for stdin, or --file PATH (one of them)", file=sys.stderr)
        return 2
    if args.max_tokens is not None and args.max_tokens < 1:
        print("--max-tokens must be at least 1", file=sys.stderr)
        return 2
    try:
        event = _read(args)
        deployed = {} if args.no_s_yaml else deployed_env.variables()
        settings = Settings.from_env(_environment({**deployed, **os.environ}, args.model))
    except OSError as error:
        print(f"cannot read {error.filename or 'the text'}: {error.strerror or error}", file=sys.stderr)
        return 2
    except InvalidConfig as error:
        print(error.message, file=sys.stderr)
        return 2

    # The bytes go to the handler's own decoder: a file that is not UTF-8 (GBK, say) gets the handler's
    # 400 InvalidEncoding with its iconv hint, not a Python traceback.
    decoded = decode(event)
    question = decoded.records[0]
    if decoded.batch or not isinstance(question, Question | InvalidInput):
        print("this is a trigger event, not a question: give the question's text", file=sys.stderr)
        return 2
    if isinstance(question, InvalidInput):
        print(f"the handler would refuse it: {question.code}: {question.message}", file=sys.stderr)
        return 1
    try:
        call = plan(question, settings)
    except InvalidInput as error:
        print(f"the handler would refuse it: {error.code}: {error.message}", file=sys.stderr)
        return 1
    if args.max_tokens is not None:
        # The operator's what-if, not an event's choice: applied after the event caps.
        call = replace(call, parameters={**call.parameters, "max_tokens": args.max_tokens})

    texts = _texts(call)
    counts = [tokens.count(t) for t in texts]
    total = sum(counts) + tokens.template_overhead(len(texts))
    print(f"content       {sum(counts):,} tokens ({tokens.byte_bound(texts):,} bytes): {_shape(call)}", file=out)
    print(f"as sent       {total:,} tokens with Qwen's chat template (5 per message, 3 to prime the reply)", file=out)
    info = settings.models.get(call.model)
    if info is None:
        print(
            f"model         {call.model}: not in the model table (set QWEN_MODEL_TABLE to add it); not guarded",
            file=out,
        )
        return 0
    max_tokens = int(call.parameters.get("max_tokens") or 0)
    input_price, _ = info.prices(total)
    cost = info.cost(total, 0)
    priced = f"{cost:.8f} CNY at {input_price} CNY per 1K tokens" if cost is not None else "unknown (no price)"
    room = guard.budget(info, max_tokens)
    if room is None:
        print(f"model         {call.model}: context window and max input not in the table, not guarded", file=out)
        print(f"input cost    {priced}", file=out)
        return 0
    window = f"context {info.context_window:,} tokens" if info.context_window is not None else "context not known"
    shown_input = f", max input {info.max_input:,}" if info.max_input is not None else ""
    print(
        f"model         {call.model}: {window}{shown_input}, {room.reserved:,} kept for the answer ({room.why})",
        file=out,
    )
    print(f"input budget  at most {room.limit:,} input tokens ({_arithmetic(info, room)})", file=out)
    try:
        fit = guard.check(call, info, trim=settings.trim_history)
    except InvalidInput as error:
        over = total - room.limit
        verdict = f"too long by {over:,}" if error.code == "InputTooLong" and over > 0 else "refused"
        print(f"verdict       {verdict}: {error.code}: {error.message}", file=out)
        return 1
    if fit.trimmed_turns:
        total = fit.counted_tokens or total
        verdict = f"fits after dropping the {fit.trimmed_turns} oldest turn(s) (QWEN_TRIM_HISTORY): {total:,} tokens"
    else:
        verdict = f"fits, {room.limit - total:,} to spare"
    print(f"verdict       {verdict}", file=out)
    print(f"input cost    {priced}", file=out)
    return 0


def _arithmetic(info: ModelInfo, room: guard.Budget) -> str:
    """The guard's rule as numbers: min(max input, window - room)."""
    terms = []
    if info.max_input is not None:
        terms.append(f"max input {info.max_input:,}")
    if info.context_window is not None:
        terms.append(f"{info.context_window:,} - {room.reserved:,} = {info.context_window - room.reserved:,}")
    return terms[0] if len(terms) == 1 else f"the lower of {' and '.join(terms)}"


def _environment(env: Mapping[str, str], model: str | None) -> dict[str, str]:
    """The deployment's variables, with --model as QWEN_MODEL (and allowed) and a key if none is set."""
    chosen = dict(env)
    if not chosen.get("DASHSCOPE_API_KEY", "").strip():
        chosen["DASHSCOPE_API_KEY"] = NO_KEY
    if model:
        chosen["QWEN_MODEL"] = model
        if chosen.get("QWEN_ALLOWED_MODELS", "").strip():
            chosen["QWEN_ALLOWED_MODELS"] += f",{model}"
    return chosen


def _texts(call: Call) -> list[str]:
    # What the guard counts: the prompt alone, or every message's content.
    return [call.prompt or ""] if call.mode == "prompt" else [m.content for m in call.messages]


def _shape(call: Call) -> str:
    if call.mode == "prompt":
        return "the prompt (prompt mode)"
    system = " (system prompt included)" if call.messages and call.messages[0].role == "system" else ""
    return f"{len(call.messages)} messages{system}"


def _read(args: argparse.Namespace) -> bytes:
    """The event bytes, undecoded: the handler's decoder reads them (BOM, UTF-8 check, its error)."""
    if args.file is not None:
        with open(args.file, "rb") as f:
            return f.read()
    if args.text == ["-"]:
        return sys.stdin.buffer.read()
    return " ".join(args.text).encode("utf-8", "surrogatepass")
