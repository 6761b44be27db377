"""The screenshots in docs/ of what an answer can carry, made from the real page.

Run only when asked:
``GLOO_PAGE_SCREENSHOTS=1 .venv/bin/pytest -q tests/browser/test_page_screenshots.py`` writes
docs/page-grounded.png, page-reasoning.png, page-tool-call.png and page-continued.png
(headless Chromium, 1280x800), each a scripted upstream's answer drawn by the page through
the real proxy. Each test still checks the scene it photographs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scripted_upstream import DONE, ScriptedStack, chunk, finish

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.environ.get("GLOO_PAGE_SCREENSHOTS"),
        reason="makes the docs/ screenshots: set GLOO_PAGE_SCREENSHOTS=1",
    ),
]

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def chat(open_chat: Callable[[Any], Any], scripted_stack: ScriptedStack) -> Any:
    scripted_stack.upstream.reset()
    return open_chat(scripted_stack)


PACE = 0.02  # seconds between chunks: the figures line reads like a real model's


def paced(frames: list[str]) -> list[str | float]:
    """The frames with a short pause after each, as a model streams them."""
    return [step for frame in frames for step in (frame, PACE)]


def words(text: str, field: str = "content") -> list[str]:
    """The text in word-sized chunks (of the answer, or of ``reasoning_content``)."""
    pieces = [p if i == 0 else " " + p for i, p in enumerate(text.split(" "))]
    if field == "content":
        return [chunk(piece) for piece in pieces]
    return [chunk(delta={field: piece}) for piece in pieces]


def shoot(chat: Any, name: str) -> None:
    chat.page.evaluate("document.activeElement?.blur()")
    chat.page.screenshot(path=str(DOCS / name))


def test_grounded_answer_with_sources(chat: Any) -> None:
    citations = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gloo-openai-gpt-5-mini",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        "citations": [
            {
                "title": "Finding Rest in a Busy Season",
                "url": "https://example.org/articles/rest-in-a-busy-season",
                "snippet": "Rest is not the absence of work but the presence of trust ...",
                "publisher": "GlooGrounded",
            },
            {
                "title": "Sabbath as Resistance",
                "url": "https://example.com/books/sabbath",
                "snippet": "Keeping one day apart reorders the other six.",
                "publisher": "Example Press",
            },
            {
                "title": "A link the page will not make clickable",
                "url": "javascript:alert(1)",
                "snippet": "Only http(s) URLs become links; this one is shown as text.",
                "publisher": "Unknown",
            },
        ],
        "sources_returned": True,
    }
    text = (
        "Rest is less about stopping everything and more about **trusting** that the work is "
        "held by more than you [1]. Two practices help:\n\n- Keep one day a week apart, "
        "on purpose [2].\n- End each day by naming what you leave unfinished.\n\n"
        "Small, regular pauses do more than a rare long break."
    )
    script = [f"data: {json.dumps(citations)}\n\n", *paced(words(text)), finish(), DONE]
    chat.stack.upstream.queue(script)
    chat.ask("How do I find rest in a busy season?")
    chat.wait_settled()
    assert chat.answer().locator(".sources li").count() == 3
    shoot(chat, "page-grounded.png")


def test_reasoning_opened(chat: Any) -> None:
    reasoning = (
        "The user asks how many days are between March 3 and April 14. March has 31 days, "
        "so from March 3 to March 31 is 28 days, plus 14 days of April: 42 days. "
        "Check: 28 + 14 = 42. Answer plainly, with the working."
    )
    answer = "There are **42 days** between March 3 and April 14: 28 in March, then 14 in April."
    script = [
        *paced(words(reasoning, "reasoning_content")),
        *paced(words(answer)),
        finish(),
        DONE,
    ]
    chat.stack.upstream.queue(script)
    chat.ask("How many days from March 3 to April 14?")
    chat.wait_settled()
    chat.answer().locator("details.thinking summary").click()
    assert chat.answer().locator(".thinking-text").is_visible()
    shoot(chat, "page-reasoning.png")


def test_tool_call_card(chat: Any) -> None:
    def call(index: int, arguments: str, **first: str) -> str:
        body: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
        if first:
            body.update(id=first["id"], type="function")
            body["function"]["name"] = first["name"]
        return chunk(delta={"tool_calls": [body]})

    args = '{"city": "Lisbon", "days": 3, "units": "metric"}'
    script = [
        call(0, "", id="call_weather", name="get_weather"),
        *paced([call(0, args[i : i + 7]) for i in range(0, len(args), 7)]),
        call(
            1,
            '{"query": "events in Lisbon this weekend", "limit": 5',
            id="call_s",
            name="search_events",
        ),
        finish("tool_calls"),
        DONE,
    ]
    chat.stack.upstream.queue(script)
    chat.ask("What's the weather in Lisbon for my trip, and what's on?")
    chat.wait_settled()
    assert chat.answer().locator(".tool-call").count() == 2
    shoot(chat, "page-tool-call.png")


def test_continued_answer_with_its_seam(chat: Any) -> None:
    first = (
        "A river begins as rain and snowmelt gathering in high ground. Small streams join into "
        "larger ones, and the water carves its valley over thousands of years, carrying silt "
        "that it will later lay down"
    )
    rest = (
        " on its floodplain. Near the sea it slows, spreads and drops what it carried, "
        "building a delta.\n\nThat is why the richest farmland so often lies along rivers."
    )
    seam = {"n": 1, "reason": "disconnected", "upstream": "primary", "offset": len(first)}
    rest_chunks = words(rest.lstrip(" "))
    lead = json.loads(rest_chunks[0][len("data: ") :])
    lead["choices"][0]["delta"]["content"] = " " + lead["choices"][0]["delta"]["content"]
    lead["gloo_continuation"] = seam
    script = [
        *paced(words(first)),
        ": continued n=1 reason=disconnected\n\n",
        f"data: {json.dumps(lead)}\n\n",
        *paced(rest_chunks[1:]),
        finish(),
        DONE,
    ]
    chat.stack.upstream.queue(script)
    chat.ask("How does a river shape the land?")
    chat.wait_settled()
    marker = chat.answer().locator(".seam")
    assert marker.count() == 1
    marker.hover()
    shoot(chat, "page-continued.png")
