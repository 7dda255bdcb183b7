"""chat_core.chat.context: offline estimates, oldest turns out first, tool calls kept whole."""

from chat_core.chat.context import estimate_tokens, fit_context, message_tokens


def user(text):
    return {"role": "user", "content": text}


def test_the_estimate_grows_with_text_and_needs_no_tokenizer():
    assert estimate_tokens("") == 0
    assert 2 <= estimate_tokens("Hello there, world") <= 6
    assert estimate_tokens("word " * 1000) > estimate_tokens("word " * 100) * 9


def test_a_conversation_that_fits_is_left_alone():
    history = [user("hi"), {"role": "assistant", "content": "hello"}]
    fitted = fit_context("be nice", history, budget_tokens=1000)
    assert fitted.messages == [{"role": "system", "content": "be nice"}, *history]
    assert fitted.dropped == 0


def test_the_oldest_turns_go_first_and_leave_a_summary():
    history = [user(f"question {i} " + "x " * 200) for i in range(10)] + [user("latest")]
    fitted = fit_context("sys", history, budget_tokens=800)
    assert fitted.messages[-1] == user("latest")
    assert fitted.dropped > 0 and fitted.tokens <= 800
    note = fitted.messages[1]
    assert note["role"] == "system" and "question 0" in note["content"]
    kept = [m["content"].split()[1] for m in fitted.messages[2:-1]]
    assert kept == sorted(kept, key=int) and "9" in kept  # the newest survive, in order


def test_a_tool_call_and_its_results_are_dropped_or_kept_together():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [
        user("old " * 300),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "r " * 300},
        user("new"),
    ]
    for budget in (150, 500, 5000):
        messages = fit_context("s", history, budget_tokens=budget).messages
        calls = [m for m in messages if m.get("tool_calls")]
        results = [m for m in messages if m["role"] == "tool"]
        assert len(calls) == len(results)


def test_a_history_broken_by_a_crash_is_repaired_for_the_api():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [
        {"role": "tool", "tool_call_id": "orphan", "content": "no call for this"},
        user("hi"),
        {"role": "assistant", "content": None, "tool_calls": [call]},  # crashed before the result
        user("again"),
    ]
    messages = fit_context("s", history, budget_tokens=10_000).messages
    assert not any(m.get("tool_call_id") == "orphan" for m in messages)
    answer = messages[
        messages.index({"role": "assistant", "content": None, "tool_calls": [call]}) + 1
    ]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "c1"


def test_one_huge_message_is_shortened_from_the_middle():
    huge = "start " + "filler " * 5000 + " end"
    fitted = fit_context("s", [user(huge)], budget_tokens=500)
    content = fitted.messages[-1]["content"]
    assert content.startswith("start") and content.endswith("end") and "left out" in content
    assert message_tokens(fitted.messages[-1]) < 600
