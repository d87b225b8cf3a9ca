"""What `--text` shows while the handler works: the answer as it streams, and a summary line at the end.

Streaming reaches the terminal through a local-only transport (`Tee`) handed to `app.handle` in the
Runtime, the seam tests already use: it passes every chunk on unchanged and writes its text as it
arrives, so the shipped handler still returns the whole result and is not changed for it. The summary
is read from the handler's own `question` log lines (model, tokens, cost, latency).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

DIM, PLAIN = "\x1b[2m", "\x1b[0m"


class Tee:
    """A transport that shows each chunk's text as it passes: the answer on `out`, the reasoning on `err`
    (dimmed on a terminal). Only the first thread that asks is shown, so a batch never interleaves."""

    def __init__(self, inner: Any, out: TextIO, err: TextIO) -> None:
        self.inner, self.out, self.err = inner, out, err
        self.shown = False  # some answer text reached `out`
        self._owner: int | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # begin/end and whatever else the handler reads of a transport
        return getattr(self.inner, name)

    def __call__(self, **arguments: Any) -> Iterable[Any]:
        chunks = self.inner(**arguments)
        with self._lock:
            self._owner = self._owner or threading.get_ident()
        return chunks if self._owner != threading.get_ident() else self._tee(chunks)

    def _tee(self, chunks: Iterable[Any]) -> Iterator[Any]:
        iterator = iter(chunks)
        try:
            for chunk in iterator:
                self._show(chunk)
                yield chunk
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # leaving early closes the HTTP response, as the handler's own read does

    def _show(self, chunk: Any) -> None:
        fields = chunk if isinstance(chunk, dict) else vars(chunk)
        if fields.get("status_code") != 200:
            return
        text, reasoning = pieces(fields.get("output"))
        if reasoning:
            dim = self.err.isatty()
            self.err.write(f"{DIM}{reasoning}{PLAIN}" if dim else reasoning)
            self.err.flush()
        if text:
            self.out.write(text)
            self.out.flush()
            self.shown = True


def pieces(output: Any) -> tuple[str, str]:
    """(text, reasoning) of one streamed chunk's output, in either mode and either API."""
    if not isinstance(output, dict):
        return "", ""
    source: Any = output
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        source = choices[0].get("message") or {}
    if not isinstance(source, dict):
        return "", ""
    key = "text" if source is output else "content"
    return _text(source.get(key)), _text(source.get("reasoning_content"))


def _text(value: Any) -> str:
    # Multimodal chunks carry lists of parts ([{"text": ...}], [] while the model thinks).
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return value if isinstance(value, str) else ""


class Questions(logging.Handler):
    """Keeps the handler's `question` log lines, for the summary line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith('{"event":"question"'):
            return
        try:
            self.lines.append(json.loads(message))
        except ValueError:
            return

    def summary(self) -> str | None:
        """`model · N in / M out tokens · C CNY · S s`, over every question of the invocation; None if none."""
        if not self.lines:
            return None
        models = ",".join(dict.fromkeys(str(line.get("model")) for line in self.lines))
        tokens_in = sum(int(line.get("input_tokens") or 0) for line in self.lines)
        tokens_out = sum(int(line.get("output_tokens") or 0) for line in self.lines)
        costs = [line["cost_cny"] for line in self.lines if isinstance(line.get("cost_cny"), int | float)]
        cost = f"{sum(costs):.6f} CNY" if costs else "cost unknown (no price in the model table)"
        seconds = max(int(line.get("latency_ms") or 0) for line in self.lines) / 1000
        return f"{models} · {tokens_in} in / {tokens_out} out tokens · {cost} · {seconds:.1f} s"


class Session:
    """One `--text` run: the summary's log lines always, the live answer when stdout is a terminal."""

    def __init__(self, stream_to: TextIO | None, err: TextIO) -> None:
        from handler.app import DEFAULT_RUNTIME

        self.questions = Questions()
        logging.getLogger("qwen").addHandler(self.questions)
        self.tee = Tee(DEFAULT_RUNTIME.transport, stream_to, err) if stream_to is not None else None

    def handle(self, event: bytes, context: Any) -> str:
        """index.handler's answer; through the Tee when the answer is shown as it streams."""
        import index

        if self.tee is None:
            return index.handler(event, context)
        from handler.app import DEFAULT_RUNTIME, handle
        from handler.values import replace

        return handle(event, context, replace(DEFAULT_RUNTIME, transport=self.tee))

    @property
    def streamed(self) -> bool:
        return self.tee is not None and self.tee.shown

    def summary(self) -> str | None:
        return self.questions.summary()
