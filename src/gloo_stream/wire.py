"""The typed chat-completion chunk, decoded fast with msgspec.

Unknown fields are tolerated and kept (``chunk.extra``); null where an object is expected
reads as empty, so ``chunk.choices[0].delta.content`` is safe on any chunk with a choice.
Some chunks have none (``choices: []``): the usage-only chunk that
``stream_options.include_usage`` asks for, sent last. ``chunk.content`` and
``chunk.finish_reason`` are safe on every chunk ("" and None there).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ChatCompletionChunk",
    "Choice",
    "ChunkDecodeError",
    "Delta",
    "FunctionDelta",
    "ToolCallDelta",
    "Usage",
    "decode_chunk",
    "is_done",
    "reasoning_text",
]

DONE = "[DONE]"


class FunctionDelta(msgspec.Struct, gc=False, omit_defaults=True):
    """A fragment of a tool call's function: its name and a piece of its JSON arguments."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, gc=False, omit_defaults=True):
    """A fragment of one tool call; fragments with the same ``index`` belong together."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function_: FunctionDelta | None = msgspec.field(default=None, name="function")

    @property
    def function(self) -> FunctionDelta:
        """The function fragment (empty when absent)."""
        return self.function_ or _EMPTY_FUNCTION


class Delta(msgspec.Struct, gc=False, omit_defaults=True):
    """What one chunk adds to the answer."""

    content: str | None = None
    role: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None
    # A reasoning model's thinking, apart from the answer: both spellings are in the wild
    # (DeepSeek, vLLM: reasoning_content; OpenRouter, Ollama: reasoning). Last, so the
    # content-only hot path finds its keys first. Typed Any: a server that sends something
    # else there (an object) must not make the whole chunk undecodable; readers check for str.
    reasoning_content: Any = None
    reasoning: Any = None


class Usage(msgspec.Struct, gc=False, omit_defaults=True):
    """Token counts reported by the server."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Choice(msgspec.Struct, gc=False, omit_defaults=True):
    """One choice of a chunk (Gloo always sends exactly one)."""

    # Fields in the order Gloo sends them: msgspec looks a key up from where the last one
    # matched, so keys that arrive in field order are found at the first try.
    delta_: Delta | None = msgspec.field(default=None, name="delta")
    finish_reason: str | None = None
    index: int = 0
    native_finish_reason: str | None = None

    @property
    def delta(self) -> Delta:
        """The delta (empty when absent or null)."""
        return self.delta_ or _EMPTY_DELTA


class ChatCompletionChunk(msgspec.Struct, gc=False, omit_defaults=True):
    """One ``chat.completion.chunk``, with Gloo's extra metadata as optional fields."""

    # In the order Gloo sends them (see Choice).
    id: str | None = None
    choices_: list[Choice] | None = msgspec.field(default=None, name="choices")
    created: int | float | None = None
    model: str | None = None
    object: str | None = None
    provider: str | None = None
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    native_finish_reason: str | None = None
    ttft_ms: float | None = None
    routing_mechanism: str | None = None
    routing_tier: str | int | None = None
    routing_confidence: float | None = None
    model_family: str | None = None
    # A grounded answer's sources (first event; see ``gloo_stream.grounding`` for variants).
    # Typed Any for the same reason as the reasoning fields: read, never a decode failure.
    citations: Any = None
    sources: Any = None
    sources_returned: Any = None
    gloo_continuation: Any = None
    """On the first chunk after a seam of a continued answer: n, reason, upstream, offset."""
    # The raw event data, kept so unknown fields stay reachable (``extra``). The JSON
    # name cannot occur in a real chunk, so the decoder never fills it.
    raw: Any = msgspec.field(default=b"", name="\u2063gloo-stream-raw")

    @property
    def choices(self) -> list[Choice]:
        """The choices (empty when absent or null)."""
        return self.choices_ or []

    @property
    def content(self) -> str:
        """The text this chunk adds ("" when none): the tutorial's ``extract_token_content``."""
        choices = self.choices_
        if not choices:
            return ""
        delta = choices[0].delta_
        if delta is None:
            return ""
        return delta.content or ""

    @property
    def reasoning(self) -> str:
        """The reasoning this chunk adds ("" when none), whichever spelling it came in."""
        choices = self.choices_
        if not choices:
            return ""
        delta = choices[0].delta_
        if delta is None:
            return ""
        return reasoning_text(delta)

    @property
    def citation_items(self) -> list[Any] | None:
        """The raw citation items this chunk carries (``citations`` or ``sources``), or None."""
        items = self.citations
        if items is None:
            items = self.sources
        return items if isinstance(items, list) else None

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason, or None while the answer goes on."""
        choices = self.choices_
        return choices[0].finish_reason if choices else None

    @property
    def extra(self) -> dict[str, Any]:
        """Every field of the chunk that this model does not name, as decoded JSON."""
        decoded = self._raw_json()
        if not isinstance(decoded, dict):
            return {}
        return {k: v for k, v in decoded.items() if k not in _KNOWN_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        """The chunk as plain JSON-ready data, unknown fields included."""
        decoded = self._raw_json()
        return decoded if isinstance(decoded, dict) else _to_builtins(self)

    def _raw_json(self) -> Any:
        """The raw event data as generic JSON (None when there is none)."""
        raw = self.raw
        if not raw:
            return None
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            if not isinstance(raw, bytes):
                raise
            # Bytes straight off the wire may hold invalid UTF-8 in a field this model
            # skips; read them as the text decoder would have, with U+FFFD.
            return msgspec.json.decode(raw.decode("utf-8", "replace"))


_EMPTY_DELTA = Delta()
_EMPTY_FUNCTION = FunctionDelta()
_KNOWN_FIELDS = frozenset(f.encode_name for f in msgspec.structs.fields(ChatCompletionChunk))
_decoder = msgspec.json.Decoder(ChatCompletionChunk)


class ChunkDecodeError(ValueError):
    """Event data that is not a chat-completion chunk."""


def decode_chunk(data: str | bytes) -> ChatCompletionChunk:
    """Decode one event's data into a chunk; raises ``ChunkDecodeError`` on bad JSON or shape.

    Bytes (``SSEDecoder.feed_data``'s) decode faster than text and to the same chunk: invalid
    UTF-8 in a string the chunk keeps is an error, so the caller can fall back to the text.
    """
    try:
        chunk = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ChunkDecodeError(f"not a chat-completion chunk: {exc}") from None
    chunk.raw = data
    return chunk


def reasoning_text(delta: Delta) -> str:
    """The reasoning a delta adds ("" when none): ``reasoning_content``, else ``reasoning``."""
    value = delta.reasoning_content or delta.reasoning
    return value if isinstance(value, str) else ""


def is_done(data: str) -> bool:
    """True for the ``[DONE]`` sentinel that OpenAI-style servers send last."""
    return data == DONE or (data[:1] in (" ", "[") and data.strip() == DONE)


def _to_builtins(chunk: ChatCompletionChunk) -> dict[str, Any]:
    built = msgspec.to_builtins(chunk)
    assert isinstance(built, dict)
    built.pop("\u2063gloo-stream-raw", None)
    return built
