"""One attempt at a streamed completion, sans-IO: response bytes in, chunks out, outcome decided.

``GlooClient`` and ``AsyncGlooClient`` both drive this class and nothing else decides what a
byte, an event or the end of a body means, so the twins cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gloo_stream.accumulate import StreamAccumulator, StreamResult
from gloo_stream.errors import (
    ContentFilterError,
    MalformedChunkError,
    StreamError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.sse import ServerSentEvent, SSEDecoder
from gloo_stream.wire import ChatCompletionChunk, Choice, ChunkDecodeError, decode_chunk, is_done

__all__ = ["CompletionProtocol"]


class CompletionProtocol:
    """Feeds one response body through SSE decoding, chunk decoding and accumulation."""

    __slots__ = ("_decoder", "_done", "_failure", "_last_id", "accumulator")

    def __init__(
        self,
        *,
        started_at: float,
        attempts: int = 1,
        upstream: str = "primary",
        keep_text: bool = True,
    ) -> None:
        self._decoder = SSEDecoder()
        self._done = False
        self._failure: StreamError | None = None
        self._last_id = ""
        self.accumulator = StreamAccumulator(
            started_at=started_at, attempts=attempts, upstream=upstream, keep_text=keep_text
        )

    @property
    def last_event_id(self) -> str:
        """The id of the last whole event received (what a resume sends as Last-Event-ID)."""
        return self._decoder.last_event_id or self._last_id

    def reconnect(self) -> None:
        """The same answer goes on in a new response (a resume): a fresh SSE decoder, since a
        half-received event is sent again whole; what was received so far is kept."""
        self._last_id = self.last_event_id
        self._decoder = SSEDecoder()
        self.accumulator.resumes += 1

    @property
    def finished(self) -> bool:
        """True once the answer has ended (finish_reason or ``[DONE]``)."""
        return self.accumulator.finished

    @property
    def stopped(self) -> bool:
        """True when nothing more is worth reading: ``[DONE]`` arrived, or a chunk was bad.

        After a finish_reason the body is still read to its end (servers close right
        after it, or send ``[DONE]``): a trailing usage chunk is kept, and a body read to
        its end lets the connection go back to the pool instead of being torn down.
        """
        return self._done or self._failure is not None

    def feed(self, data: bytes, now: float) -> list[ChatCompletionChunk]:
        """The chunks these bytes complete, up to a malformed one (``finish`` then raises)."""
        chunks: list[ChatCompletionChunk] = []
        if self.stopped:
            return chunks
        acc = self.accumulator
        for item in self._decoder.feed_data(data):
            if type(item) is bytes and item[:1] == b"{":
                # A token stream's event as sent: decoded straight from its bytes, no text
                # made. Bytes that do not decode go the text way below, like any other event.
                try:
                    chunk = decode_chunk(item)
                except ChunkDecodeError:
                    pass
                else:
                    if chunk.error is not None and not chunk.choices_:
                        chunk = _error_chunk(chunk.error)
                    acc.add(chunk, now)
                    chunks.append(chunk)
                    continue
            if isinstance(item, bytes):
                item = ServerSentEvent(item.decode("utf-8", "replace"))
            if not self._take(item, now, chunks):
                break
        return chunks

    def _take(self, event: ServerSentEvent, now: float, chunks: list[ChatCompletionChunk]) -> bool:
        """One event read as text: its chunk onto ``chunks``; False when the read ends here."""
        acc = self.accumulator
        text = event.data
        if not text or text.isspace():
            return True  # an empty data field is a keep-alive, not a chunk
        if text[0] == "[" and is_done(text):
            acc.add_done()
            self._done = True
            return False
        if event.event == "error":
            acc.add(_error_chunk(text), now)
            return False
        try:
            chunk = decode_chunk(text)
        except ChunkDecodeError as exc:
            if acc.finished:
                return True  # junk after a complete answer does not spoil it
            # The good chunks before it are still handed on; finish() raises.
            self._failure = MalformedChunkError(
                f"Malformed chunk in the stream ({exc}); the partial answer is kept",
                partial=acc.result(now, interrupted=True, error=MalformedChunkError.error_code),
            )
            return False
        if chunk.error is not None and not chunk.choices_:
            chunk = _error_chunk(chunk.error)
        acc.add(chunk, now)
        chunks.append(chunk)
        return True

    def feed_json(self, body: bytes, now: float) -> list[ChatCompletionChunk]:
        """A non-streamed ``chat.completion`` (a server that ignored ``stream: true``)."""
        try:
            completion = msgspec.json.decode(body, type=_Completion)
        except msgspec.DecodeError as exc:
            raise MalformedChunkError(
                f"The server sent JSON that is not a chat completion ({exc})",
                partial=self.accumulator.result(
                    now, interrupted=True, error=MalformedChunkError.error_code
                ),
            ) from None
        choice = completion.choices[0] if completion.choices else _Choice()
        chunk_data = {
            "id": completion.id,
            "model": completion.model,
            "usage": completion.usage,
            "choices": [
                {
                    "index": 0,
                    "delta": choice.message,
                    "finish_reason": choice.finish_reason or "stop",
                }
            ],
        }
        chunk = decode_chunk(msgspec.json.encode(chunk_data))
        self.accumulator.add(chunk, now)
        return [chunk]

    def finish(self, now: float) -> StreamResult:
        """The body ended cleanly: the result, or the error the ending means."""
        acc = self.accumulator
        if self._failure is not None:
            raise self._failure
        if not acc.finished:
            raise TruncatedStreamError(
                "The stream ended before the answer was finished (no finish_reason or [DONE]); "
                "the partial answer is kept",
                partial=acc.result(now, interrupted=True, error=TruncatedStreamError.error_code),
            )
        if acc.finish_reason == "error":
            error = acc.error_object or {}
            name = error.get("name") or error.get("type") or UpstreamStreamError.error_code
            detail = error.get("message") or ""
            raise UpstreamStreamError(
                f"The model failed mid-answer ({name}{f': {detail}' if detail else ''}); "
                "the partial answer is kept",
                partial=acc.result(now, interrupted=True, error=str(name)),
                error=error,
            )
        if acc.finish_reason == "content_filter":
            raise ContentFilterError(
                "The answer was stopped by the content filter (finish_reason=content_filter)",
                partial=acc.result(now, interrupted=True, error=ContentFilterError.error_code),
            )
        return acc.result(now)

    def fail(self, kind: type[StreamError], message: str, now: float) -> StreamError:
        """The error for a transport failure mid-stream, carrying the partial answer.

        The partial records the class's ``error_code`` (``disconnected``, ``timeout``...).
        """
        partial = self.accumulator.result(now, interrupted=True, error=kind.error_code)
        return kind(message, partial=partial)


class _Message(msgspec.Struct):
    role: str | None = "assistant"
    content: str | None = None
    tool_calls: list[Any] | None = None


class _Choice(msgspec.Struct):
    message: _Message = msgspec.field(default_factory=_Message)
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    choices: list[_Choice] = msgspec.field(default_factory=list)


def _error_chunk(error: str | dict[str, Any]) -> ChatCompletionChunk:
    """An error that came as its own event: treat it as ``finish_reason: "error"``."""
    if isinstance(error, str):
        try:
            decoded = msgspec.json.decode(error)
        except msgspec.DecodeError:
            decoded = {"message": error}
        error = decoded if isinstance(decoded, dict) else {"message": str(decoded)}
        error = error.get("error", error) if isinstance(error.get("error"), dict) else error
    return ChatCompletionChunk(error=error, choices_=[Choice(finish_reason="error")])
