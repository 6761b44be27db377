"""One attempt's bytes to chunks and an outcome: the decisions both clients share."""

from __future__ import annotations

import msgspec
import pytest

from gloo_stream.errors import (
    ContentFilterError,
    MalformedChunkError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.protocol import CompletionProtocol


def event(content: str | None = None, finish: str | None = None, **extra: object) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


def test_whole_stream_without_done() -> None:
    proto = CompletionProtocol(started_at=0.0)
    chunks = proto.feed(event("Hel") + event("lo"), 1.0)
    assert [c.content for c in chunks] == ["Hel", "lo"]
    assert not proto.finished
    proto.feed(event(None, "stop"), 2.0)
    assert proto.finished
    assert not proto.stopped  # the body is still read to its end, for the pool's sake
    result = proto.finish(3.0)
    assert (result.text, result.finish_reason, result.interrupted) == ("Hello", "stop", False)


def test_done_sentinel_ends_the_answer_and_later_events_are_ignored() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(event("a") + b"data: [DONE]\n\n" + event("never"), 1.0)
    assert proto.stopped
    assert proto.feed(event("later"), 1.0) == []
    assert proto.finish(1.0).text == "a"


def test_junk_after_a_finished_answer_does_not_spoil_it() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(event("a", "stop") + b"data: {broken\n\n", 1.0)
    assert proto.finish(1.0).text == "a"


def test_usage_chunk_after_finish_in_the_same_read_is_kept() -> None:
    proto = CompletionProtocol(started_at=0.0)
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\n'
    proto.feed(event("a", "stop") + usage + b"data: [DONE]\n\n", 1.0)
    result = proto.finish(1.0)
    assert result.usage is not None
    assert result.usage.prompt_tokens == 2


def test_byte_by_byte_feeding_gives_the_same_answer() -> None:
    stream = event("caf\u00e9 ") + event("\u2192 \U0001f600") + event(None, "stop")
    proto = CompletionProtocol(started_at=0.0)
    for i in range(len(stream)):
        proto.feed(stream[i : i + 1], 1.0)
    assert proto.finish(1.0).text == "caf\u00e9 \u2192 \U0001f600"


def test_keepalive_and_comments_are_not_chunks() -> None:
    proto = CompletionProtocol(started_at=0.0)
    chunks = proto.feed(b": ping\n\ndata:\n\ndata:  \n\n" + event("x"), 1.0)
    assert [c.content for c in chunks] == ["x"]


def test_clean_end_without_finish_is_truncated_with_partial() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(event("half"), 1.0)
    with pytest.raises(TruncatedStreamError) as caught:
        proto.finish(2.0)
    assert caught.value.partial.text == "half"
    assert caught.value.partial.interrupted


def test_malformed_chunk_keeps_the_chunks_before_it() -> None:
    proto = CompletionProtocol(started_at=0.0)
    chunks = proto.feed(event("good") + b'data: {"choices":[{"delta":{"content":"oo\n\n', 1.0)
    assert [c.content for c in chunks] == ["good"]
    assert proto.stopped
    assert not proto.finished
    with pytest.raises(MalformedChunkError) as caught:
        proto.finish(1.0)
    assert caught.value.partial.text == "good"


def test_finish_reason_error_carries_gloo_error_object() -> None:
    proto = CompletionProtocol(started_at=0.0)
    err = {"code": 2001, "name": "PROVIDER_TIMEOUT", "message": "provider slow"}
    proto.feed(event("par") + event(None, "error", error=err), 1.0)
    with pytest.raises(UpstreamStreamError, match="PROVIDER_TIMEOUT") as caught:
        proto.finish(1.0)
    assert caught.value.code == 2001
    assert caught.value.partial.text == "par"


def test_error_event_type_and_bare_error_object() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(event("x") + b'event: error\ndata: {"error":{"message":"boom"}}\n\n', 1.0)
    with pytest.raises(UpstreamStreamError, match="boom"):
        proto.finish(1.0)
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(b'data: {"error":{"code":7,"name":"OVERLOADED"}}\n\n', 1.0)
    with pytest.raises(UpstreamStreamError, match="OVERLOADED"):
        proto.finish(1.0)


def test_content_filter_is_its_own_error() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(event("so") + event(None, "content_filter"), 1.0)
    with pytest.raises(ContentFilterError) as caught:
        proto.finish(1.0)
    assert caught.value.partial.text == "so"


def test_non_streamed_json_completion() -> None:
    proto = CompletionProtocol(started_at=0.0)
    body = (
        b'{"id":"c1","choices":[{"message":{"role":"assistant","content":"whole"},'
        b'"finish_reason":"length"}],"usage":{"total_tokens":3}}'
    )
    proto.feed_json(body, 1.0)
    result = proto.finish(1.0)
    assert (result.text, result.finish_reason, result.id) == ("whole", "length", "c1")
    with pytest.raises(MalformedChunkError):
        CompletionProtocol(started_at=0.0).feed_json(b"<html>", 1.0)


USAGE_ONLY = (
    b'data: {"id":"c1","choices":[],"model":"m",'
    b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'
)


@pytest.mark.parametrize("where", ["after the finish", "before the finish", "before [DONE]"])
def test_a_usage_only_chunk_is_kept_and_counts_no_token(where: str) -> None:
    # stream_options.include_usage: OpenAI sends `choices: []` with the usage, last.
    body = {
        "after the finish": event("Hi") + event("!") + event(None, "stop") + USAGE_ONLY,
        "before the finish": event("Hi") + event("!") + USAGE_ONLY + event(None, "stop"),
        "before [DONE]": event("Hi") + event("!") + USAGE_ONLY + b"data: [DONE]\n\n",
    }[where]
    proto = CompletionProtocol(started_at=0.0)
    chunks = proto.feed(body, 1.0)
    usage_chunk = next(c for c in chunks if not c.choices)
    assert (usage_chunk.content, usage_chunk.finish_reason) == ("", None)
    result = proto.finish(2.0)
    assert (result.text, result.token_count) == ("Hi!", 2)
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 2)


def test_an_answer_of_usage_only_is_still_unfinished() -> None:
    proto = CompletionProtocol(started_at=0.0)
    proto.feed(USAGE_ONLY, 1.0)
    with pytest.raises(TruncatedStreamError) as cut:
        proto.finish(1.0)
    assert cut.value.partial.usage is not None


def test_a_relay_that_keeps_no_text_still_gets_every_chunk_and_the_count() -> None:
    proto = CompletionProtocol(started_at=0.0, keep_text=False)
    chunks = proto.feed(event("Hel") + event("lo") + event(None, "stop"), 1.0)
    assert [c.content for c in chunks] == ["Hel", "lo", ""]
    result = proto.finish(2.0)
    assert (result.text, result.token_count, result.finish_reason) == ("", 2, "stop")
    assert result.ttft_ms == 1000.0
