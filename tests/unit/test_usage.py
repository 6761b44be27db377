"""Usage you can bill: the upstream's count kept as given, the missing parts estimated."""

from __future__ import annotations

import pytest

from gloo_stream.accumulate import StreamResult, ToolCall
from gloo_stream.usage import (
    BilledUsage,
    TokenBudgetRule,
    billed_usage,
    estimate_prompt_tokens,
    estimate_text_tokens,
    parse_token_budget,
)
from gloo_stream.wire import Usage

MESSAGES = [{"role": "user", "content": "x" * 40}]  # 10 tokens by the estimate


def test_the_upstream_count_is_taken_as_it_is() -> None:
    result = StreamResult(text="a" * 400, token_count=3, usage=Usage(12, 7, 19))
    assert billed_usage(result, MESSAGES) == BilledUsage(12, 7, estimated=False)


def test_an_explicit_zero_from_upstream_is_never_overwritten() -> None:
    result = StreamResult(text="hello there", token_count=2, usage=Usage(0, 0, 0))
    usage = billed_usage(result, MESSAGES)
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (0, 0, False)


def test_no_usage_is_counted_from_what_arrived_and_marked_estimated() -> None:
    # A caller that left early: 3 chunks of 20 characters arrived, no usage chunk.
    result = StreamResult(text="y" * 60, token_count=3, interrupted=True)
    usage = billed_usage(result, MESSAGES)
    assert usage == BilledUsage(10, 15, estimated=True)
    assert usage.total_tokens == 25


def test_at_least_one_token_per_content_chunk() -> None:
    result = StreamResult(text="abcdef", token_count=6)
    assert billed_usage(result, MESSAGES).output_tokens == 6


def test_only_the_missing_part_is_estimated() -> None:
    result = StreamResult(text="z" * 8, token_count=2, usage=Usage(prompt_tokens=0))
    usage = billed_usage(result, MESSAGES)
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (0, 2, True)


def test_a_total_with_one_part_gives_the_other() -> None:
    result = StreamResult(usage=Usage(completion_tokens=5, total_tokens=17))
    assert billed_usage(result, MESSAGES) == BilledUsage(12, 5, estimated=False)


def test_tool_calls_count_toward_the_estimate() -> None:
    call = ToolCall(index=0, name="lookup", arguments='{"q": "' + "w" * 30 + '"}')
    result = StreamResult(token_count=1, tool_calls=[call])
    assert billed_usage(result, MESSAGES).output_tokens == estimate_text_tokens(
        call.name + call.arguments
    )


def test_prompt_estimate_reads_text_parts_and_tool_calls() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "efgh"}, {"type": "image"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "ab", "arguments": "cdef"}}],
        },
    ]
    assert estimate_prompt_tokens(messages) == 4  # 4 + 4 + 6 characters: 14 / 4, rounded up
    assert estimate_prompt_tokens([]) == 0


@pytest.mark.parametrize(
    ("text", "tokens", "seconds", "name"),
    [
        ("200000/day", 200_000, 86_400, "day"),
        (" 5_000 / hours ", 5_000, 3_600, "hour"),
        ("10/Second", 10, 1, "second"),
        ("1/week", 1, 604_800, "week"),
    ],
)
def test_budget_notation(text: str, tokens: int, seconds: int, name: str) -> None:
    assert parse_token_budget(text) == TokenBudgetRule(tokens, seconds, name)


@pytest.mark.parametrize("text", ["", "off", "0", "none", "0/day", " OFF "])
def test_budget_off(text: str) -> None:
    assert parse_token_budget(text) is None


@pytest.mark.parametrize("text", ["200000", "lots/day", "100/fortnight", "-5/day", "1/day/2"])
def test_budget_refused_with_the_shape_it_wants(text: str) -> None:
    with pytest.raises(ValueError, match=r"must look like '200000/day'"):
        parse_token_budget(text)


def test_windows_are_aligned_to_the_epoch() -> None:
    rule = TokenBudgetRule(100, 86_400, "day")
    index, left = rule.window(86_400 * 3 + 3_600)
    assert (index, left) == (3, 86_400 - 3_600)
    assert str(rule) == "100/day"
