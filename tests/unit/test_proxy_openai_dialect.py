"""routes/openai_dialect.py: OpenAI's request names in, a chat.completion out."""

from __future__ import annotations

import msgspec

from gloo_stream.accumulate import StreamResult
from gloo_stream.proxy.routes.openai_dialect import completion_body, translate_request
from kit import clean_proxy_settings

MESSAGES = [{"role": "user", "content": "hi"}]


def test_translate_request_maps_openai_names() -> None:
    body, wants_stream = translate_request(
        {
            "model": "auto",
            "messages": MESSAGES,
            "max_completion_tokens": 9,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u1",
        },
        clean_proxy_settings(),
    )
    assert wants_stream is True
    assert body == {
        "messages": MESSAGES,
        "auto_routing": True,
        "max_tokens": 9,
        "stream": True,
        # Kept, so the endpoint knows the caller asked for the usage chunk.
        "stream_options": {"include_usage": True},
    }
    body, wants_stream = translate_request(
        {"model": "m", "messages": MESSAGES}, clean_proxy_settings()
    )
    assert (body["model"], wants_stream) == ("m", False)


def test_completion_body_is_an_openai_completion() -> None:
    result = StreamResult(text="Hello", finish_reason="stop", id="gen-1", model="m")
    completion = msgspec.json.decode(completion_body(result, created=5))
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert completion["created"] == 5
