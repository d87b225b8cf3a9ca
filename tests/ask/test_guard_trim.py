"""History trimming drops only as many of the oldest turns as it must: it stops as soon as the conversation fits."""

from __future__ import annotations

import pytest

from handler.ask import guard
from handler.ask.models import ModelInfo
from handler.ask.plan import Call
from handler.errors import InvalidInput
from handler.events.question import Message
from handler.values import replace

SYSTEM = Message("system", "be brief")
OLD_TURNS = 5


def conversation() -> tuple[Message, ...]:
    """A system message, five old question/answer turns (past the byte bound) and a new question."""
    messages = [SYSTEM]
    for i in range(OLD_TURNS):
        messages += [Message("user", f"question {i}" + " word" * 8), Message("assistant", f"answer {i}" + " word" * 8)]
    messages.append(Message("user", "last question"))
    return tuple(messages)


def fits(call: Call, info: ModelInfo) -> bool:
    """The guard's own judgement, without trimming."""
    try:
        guard.check(call, info)
    except InvalidInput:
        return False
    return True


def test_trimming_stops_as_soon_as_the_conversation_fits():
    """For every window that needs trimming, the kept turns fit and one more old turn would not."""
    call = Call(mode="messages", model="tiny", messages=conversation())
    dropped_counts = set()
    for window in range(20, 400):
        info = ModelInfo(window, 0, 0)
        if fits(call, info):
            break  # from here on nothing needs trimming
        try:
            kept = guard.check(call, info, trim=True).call.messages
        except InvalidInput:
            continue  # the newest turn alone does not fit: nothing to trim to
        dropped = (len(call.messages) - len(kept)) // 2
        assert kept == (SYSTEM, *call.messages[1 + 2 * dropped :]), window  # the oldest turns went, in order
        assert fits(replace(call, messages=kept), info), window
        one_more = (SYSTEM, *call.messages[1 + 2 * (dropped - 1) :])
        assert not fits(replace(call, messages=one_more), info), f"window {window}: dropped {dropped}, one fewer fits"
        dropped_counts.add(dropped)
    # Every amount of trimming was reached, not only "all old turns" or "one".
    assert dropped_counts == set(range(1, OLD_TURNS + 1)), dropped_counts


@pytest.mark.parametrize("keep", range(OLD_TURNS))
def test_a_window_that_holds_some_old_turns_keeps_them(keep):
    """Sized to hold exactly `keep` old turns besides the newest, the window gets those turns, not fewer."""
    call = Call(mode="messages", model="tiny", messages=conversation())
    wanted = (SYSTEM, *call.messages[len(call.messages) - 1 - 2 * keep :])
    window = next(w for w in range(20, 400) if fits(replace(call, messages=wanted), ModelInfo(w, 0, 0)))
    assert guard.check(call, ModelInfo(window, 0, 0), trim=True).call.messages == wanted
