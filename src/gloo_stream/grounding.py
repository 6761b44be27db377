"""Grounded answers (Gloo's RAG): the request's fields and the citations event's variants.

Gloo's reference says citations are "prepended as the first SSE event before any content
chunks", but not their exact JSON. Accepted here, every field of each item kept: a
chunk-shaped event with ``"choices": []`` and a ``citations`` array (plus
``sources_returned``), a bare ``{"citations": [...], "sources_returned": true}``, either with
``sources`` in place of ``citations``, and the proxy's own form (the same chunk with one empty
choice, so OpenAI clients reading ``choices[0]`` survive it). Sans-IO and import-free.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = [
    "DEFAULT_PUBLISHER",
    "GROUNDED_FIELDS",
    "Citation",
    "citations_event",
    "is_grounded",
    "parse_citations",
]

DEFAULT_PUBLISHER = "GlooGrounded"
GROUNDED_FIELDS = ("rag_publisher", "sources_limit", "include_citations", "parallel_tool_calls")
"""The fields Gloo's grounded endpoint takes beyond the v2 completions body."""
_encode = msgspec.json.encode


def is_grounded(body: Mapping[str, Any]) -> bool:
    """True when a request body asks for a grounded answer (so goes to the grounded URL).

    ``parallel_tool_calls`` alone is OpenAI's too and says nothing about grounding.
    """
    return (
        body.get("rag_publisher") is not None
        or body.get("sources_limit") is not None
        or body.get("include_citations") is True
    )


@dataclass(frozen=True, slots=True)
class Citation:
    """One source a grounded answer used; each field None when the upstream did not say.

    ``raw`` is the whole item as sent, unknown fields included (compared by identity only).
    """

    title: str | None = None
    url: str | None = None
    snippet: str | None = None
    publisher: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_raw(cls, item: Any) -> Citation:
        """Read one upstream item: ``url`` or ``link``; ``snippet``, ``text`` or ``content``."""
        if not isinstance(item, Mapping):
            return cls(snippet=item if isinstance(item, str) else None, raw=item)
        return cls(
            title=_text(item, "title", "name"),
            url=_text(item, "url", "link", "source_url"),
            snippet=_text(item, "snippet", "text", "content"),
            publisher=_text(item, "publisher", "rag_publisher", "source"),
            raw=item,
        )

    def to_dict(self) -> dict[str, Any]:
        """The citation as JSON-ready data: the four fields read, and ``raw``."""
        return {
            "title": self.title,
            "url": self.url,
            "snippet": self.snippet,
            "publisher": self.publisher,
            "raw": self.raw,
        }


def _text(item: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def parse_citations(items: Sequence[Any]) -> list[Citation]:
    """Every upstream item as a ``Citation``, in the order sent."""
    return [Citation.from_raw(item) for item in items]


def citations_event(
    items: Sequence[Any],
    sources_returned: bool | None,
    *,
    chunk_id: str | None = None,
    created: int | float | None = None,
    model: str | None = None,
) -> bytes:
    """The one chunk-shaped event the proxy relays for any citations variant (the contract).

    A ``choices`` entry with an empty delta lets an OpenAI client's
    ``chunk.choices[0].delta.content or ""`` read it as nothing; the citations ride along as
    an extra top-level field (``chunk.model_extra["citations"]`` in the OpenAI SDK).
    """
    chunk = {
        "id": chunk_id or "gen-citations",
        "object": "chat.completion.chunk",
        "created": created if created is not None else int(time.time()),
        "model": model or "gloo",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
        "citations": list(items),
        "sources_returned": sources_returned if sources_returned is not None else bool(items),
    }
    return b"data: " + _encode(chunk) + b"\n\n"
