"""The typed chunk model: Gloo's shape, nulls, unknown fields, malformed input."""

from __future__ import annotations

import pytest

from gloo_stream.wire import ChunkDecodeError, decode_chunk, is_done

GLOO_CHUNK = (
    '{"id":"gen-abc123","choices":[{"delta":{"content":"Hello","role":"assistant",'
    '"tool_calls":null},"finish_reason":null,"index":0}],"created":1774527271,'
    '"model":"google/gemini-2.5-flash","object":"chat.completion.chunk","provider":"Gloo AI",'
    '"usage":null}'
)


def test_gloo_chunk_reads_as_the_contract_says() -> None:
    chunk = decode_chunk(GLOO_CHUNK)
    assert chunk.choices[0].delta.content == "Hello"
    assert chunk.choices[0].delta.role == "assistant"
    assert chunk.choices[0].finish_reason is None
    assert chunk.id == "gen-abc123"
    assert chunk.model == "google/gemini-2.5-flash"
    assert chunk.provider == "Gloo AI"
    assert chunk.created == 1774527271
    assert chunk.usage is None
    assert chunk.content == "Hello"


def test_bytes_and_str_decode_alike() -> None:
    assert decode_chunk(GLOO_CHUNK.encode()).content == decode_chunk(GLOO_CHUNK).content


def test_unknown_fields_are_kept_not_fatal() -> None:
    chunk = decode_chunk(
        '{"choices":[{"delta":{"content":"x","reasoning":"r"},"index":0,"logprobs":null}],'
        '"routing_mechanism":"auto_routing","routing_tier":2,"routing_confidence":0.9,'
        '"model_family":"openai","ttft_ms":412.5,"brand_new_field":{"a":[1,2]}}'
    )
    assert chunk.content == "x"
    assert chunk.routing_mechanism == "auto_routing"
    assert chunk.routing_tier == 2
    assert chunk.routing_confidence == 0.9
    assert chunk.model_family == "openai"
    assert chunk.ttft_ms == 412.5
    assert chunk.extra == {"brand_new_field": {"a": [1, 2]}}
    assert chunk.to_dict()["brand_new_field"] == {"a": [1, 2]}


@pytest.mark.parametrize(
    "data",
    [
        '{"choices":[{"delta":null,"finish_reason":"stop"}]}',
        '{"choices":[{"finish_reason":"stop"}]}',
        '{"choices":[{"delta":{},"finish_reason":"stop"}]}',
        '{"choices":[{"delta":{"content":null},"finish_reason":"stop"}]}',
    ],
)
def test_final_chunk_with_empty_or_absent_delta(data: str) -> None:
    chunk = decode_chunk(data)
    assert chunk.choices[0].delta.content is None
    assert chunk.content == ""
    assert chunk.finish_reason == "stop"


@pytest.mark.parametrize("data", ['{"choices":null}', "{}", '{"choices":[]}'])
def test_no_choices_reads_as_empty(data: str) -> None:
    chunk = decode_chunk(data)
    assert chunk.choices == []
    assert chunk.content == ""
    assert chunk.finish_reason is None


def test_usage_and_error_object() -> None:
    chunk = decode_chunk(
        '{"choices":[{"delta":{},"finish_reason":"error"}],'
        '"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8},'
        '"error":{"code":2001,"name":"PROVIDER_TIMEOUT","message":"slow"}}'
    )
    assert chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (3, 5)
    assert chunk.error == {"code": 2001, "name": "PROVIDER_TIMEOUT", "message": "slow"}


def test_tool_call_deltas() -> None:
    chunk = decode_chunk(
        '{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function",'
        '"function":{"name":"get_weather","arguments":"{\\"ci"}}]}}]}'
    )
    call = chunk.choices[0].delta.tool_calls[0]  # type: ignore[index]
    assert (call.index, call.id, call.function.name, call.function.arguments) == (
        1,
        "call_1",
        "get_weather",
        '{"ci',
    )


@pytest.mark.parametrize(
    "data",
    [
        "",
        "not json",
        '{"choices":[{"delta":{"content":"oops',
        "[1, 2]",
        '{"choices":[{"delta":{"content":5}}]}',
        '{"choices":"many"}',
    ],
)
def test_malformed_chunks_raise_a_clear_error(data: str) -> None:
    with pytest.raises(ChunkDecodeError, match="not a chat-completion chunk"):
        decode_chunk(data)


@pytest.mark.parametrize(("data", "done"), [("[DONE]", True), (" [DONE] ", True), ("[DONE", False)])
def test_done_sentinel(data: str, done: bool) -> None:
    assert is_done(data) is done
