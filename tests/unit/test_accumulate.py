"""Folding chunks into a result: text, counts, timing, tool calls, metadata, the end."""

from __future__ import annotations

import msgspec

from gloo_stream.accumulate import StreamAccumulator
from gloo_stream.wire import decode_chunk


def chunk(content: str | None = None, finish: str | None = None, **extra: object) -> bytes:
    delta: dict[str, object] = {}
    if content is not None:
        delta["content"] = content
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return msgspec.json.encode(body)


def test_text_count_and_timing_from_the_given_clock() -> None:
    acc = StreamAccumulator(started_at=10.0)
    acc.add(decode_chunk(chunk(None, role="assistant")), 10.1)  # role-only chunk
    assert acc.add(decode_chunk(chunk("Hel")), 10.25) == "Hel"
    assert acc.add(decode_chunk(chunk("lo")), 10.5) == "lo"
    assert acc.add(decode_chunk(chunk("")), 10.6) == ""
    assert not acc.finished
    acc.add(decode_chunk(chunk(None, "stop")), 10.75)
    assert acc.finished
    result = acc.result(11.0)
    assert result.text == "Hello"
    assert result.token_count == 2  # content-bearing chunks only, as the tutorial counts
    assert result.finish_reason == "stop"
    assert result.ttft_ms == 250.0
    assert result.duration_ms == 1000.0
    assert result.tokens_per_second == 1 / 0.75
    assert result.complete
    assert not result.interrupted


def test_first_finish_reason_wins() -> None:
    acc = StreamAccumulator(started_at=0)
    acc.add(decode_chunk(chunk("a", "length")), 1)
    acc.add(decode_chunk(chunk(None, "stop")), 2)
    assert acc.result(2).finish_reason == "length"


def test_done_ends_without_finish_reason() -> None:
    acc = StreamAccumulator(started_at=0)
    acc.add(decode_chunk(chunk("a")), 1)
    acc.add_done()
    assert acc.finished
    assert acc.result(2).finish_reason is None


def test_usage_comes_from_any_chunk_even_after_the_finish() -> None:
    acc = StreamAccumulator(started_at=0)
    acc.add(decode_chunk(chunk("a", "stop")), 1)
    acc.add(decode_chunk(b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}'), 1)
    usage = acc.result(1).usage
    assert usage is not None
    assert usage.completion_tokens == 1


def test_metadata_first_value_wins_from_any_chunk() -> None:
    acc = StreamAccumulator(started_at=0)
    acc.add(decode_chunk(chunk("a", id="gen-1", model="m1", provider="Gloo AI")), 1)
    acc.add(
        decode_chunk(chunk("b", model="m2", routing_mechanism="auto_routing", routing_tier=1)), 2
    )
    result = acc.result(2)
    assert (result.id, result.model, result.provider) == ("gen-1", "m1", "Gloo AI")
    assert result.routing == {"routing_mechanism": "auto_routing", "routing_tier": 1}


def test_tool_calls_assembled_per_index() -> None:
    acc = StreamAccumulator(started_at=0)
    deltas = [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ],
        [
            {
                "index": 1,
                "id": "call_b",
                "type": "function",
                "function": {"name": "g", "arguments": "{"},
            }
        ],
        [{"index": 0, "function": {"arguments": '{"x":'}}],
        [{"index": 1, "function": {"arguments": "}"}}],
        [{"index": 0, "function": {"arguments": " 1}"}}],
    ]
    for i, tool_calls in enumerate(deltas):
        body = {"choices": [{"delta": {"tool_calls": tool_calls}}]}
        acc.add(decode_chunk(msgspec.json.encode(body)), i)
    acc.add(decode_chunk(chunk(None, "tool_calls")), 9)
    result = acc.result(9)
    assert [(c.index, c.id, c.name, c.arguments) for c in result.tool_calls] == [
        (0, "call_a", "f", '{"x": 1}'),
        (1, "call_b", "g", "{}"),
    ]
    assert result.tool_calls[0].parsed_arguments() == {"x": 1}
    assert result.finish_reason == "tool_calls"
    assert result.token_count == 0


def test_partial_result_is_flagged_and_serialisable() -> None:
    acc = StreamAccumulator(started_at=0, attempts=3)
    acc.add(decode_chunk(chunk("par")), 0.5)
    result = acc.result(1, interrupted=True, error="disconnected")
    data = result.to_dict()
    assert data["text"] == "par"
    assert data["interrupted"] is True
    assert data["complete"] is False
    assert data["attempts"] == 3
    assert data["error"] == "disconnected"
    assert msgspec.json.decode(msgspec.json.encode(data))["text"] == "par"


def test_keep_text_off_counts_tokens_and_keeps_no_text() -> None:
    acc = StreamAccumulator(started_at=0.0, keep_text=False)
    assert acc.add(decode_chunk(chunk("Hel")), 0.5) == "Hel"  # still handed back to the caller
    acc.add(decode_chunk(chunk("lo", "stop")), 0.75)
    result = acc.result(1.0)
    assert (result.text, result.token_count, result.finish_reason) == ("", 2, "stop")
    assert result.ttft_ms == 500.0
