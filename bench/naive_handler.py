# The baseline: the reference tutorial ported to an FC event function the obvious way, as a user
# would write it after reading it. It runs in its own virtualenv with only `pip install dashscope`
# (the newest release). Deliberately not improved: it is what the project is measured against.
import random

import dashscope
from dashscope import Generation


def handler(event, context):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": event.decode("utf-8")},
    ]
    response = Generation.call(
        Generation.Models.qwen_turbo,
        messages=messages,
        seed=random.randint(1, 10000),
        result_format="message",
    )
    return str(response)


__all__ = ["dashscope", "handler"]
