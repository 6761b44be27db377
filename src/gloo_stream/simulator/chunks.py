"""Gloo's wire shapes: ``chat.completion.chunk`` events as SSE bytes, and ``chat.completion``.

Content chunks are the hot path (thousands of streams, one event per token), so their bytes are
a per-stream prefix + the token's cached JSON + a per-stream suffix, cut from one chunk encoded
by the same function as every other chunk: the key order and format cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gloo_stream.simulator.grounded import citations_payload
from gloo_stream.sse import encode_event

_encode = msgspec.json.encode
_SENTINEL = "\x00sim-content\x00"
_SENTINEL_JSON = _encode(_SENTINEL)
_DATA = b"data: "
_END = b"\n\n"


def sse_data(payload: bytes) -> bytes:
    """One SSE event carrying ``payload`` on a single ``data:`` line.

    Byte-identical to ``gloo_stream.sse.encode_event(payload)`` for single-line payloads (a test
    checks it), minus the decode/re-encode, because it runs once per token per stream.
    """
    return _DATA + payload + _END


class ChunkEncoder:
    """Builds every event of one streamed completion.

    ``crlf`` ends lines with CRLF; ``multiline`` spreads each JSON payload over several
    ``data:`` lines and adds ``event:``, ``id:``, ``retry:`` and comment lines, all valid SSE.
    """

    def __init__(
        self,
        *,
        completion_id: str,
        created: int,
        model: str,
        routing: dict[str, Any],
        crlf: bool = False,
        multiline: bool = False,
    ) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.routing = routing
        self._crlf = crlf
        self._multiline = multiline
        self._event_id = 0
        delta = {"content": _SENTINEL, "role": "assistant", "tool_calls": None}
        prefix, _, suffix = self._chunk(delta, None, None, {}).partition(_SENTINEL_JSON)
        self._prefix, self._suffix = prefix, suffix

    def frame(self, payload: bytes) -> bytes:
        """Wrap a raw payload as an event in this stream's style."""
        if self._multiline:
            return self._spread(payload)
        event = _DATA + payload + _END
        return event.replace(b"\n", b"\r\n") if self._crlf else event

    def content(self, token_json: bytes) -> bytes:
        """The event for one content token, given as an already-encoded JSON string."""
        if self._multiline or self._crlf:
            return self.frame(self._prefix + token_json + self._suffix)
        return _DATA + self._prefix + token_json + self._suffix + _END

    def role(self) -> bytes:
        """The opening event: role only, empty content, plus routing metadata."""
        delta = {"content": "", "role": "assistant", "tool_calls": None}
        return self.frame(self._chunk(delta, None, None, self.routing))

    def finish(self, reason: str, usage: dict[str, int] | None, extra: dict[str, Any]) -> bytes:
        """The closing event: ``finish_reason`` set, empty delta, usage and routing metadata."""
        return self.frame(self._chunk({}, reason, usage, {**self.routing, **extra}, reason))

    def usage_only(self, usage: dict[str, int]) -> bytes:
        """The usage chunk ``stream_options.include_usage`` asks for: no choices, just usage."""
        chunk = {
            "id": self.completion_id,
            "choices": [],
            "created": self.created,
            "model": self.model,
            "object": "chat.completion.chunk",
            "provider": "Gloo AI",
            "usage": usage,
        }
        return self.frame(_encode(chunk))

    def citations(self, items: list[dict[str, Any]], variant: str) -> bytes:
        """A grounded answer's first event: its sources, in ``variant``'s shape."""
        head = {"id": self.completion_id, "created": self.created, "model": self.model}
        return self.frame(_encode(citations_payload(variant, items, head)))

    def reasoning(self, token: str, field_name: str) -> bytes:
        """A reasoning delta (``reasoning_content`` or ``reasoning``), no answer text."""
        delta = {"content": None, "role": "assistant", field_name: token}
        return self.frame(self._chunk(delta, None, None, {}))

    def tool_calls(self, calls: list[dict[str, Any]]) -> bytes:
        """An event carrying tool-call deltas (OpenAI format) instead of content."""
        delta = {"content": None, "role": "assistant", "tool_calls": calls}
        return self.frame(self._chunk(delta, None, None, {}))

    def error(self, code: int, name: str, message: str) -> bytes:
        """A mid-stream failure event: ``finish_reason: "error"`` with an ``error`` object."""
        extra = {"error": {"code": code, "name": name, "message": message}}
        return self.frame(self._chunk({}, "error", None, extra, "error"))

    def done(self) -> bytes:
        """The ``[DONE]`` sentinel other OpenAI-compatible servers send (Gloo does not)."""
        return self.frame(b"[DONE]")

    def malformed(self) -> bytes:
        """An event whose data is cut-off JSON, as a buggy upstream might send."""
        return self.frame(
            b'{"id":"' + self.completion_id.encode() + b'","choices":[{"delta":{"content":"oops'
        )

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None,
        usage: dict[str, int] | None,
        extra: dict[str, Any],
        native_finish_reason: str | None = None,
    ) -> bytes:
        choice: dict[str, Any] = {"delta": delta, "finish_reason": finish_reason, "index": 0}
        if native_finish_reason is not None:
            choice["native_finish_reason"] = native_finish_reason
        chunk = {
            "id": self.completion_id,
            "choices": [choice],
            "created": self.created,
            "model": self.model,
            "object": "chat.completion.chunk",
            "provider": "Gloo AI",
            "usage": usage,
            **extra,
        }
        return _encode(chunk)

    def _spread(self, payload: bytes) -> bytes:
        # Pretty-printing puts a line break between JSON tokens only, never inside a string,
        # so the data lines joined with "\n" (as SSE specifies) are the same JSON value.
        self._event_id += 1
        try:
            text = msgspec.json.format(payload, indent=1).decode()
        except msgspec.DecodeError:  # [DONE] and the malformed fault stay on one line
            text = payload.decode()
        retry = 3000 if self._event_id == 1 else None
        event = encode_event(text, event="message", id=str(self._event_id), retry=retry)
        # Comments before the event and between its data lines, which decoders must skip.
        head, sep, tail = event.partition(b"\ndata: ")
        first, _, rest = tail.partition(b"\n")
        event = b": keep-alive\n\n" + head + sep + first + b"\n: mid-event comment\n" + rest
        return event.replace(b"\n", b"\r\n") if self._crlf else event


def completion_body(
    *,
    completion_id: str,
    created: int,
    model: str,
    routing: dict[str, Any],
    content: str | None,
    tool_calls: list[dict[str, Any]] | None,
    finish_reason: str,
    usage: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> bytes:
    """A non-streamed ``chat.completion`` object, shaped like the chunks."""
    message = {"content": content, "role": "assistant", "tool_calls": tool_calls}
    choice = {
        "finish_reason": finish_reason,
        "index": 0,
        "message": message,
        "native_finish_reason": finish_reason,
    }
    body = {
        "id": completion_id,
        "choices": [choice],
        "created": created,
        "model": model,
        "object": "chat.completion",
        "provider": "Gloo AI",
        "usage": usage,
        **routing,
        **(extra or {}),
    }
    return _encode(body)
