"""Grounded answers and reasoning, simulated: a small fixed corpus per publisher, thinking text.

The corpus is deterministic (the same publisher and prompt give the same sources), so tests
can assert on titles and URLs. Which citations variant is sent is scriptable (a
``citations`` fault's ``variant``), since Gloo's exact shape is not documented:
``chunk`` (``choices: []`` + ``citations``, the default), ``bare`` (``{"citations": [...],
"sources_returned": true}``), ``sources`` (``sources`` in place of ``citations``) and
``proxy`` (the gloo-stream proxy's own form, one empty choice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CORPUS",
    "REASONING_MODELS",
    "citations_for",
    "citations_payload",
    "reasoning_tokens",
]

CORPUS: dict[str, list[dict[str, Any]]] = {
    "GlooGrounded": [
        {
            "title": "Hope in Hard Times",
            "url": "https://example.org/gloo/hope-in-hard-times",
            "snippet": "Hope is not the absence of trouble but a way of walking through it.",
            "publisher": "GlooGrounded",
            "score": 0.92,
        },
        {
            "title": "Practising Gratitude",
            "url": "https://example.org/gloo/practising-gratitude",
            "snippet": "Naming three good things each evening changes what we notice by day.",
            "publisher": "GlooGrounded",
            "score": 0.87,
        },
        {
            "title": "Serving Your Neighbour",
            "url": "https://example.org/gloo/serving-your-neighbour",
            "snippet": "Small, regular acts of service build trust faster than grand gestures.",
            "publisher": "GlooGrounded",
            "score": 0.81,
        },
        {
            "title": "Rest and Sabbath",
            "url": "https://example.org/gloo/rest-and-sabbath",
            "snippet": "A weekly day of rest is an old answer to a very modern tiredness.",
            "publisher": "GlooGrounded",
            "score": 0.77,
        },
    ],
}
DEFAULT_SOURCES = 3
REASONING_MODELS = {"sim-reasoning": "reasoning_content", "sim-reasoning-alt": "reasoning"}
"""Model names that make the simulator think aloud first, and the delta field it uses."""


def _made_up(publisher: str, count: int) -> list[dict[str, Any]]:
    """A publisher without a fixed corpus gets stable made-up sources named after it."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in publisher.lower()).strip("-") or "pub"
    return [
        {
            "title": f"{publisher} article {i + 1}",
            "url": f"https://example.org/{slug}/article-{i + 1}",
            "snippet": f"Passage {i + 1} from {publisher}'s library.",
            "publisher": publisher,
            "score": round(0.9 - 0.05 * i, 2),
        }
        for i in range(count)
    ]


def citations_for(body: Mapping[str, Any], prompt: str) -> list[dict[str, Any]]:
    """The sources a grounded request retrieves: its publisher's, up to ``sources_limit``.

    The order is rotated by the prompt, so two prompts may cite differently, each stably.
    """
    publisher = body.get("rag_publisher")
    publisher = publisher if isinstance(publisher, str) and publisher else "GlooGrounded"
    limit = body.get("sources_limit")
    limit = int(limit) if isinstance(limit, int | float) else DEFAULT_SOURCES
    items = CORPUS.get(publisher) or _made_up(publisher, 10)
    shift = hashlib.sha256(prompt.encode()).digest()[0] % len(items)
    rotated = items[shift:] + items[:shift]
    return [dict(item) for item in rotated[:limit]]


def citations_payload(
    variant: str, items: list[dict[str, Any]], head: Mapping[str, Any]
) -> dict[str, Any]:
    """The citations event's JSON in ``variant``; ``head`` is the chunk's id/created/model."""
    if variant == "bare":
        return {"citations": items, "sources_returned": bool(items)}
    if variant == "proxy":
        choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        return {
            **head,
            "object": "chat.completion.chunk",
            "choices": [choice],
            "citations": items,
            "sources_returned": bool(items),
        }
    key = "sources" if variant == "sources" else "citations"
    return {
        **head,
        "object": "chat.completion.chunk",
        "choices": [],
        key: items,
        "sources_returned": bool(items),
    }


def reasoning_tokens(prompt: str) -> list[str]:
    """A short, fixed train of thought about ``prompt`` (split into streamed pieces)."""
    topic = " ".join(prompt.split()[:6]) or "the question"
    text = f"The user asks: {topic}. Recall the key facts first, then answer briefly and plainly."
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]
