"""GenAI semantic-convention attributes, as plain data, for requests and answers."""

from __future__ import annotations

import msgspec

from gloo_stream import genai
from gloo_stream.accumulate import StreamResult, ToolCall
from gloo_stream.wire import Usage


def test_request_attributes_name_the_operation_provider_and_model() -> None:
    body = {"messages": [], "model": "gloo-openai-gpt-5-mini", "max_tokens": 64, "stream": True}
    assert genai.request_attributes(body) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gloo",
        "gen_ai.request.model": "gloo-openai-gpt-5-mini",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.stream": True,
    }
    assert genai.span_name(body) == "chat gloo-openai-gpt-5-mini"


def test_routed_requests_name_the_auto_model() -> None:
    body = {"messages": [], "model_family": "anthropic", "temperature": 0.5}
    attributes = genai.request_attributes(body)
    assert attributes["gen_ai.request.model"] == "auto"
    assert attributes["gloo.request.model_family"] == "anthropic"
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert genai.span_name({"auto_routing": True}) == "chat auto"


def test_result_attributes_report_what_the_upstream_said() -> None:
    result = StreamResult(
        text="Hi",
        finish_reason="stop",
        ttft_ms=250.0,
        usage=Usage(9, 2, 11),
        model="google/gemini-2.5-flash",
        id="gen-1",
        provider="Gloo AI",
    )
    assert genai.result_attributes(result, since=0.05) == {
        "gen_ai.response.model": "google/gemini-2.5-flash",
        "gen_ai.response.id": "gen-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.response.time_to_first_chunk": 0.2,
        "gloo.response.provider": "Gloo AI",
    }


def test_a_partial_answer_without_usage_reports_no_tokens() -> None:
    attributes = genai.result_attributes(StreamResult(text="cut", interrupted=True))
    assert not any(name.startswith("gen_ai.usage") for name in attributes)
    assert "gen_ai.response.finish_reasons" not in attributes


def test_content_attributes_follow_the_conventions_json() -> None:
    messages = [
        {"role": "user", "content": "What is SSE?"},
        {"role": "user", "content": [{"type": "text", "text": "briefly"}]},
    ]
    assert msgspec.json.decode(genai.input_messages(messages)) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is SSE?"}]},
        {"role": "user", "parts": [{"type": "text", "content": "briefly"}]},
    ]
    call = ToolCall(index=0, id="c1", name="f", arguments="{}")
    result = StreamResult(text="A stream.", finish_reason="stop", tool_calls=[call])
    assert msgspec.json.decode(genai.output_messages(result)) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "A stream."},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}"},
            ],
            "finish_reason": "stop",
        }
    ]
