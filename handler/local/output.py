"""How the CLI prints what the handler returned: the JSON as is, indented (--pretty), or the answer alone (--text).

--text is for people: the answer's text on stdout, one per record of a batch (a blank line between them);
the reasoning of a thinking model, a partial answer's reason and a refusal's code and message go to
stderr, so `python -m handler --text ... > answer.txt` keeps only answers in the file.
"""

from __future__ import annotations

import json
from typing import Any, TextIO


def render(returned: str, *, text: bool, pretty: bool, err: TextIO, reasoning: bool = True) -> str:
    """What to print on stdout for the handler's return value; side notes of --text go to `err` (the
    reasoning too, unless `reasoning` is False: it was shown as it streamed)."""
    if not (text or pretty):
        return returned
    try:
        value = json.loads(returned)
    except ValueError:
        return returned  # not JSON (it always is): shown as it came rather than hidden
    if pretty and not text:
        return json.dumps(value, ensure_ascii=False, indent=2)
    results = value if isinstance(value, list) else [value]
    answers: list[str] = []
    for index, result in enumerate(results):
        label = f"record {index}: " if len(results) > 1 else ""
        if not isinstance(result, dict):
            print(f"{label}not a result: {result!r}", file=err)
            continue
        answer, thought = answer_of(result)
        if thought and reasoning:
            print(f"{label}reasoning:\n{thought}", file=err)
        if result.get("code"):
            print(f"{label}{result['code']} ({result.get('status_code')}): {result.get('message')}", file=err)
        if answer is not None:
            answers.append(answer)
    return "\n\n".join(answers)


def answer_of(result: dict[str, Any]) -> tuple[str | None, str | None]:
    """(answer, reasoning) of one result: output.choices[0].message in messages mode, output.text in prompt mode."""
    output = result.get("output")
    if not isinstance(output, dict):
        return None, None
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        if isinstance(message, dict):
            return _joined(message.get("content")), _joined(message.get("reasoning_content"))
    return _joined(output.get("text")), _joined(output.get("reasoning_content"))


def _joined(content: Any) -> str | None:
    # Multimodal answers are lists of parts ({"text": ...}); text answers are strings.
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return "".join(parts) if parts else None
    return content if isinstance(content, str) else None
