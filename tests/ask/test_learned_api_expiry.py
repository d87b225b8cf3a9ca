"""A learned model API expires: a model DashScope moves to the other API is found again on a warm instance."""

from __future__ import annotations

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.models import MULTIMODAL, TEXT
from tests.conftest import response


def test_a_learned_api_is_looked_up_again_once_it_expires(transport, env, context, clock, store_factory, logs):
    env.update(QWEN_MODEL="qwen-unlisted", QWEN_ALLOWED_MODELS="qwen-unlisted")
    url_error = response(400, code="InvalidParameter", message="url error, please check url!")
    transport.side_effect = lambda **kwargs: url_error if kwargs["api"] == TEXT else response()
    runtime = Runtime(transport=transport, store=store_factory, env=env, clock=clock, apis=ModelApis(clock=clock))

    def apis_asked() -> list[str]:
        asked = [call.kwargs["api"] for call in transport.call_args_list]
        transport.reset_mock()
        return asked

    handle(b"hi", context, runtime)
    assert apis_asked() == [TEXT, MULTIMODAL]  # learned
    clock.now += ModelApis.TTL - 1
    handle(b"hi", context, runtime)
    assert apis_asked() == [MULTIMODAL]  # still known
    clock.now += 2
    handle(b"hi", context, runtime)
    assert apis_asked() == [TEXT, MULTIMODAL]  # expired: asked where the table's default says, then learned again
    assert len(logs.events("model_api_learned")) == 1  # the same API again is not news
