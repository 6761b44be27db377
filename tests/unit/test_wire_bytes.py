"""Chunks decoded from the bytes off the wire equal those decoded from the same data as text.

``SSEDecoder.feed_data`` hands a token stream's event data over undecoded, and the client
decodes those bytes straight into chunks; where the bytes are not valid UTF-8 the text path
(invalid sequences replaced with U+FFFD) must give the same answer, or the bytes path an error
the caller falls back on.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gloo_stream.wire import ChunkDecodeError, decode_chunk

GLOO_CHUNK = (
    b'{"id":"gen-abc123","choices":[{"delta":{"content":"Hello","role":"assistant",'
    b'"tool_calls":null},"finish_reason":null,"index":0}],"created":1774527271,'
    b'"model":"google/gemini-2.5-flash","object":"chat.completion.chunk","provider":"Gloo AI",'
    b'"usage":null,"brand_new":{"note":"caf\xc3\xa9"}}'
)
ODD_BYTES = [b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\\u00e9"]


def typed_fields(chunk: object) -> object:
    """Everything a chunk holds except its raw data, as builtins."""
    built = msgspec.to_builtins(chunk)
    assert isinstance(built, dict)
    built.pop("\u2063gloo-stream-raw", None)
    return built


@settings(max_examples=400, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(GLOO_CHUNK)),
    odd=st.sampled_from(ODD_BYTES),
)
def test_bytes_decode_like_text_or_refuse(position: int, odd: bytes) -> None:
    data = GLOO_CHUNK[:position] + odd + GLOO_CHUNK[position:]
    text = data.decode("utf-8", "replace")
    try:
        from_bytes = decode_chunk(data)
    except ChunkDecodeError:
        return  # the caller decodes the text instead: same answer as before by construction
    from_text = decode_chunk(text)
    assert typed_fields(from_bytes) == typed_fields(from_text)
    assert from_bytes.extra == from_text.extra
    assert from_bytes.to_dict() == from_text.to_dict()


def test_invalid_utf8_in_a_kept_string_is_an_error() -> None:
    with pytest.raises(ChunkDecodeError):
        decode_chunk(GLOO_CHUNK.replace(b"Hello", b"He\xffllo"))


def test_invalid_utf8_in_an_unknown_field_reads_as_replacement_characters() -> None:
    chunk = decode_chunk(GLOO_CHUNK.replace(b"caf\xc3\xa9", b"caf\xff"))
    assert chunk.content == "Hello"
    assert chunk.extra == {"brand_new": {"note": "caf\ufffd"}}
    assert chunk.to_dict()["brand_new"] == {"note": "caf\ufffd"}
