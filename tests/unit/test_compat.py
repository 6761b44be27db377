"""The tutorial's pure functions keep the tutorial's semantics."""

from __future__ import annotations

from typing import Any

import pytest

from gloo_stream.compat import extract_token_content, handle_stream_error, parse_sse_line
from gloo_stream.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from gloo_stream.wire import decode_chunk


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("\n", None),
        (": comment", None),
        ("event: message", None),
        ("data: [DONE]", "[DONE]"),
        ("data:[DONE]", "[DONE]"),
        ("data: {not json", None),
        ("data: [1, 2]", None),
        ('data: {"a": 1}', {"a": 1}),
        ('data:{"a": 1}', {"a": 1}),
        (b'data: {"a": "\xc3\xa9"}\r\n', {"a": "\u00e9"}),
    ],
)
def test_parse_sse_line(line: str | bytes, expected: Any) -> None:
    assert parse_sse_line(line) == expected


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        ({"choices": [{"delta": {"content": "Hi"}}]}, "Hi"),
        ({"choices": [{"delta": {"content": None}}]}, ""),
        ({"choices": [{"delta": {}}]}, ""),
        ({"choices": [{}]}, ""),
        ({"choices": []}, ""),
        ({"choices": None}, ""),
        ({}, ""),
        (None, ""),
        ({"choices": [{"delta": {"content": 5}}]}, ""),
        (decode_chunk('{"choices":[{"delta":{"content":"typed"}}]}'), "typed"),
    ],
)
def test_extract_token_content_is_always_a_string(chunk: Any, expected: str) -> None:
    assert extract_token_content(chunk) == expected


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (401, AuthenticationError, "Authentication failed (401): Invalid or expired token"),
        (403, PermissionDeniedError, "Authorization failed (403): Insufficient permissions"),
        (429, RateLimitError, "Rate limit exceeded (429): Too many requests"),
        (500, ServerError, "API error (500): " + "b" * 200),
    ],
)
def test_handle_stream_error(status: int, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind) as caught:
        handle_stream_error(status, "b" * 300)
    assert str(caught.value) == message


def test_handle_stream_error_accepts_200() -> None:
    assert handle_stream_error(200) is None
