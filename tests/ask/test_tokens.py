"""The context guard, history trimming, the model table and the cost of each call."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from handler.app import handle
from handler.ask import guard, tokens
from handler.ask.models import DEFAULT_MODELS, ModelInfo, PriceTier, parse_table
from handler.ask.plan import Call
from handler.errors import InvalidConfig, InvalidInput
from handler.events.question import Message
from handler.values import replace
from tests.conftest import ROOT, response

pytestmark = pytest.mark.spawns_but_fast  # one short interpreter: a fresh sys.modules

TINY = ModelInfo(context_window=40, input_price=0.001, output_price=0.002)


def prompt_call(text: str, **parameters) -> Call:
    return Call(mode="prompt", model="tiny", prompt=text, parameters=parameters)


def test_the_reference_table():
    """Context windows and prices are the reference's, untiered."""
    reference = {
        "qwen-max": (32_768, 0.02, 0.06),
        "qwen-plus": (131_072, 0.0008, 0.002),
        "qwen-turbo": (131_072, 0.0003, 0.0006),
        "qwen-long": (10_000_000, 0.0005, 0.002),
    }
    for name, figures in reference.items():
        info = DEFAULT_MODELS[name]
        assert (info.context_window, info.input_price, info.output_price, info.tiers) == (*figures, ())


def test_output_limits_are_the_documented_ones():
    """max_output is set only where Alibaba's pages give it: qwen-max 8,192, qwen-turbo 16,384, qwen-long 32,768."""
    limits = {name: DEFAULT_MODELS[name].max_output for name in ("qwen-max", "qwen-plus", "qwen-turbo", "qwen-long")}
    assert limits == {"qwen-max": 8_192, "qwen-plus": None, "qwen-turbo": 16_384, "qwen-long": 32_768}


@pytest.mark.parametrize(
    "name",
    [
        "qwen-flash",
        "qwen3-max",
        "qwq-plus",
        "qwen3-32b",
        "qwen3.7-plus",
        "qwen3.8-flash",
        "qwen3.8-max",
        "qwen3-vl-plus",
        "qwen3-vl-flash",
    ],
)
def test_rows_without_an_official_source_guess_nothing(name):
    """A model whose figures no official page gave is in the table with every figure unknown (its API
    and thinking are said: they decide the endpoint, not a limit or a price)."""
    info = DEFAULT_MODELS[name]
    assert replace(info, api=None, thinking=None) == ModelInfo(None, None, None)


def test_cost_matches_hand_computed_figures():
    """15 in / 212 out on qwen-turbo is 0.0045 + 0.1272 thousandths of a yuan; qwen-max 1000/1000 is 0.08."""
    assert DEFAULT_MODELS["qwen-turbo"].cost(15, 212) == pytest.approx(0.0001317)
    assert DEFAULT_MODELS["qwen-max"].cost(1000, 1000) == pytest.approx(0.08)
    assert DEFAULT_MODELS["qwen-long"].cost(2_000_000, 500) == pytest.approx(1.001)


def test_the_table_can_be_overridden_and_extended():
    """QWEN_MODEL_TABLE changes fields of known models and adds complete new ones."""
    table = parse_table(
        '{"qwen-max": {"input_price": 0.0024}, "qwen3-x": {"context_window": 1000, '
        '"input_price": 0.1, "output_price": 0.2}}'
    )
    assert table["qwen-max"] == ModelInfo(32_768, 0.0024, 0.06, max_output=8_192, api="text", max_input=30_720)
    assert table["qwen3-x"] == ModelInfo(1000, 0.1, 0.2)


@pytest.mark.parametrize(
    "value",
    [
        "{",
        "[]",
        '{"m": 1}',
        '{"qwen-max": {"price": 1}}',
        '{"qwen-max": {"context_window": 0.5}}',
        '{"qwen-max": {"input_price": -1}}',
        '{"new": {"context_window": 10}}',
    ],
)
def test_a_bad_table_is_invalid_config(value):
    """A malformed QWEN_MODEL_TABLE names the variable."""
    with pytest.raises(InvalidConfig) as caught:
        parse_table(value)
    assert caught.value.message.startswith("QWEN_MODEL_TABLE")


def test_the_byte_bound_decides_short_inputs_without_the_tokenizer(mocker):
    """When the UTF-8 length fits, the input fits: no exact count is made."""
    count = mocker.spy(tokens, "count")
    text = "x" * (40 - tokens.template_overhead(1))  # exactly the budget in bytes
    assert guard.check(prompt_call(text), TINY) == guard.Fit(prompt_call(text))
    assert count.call_count == 0


def test_at_and_around_the_limit_the_exact_count_decides():
    """Past the byte bound the tokenizer counts: one token under, at, and over the limit."""
    overhead = tokens.template_overhead(1)
    word = " hello"  # one token each; six bytes, so the byte bound cannot decide
    assert tokens.count(word * 10) == 10
    for words, fits in [(40 - overhead - 1, True), (40 - overhead, True), (40 - overhead + 1, False)]:
        call = prompt_call(word * words)
        if fits:
            assert guard.check(call, TINY).counted_tokens == words + overhead
        else:
            with pytest.raises(InvalidInput) as caught:
                guard.check(call, TINY)
            assert caught.value.code == "InputTooLong" and caught.value.status_code == 400
            assert f"the input is {words + overhead} tokens" in caught.value.message
            assert "takes 40 tokens" in caught.value.message


def test_max_tokens_is_kept_for_the_answer():
    """An input that fits alone but not with max_tokens reserved is refused, and says why."""
    call = prompt_call("hello " * 20, max_tokens=30)
    with pytest.raises(InvalidInput) as caught:
        guard.check(call, TINY)
    assert (
        "30 of them kept for the answer" in caught.value.message and "at most 10 input tokens" in caught.value.message
    )


def test_max_tokens_beyond_the_window_is_invalid():
    """max_tokens at or past the context window cannot leave room for any input."""
    with pytest.raises(InvalidInput) as caught:
        guard.check(prompt_call("hi", max_tokens=40), TINY)
    assert caught.value.code == "InvalidParameter"


def test_unknown_models_are_not_guarded(mocker):
    """No table entry: no guard at all."""
    count = mocker.spy(tokens, "count")
    call = prompt_call("hello " * 10_000)
    assert guard.check(call, None) == guard.Fit(call)
    assert count.call_count == 0


def conversation(turns: int) -> tuple[Message, ...]:
    messages = [Message("system", "be brief")]
    for i in range(turns):
        messages += [
            Message("user", f"question {i} " + "word " * 5),
            Message("assistant", f"answer {i} " + "word " * 5),
        ]
    messages.append(Message("user", "last question"))
    return tuple(messages)


def test_trimming_keeps_the_system_message_and_the_newest_turns():
    """Opt-in trimming drops the oldest turns until the conversation fits, and counts them."""
    call = Call(mode="messages", model="tiny", messages=conversation(4))
    fit = guard.check(call, ModelInfo(80, 0, 0), trim=True)
    kept = fit.call.messages
    assert kept[0] == Message("system", "be brief") and kept[-1] == Message("user", "last question")
    assert fit.trimmed_turns >= 1
    assert kept[1:] == call.messages[1 + 2 * fit.trimmed_turns :]
    assert fit.counted_tokens <= 80


def test_without_trimming_a_long_conversation_is_refused():
    """Trimming is off by default: the guard's error applies."""
    call = Call(mode="messages", model="tiny", messages=conversation(4))
    with pytest.raises(InvalidInput, match="shorten the question or the conversation"):
        guard.check(call, ModelInfo(80, 0, 0))


def test_trimming_cannot_save_a_last_turn_that_is_too_long():
    """When the newest turn alone does not fit, the error stands even with trimming on."""
    messages = (Message("system", "s"), Message("user", "hello " * 100))
    with pytest.raises(InvalidInput) as caught:
        guard.check(Call(mode="messages", model="tiny", messages=messages), TINY, trim=True)
    assert caught.value.code == "InputTooLong"


def test_too_long_is_refused_before_any_call(runtime, context, transport, env):
    """The handler returns 400 InputTooLong with the numbers and never calls DashScope."""
    env["QWEN_MODEL_TABLE"] = '{"qwen-turbo": {"context_window": 50}}'
    result = json.loads(handle(("hello " * 60).encode(), context, runtime))
    assert result["status_code"] == 400 and result["code"] == "InputTooLong"
    assert "takes 50 tokens" in result["message"]
    transport.assert_not_called()


def test_trimmed_turns_are_logged(runtime, context, transport, env, logs):
    """With QWEN_TRIM_HISTORY the call carries the newest turns and the log says how many were dropped."""
    env.update(QWEN_TRIM_HISTORY="true", QWEN_MODEL_TABLE='{"qwen-turbo": {"context_window": 80}}')
    env["QWEN_EVENT_SYSTEM_PROMPT"] = "true"  # the conversation brings its own system message
    event = {"messages": [m.to_dict() for m in conversation(4)]}
    handle(json.dumps(event).encode(), context, runtime)
    sent = transport.call_args.kwargs["messages"]
    line = logs.events("question")[0]
    assert line["trimmed_turns"] >= 1 and sent[-1]["content"] == "last question" and sent[0]["role"] == "system"
    assert len(sent) == 2 + 2 * (4 - line["trimmed_turns"])


def test_every_log_line_carries_the_cost(runtime, context, transport, logs):
    """The cost in CNY comes from DashScope's usage and the table."""
    transport.return_value = response(usage={"input_tokens": 15, "output_tokens": 212, "total_tokens": 227})
    handle(b"hi", context, runtime)
    line = logs.events("question")[0]
    assert line["cost_cny"] == pytest.approx(0.0001317)
    assert "model_known" not in line


def test_an_unknown_model_is_logged_as_such(runtime, context, transport, env, logs):
    """A model outside the table is answered without a guard or a cost, and the line says so."""
    env.update(QWEN_MODEL="qwen-custom")
    handle(("hello " * 100).encode(), context, runtime)
    line = logs.events("question")[0]
    assert line["model_known"] is False and "cost_cny" not in line
    assert transport.call_count == 1


def test_a_short_question_never_loads_the_tokenizer():
    """In a fresh process, answering an ordinary question leaves tiktoken unimported."""
    script = (
        "import json, sys, types\n"
        "from handler.app import Runtime, handle\n"
        "from handler.ask import tokens\n"
        "from tests.conftest import response\n"
        "rt = Runtime(transport=lambda **kw: response(), env={'DASHSCOPE_API_KEY': 'sk-test-12345678'})\n"
        "out = json.loads(handle('如何做西红柿炖牛腩?'.encode(), types.SimpleNamespace(request_id='r'), rt))\n"
        "print(json.dumps([out['status_code'], tokens.loaded(), 'tiktoken' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [200, False, False]


TIERED = ModelInfo(1_000_000, 0.001, 0.002, tiers=(PriceTier(131_072, 0.004, 0.008), PriceTier(262_144, 0.01, 0.02)))
TIERED_TABLE = (
    '{"qwen-flash": {"context_window": 1000000, "input_price": 0.001, "output_price": 0.002, "tiers": ['
    '{"above": 131072, "input_price": 0.004, "output_price": 0.008},'
    ' {"above": 262144, "input_price": 0.01, "output_price": 0.02}]}}'
)


def test_cost_uses_the_tier_of_the_calls_input():
    """A tiered model is priced by the input's length: first tier up to and at the edge, then the next."""
    assert TIERED.cost(1000, 1000) == pytest.approx(0.001 + 0.002)
    assert TIERED.cost(131_072, 1000) == pytest.approx(131.072 * 0.001 + 0.002)  # the edge is still tier 1
    assert TIERED.cost(200_000, 1000) == pytest.approx(200 * 0.004 + 0.008)
    assert TIERED.cost(300_000, 0) == pytest.approx(300 * 0.01)


def test_a_tiered_cost_reaches_the_log_line(runtime, context, transport, env, logs):
    """The log line's cost_cny is the tier of the input DashScope reported, tiers set by QWEN_MODEL_TABLE."""
    env.update(QWEN_MODEL="qwen-flash", QWEN_MODEL_TABLE=TIERED_TABLE)
    transport.return_value = response(usage={"input_tokens": 200_000, "output_tokens": 1000, "total_tokens": 201_000})
    handle(b"hi", context, runtime)
    assert logs.events("question")[0]["cost_cny"] == pytest.approx(200 * 0.004 + 0.008)


def test_the_table_takes_max_output_and_tiers():
    """QWEN_MODEL_TABLE accepts the same schema as the defaults: max_output and price tiers."""
    table = parse_table(
        '{"qwq-plus": {"context_window": 131072, "max_output": 8192, "input_price": 0.0016, "output_price": 0.004,'
        ' "tiers": [{"above": 32768, "input_price": 0.002, "output_price": 0.006}]}}'
    )
    qwq = table["qwq-plus"]
    assert qwq.max_output == 8192 and qwq.tiers == (PriceTier(32768, 0.002, 0.006),)
    assert qwq.cost(40_000, 0) == pytest.approx(40 * 0.002)


@pytest.mark.parametrize(
    "value",
    [
        '{"qwen-max": {"max_output": 0}}',
        '{"qwen-max": {"tiers": {}}}',
        '{"qwen-max": {"tiers": [{"above": 10, "input_price": 1}]}}',
        '{"qwen-max": {"tiers": [{"above": 10, "input_price": 1, "output_price": -1}]}}',
        '{"qwen-max": {"tiers": [{"above": 20, "input_price": 1, "output_price": 1},'
        ' {"above": 10, "input_price": 1, "output_price": 1}]}}',
    ],
)
def test_bad_tiers_and_limits_are_refused(value):
    """A malformed max_output or tier list is an InvalidConfig naming QWEN_MODEL_TABLE."""
    with pytest.raises(InvalidConfig) as caught:
        parse_table(value)
    assert caught.value.variable == "QWEN_MODEL_TABLE"


def test_max_tokens_above_the_models_output_limit_is_refused(runtime, context, transport, env):
    """The guard refuses max_tokens beyond qwen-turbo's documented 16,384, before any call; 16,384 is sent."""
    env.update(QWEN_MODEL="qwen-turbo")
    result = json.loads(handle(b'{"prompt": "hi", "parameters": {"max_tokens": 16385}}', context, runtime))
    assert result["status_code"] == 400 and result["code"] == "InvalidParameter"
    assert "16384" in result["message"] and transport.call_count == 0
    json.loads(handle(b'{"prompt": "hi", "parameters": {"max_tokens": 16384}}', context, runtime))
    assert transport.call_count == 1


@pytest.mark.parametrize("model", ["qwq-plus", "qwen-flash", "qwen3-max", "qwen3-32b"])
def test_a_model_without_known_prices_logs_no_cost(model, runtime, context, transport, env, logs):
    """A model in the table with its figures unknown is answered, no cost guessed, not 'unknown model'."""
    env.update(QWEN_MODEL=model)
    handle(b"hi", context, runtime)
    line = logs.events("question")[0]
    assert "cost_cny" not in line and "model_known" not in line and transport.call_count == 1
