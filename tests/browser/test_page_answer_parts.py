"""What an answer carries beside its text, drawn by the page: sources, reasoning, tool calls,
a JSON answer, a continued answer's seam, and who answered.

Chromium -> the page -> the real proxy -> a scripted upstream (``scripted_upstream.py``), all on
loopback. The proxy relays these chunks unchanged (the citations event in the contract's
chunk-shaped form, reasoning and tool-call deltas, the ``gloo_continuation`` field), so each
test scripts the upstream with exactly the chunks the contract describes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from scripted_upstream import DONE, chunk, finish

from conftest import ScriptedStack

pytestmark = pytest.mark.browser

SOURCES = [
    {
        "title": "Psalm 23 <img src=x onerror=alert(1)>",
        "url": "https://example.org/psalm-23",
        "snippet": "The Lord is my shepherd; I shall not want.",
        "publisher": "GlooGrounded",
        "score": 0.91,  # unknown fields are the upstream's: kept, never drawn
    },
    {"title": "Click me", "url": "javascript:alert(document.cookie)", "snippet": "not a link"},
    {"title": "Inline", "link": "data:text/html,<script>alert(1)</script>", "text": "data URL"},
    {"title": "Plain http", "link": "http://example.com/a?b=1&c=2", "content": "via link/content"},
]
SAVED_TURNS = "() => JSON.parse(localStorage.getItem('gloo-stream.chat.v1')).turns"


def citations_event(items: list[dict[str, Any]]) -> str:
    """The citations event as the proxy relays it (contracts.md, item 3)."""
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "scripted-model",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
        "citations": items,
        "sources_returned": True,
    }
    return f"data: {json.dumps(body)}\n\n"


def tool_delta(index: int, arguments: str = "", **first: str) -> str:
    """A tool-call delta: the first one of a call carries ``id`` and ``name``."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if first:
        call.update(id=first["id"], type="function")
        call["function"]["name"] = first["name"]
    return chunk(delta={"tool_calls": [call]})


@pytest.fixture
def chat(open_chat: Callable[[Any], Any], scripted_stack: ScriptedStack) -> Any:
    scripted_stack.upstream.reset()
    return open_chat(scripted_stack)


def play(chat: Any, *script: str | float, prompt: str = "Tell me.") -> Any:
    """Queue one scripted answer, ask, and return the answer's locator (not yet settled)."""
    chat.stack.upstream.queue(list(script))
    chat.ask(prompt)
    return chat.answer()


# --- sources -------------------------------------------------------------------------------


def test_sources_are_numbered_safe_links_escaped_and_kept_after_a_reload(chat: Any) -> None:
    answer = play(chat, citations_event(SOURCES), chunk("Grounded answer."), finish(), DONE)
    chat.wait_settled()
    assert chat.state() == "done"

    def check() -> None:
        items = answer.locator(".sources ol.sources-list > li")
        assert items.count() == 4
        assert answer.locator(".sources h3").text_content() == "Sources"
        first = items.nth(0).locator("a")
        assert first.get_attribute("href") == "https://example.org/psalm-23"
        assert first.get_attribute("rel") == "noopener noreferrer"
        assert first.get_attribute("target") == "_blank"
        # The title is text: the markup in it is shown, never made into an element.
        assert first.text_content() == "Psalm 23 <img src=x onerror=alert(1)>"
        assert answer.locator(".sources img").count() == 0
        assert "GlooGrounded" in items.nth(0).text_content()
        assert "The Lord is my shepherd" in items.nth(0).text_content()
        # javascript: and data: URLs are shown as text, never clickable.
        for index in (1, 2):
            assert items.nth(index).locator("a").count() == 0
            assert items.nth(index).locator("[href]").count() == 0
        assert "javascript:alert(document.cookie)" in items.nth(1).text_content()
        assert items.nth(2).locator(".source-url").text_content().startswith("data:text/html")
        assert answer.locator(".sources script").count() == 0
        # Another spelling (link, content) still makes an http link.
        assert items.nth(3).locator("a").get_attribute("href") == "http://example.com/a?b=1&c=2"
        assert "via link/content" in items.nth(3).text_content()
        # The sources are not part of the answer's text.
        assert answer.locator(".answer").text_content().strip() == "Grounded answer."

    check()
    saved = chat.page.evaluate(SAVED_TURNS)[-1]["sources"]
    assert [source["url"] for source in saved][:2] == [SOURCES[0]["url"], SOURCES[1]["url"]]
    chat.reload()
    answer = chat.answer()
    check()
    assert chat.errors == []


def test_an_upstream_saying_sources_instead_of_citations_is_drawn_too(chat: Any) -> None:
    # A bare event in the `sources` spelling: contracts.md says the proxy rewrites it to
    # `citations`; the page takes either, whichever reaches it.
    bare = json.dumps({"sources": [{"title": "Only", "url": "https://example.net/"}]})
    answer = play(chat, f"data: {bare}\n\n", chunk("Text."), finish(), DONE)
    chat.wait_settled()
    assert answer.locator(".sources a").get_attribute("href") == "https://example.net/"
    assert answer.locator(".answer").text_content().strip() == "Text."


# --- reasoning -----------------------------------------------------------------------------


def test_reasoning_is_collapsed_live_and_never_part_of_the_answer(chat: Any) -> None:
    answer = play(
        chat,
        chunk(delta={"reasoning_content": "First I weigh the question. "}),
        chunk(delta={"reasoning": "Then I check the other spelling."}),
        1.0,  # a reasoning model thinking: the page must look alive meanwhile
        chunk("The answer is **42**."),
        finish(),
        DONE,
    )
    thinking = answer.locator("details.thinking")
    chat.page.wait_for_selector(".turn.assistant details.thinking.live:not([hidden])")
    assert thinking.locator(".thinking-label").text_content() == "Thinking…"
    assert thinking.locator(".thinking-count").text_content() == "(11 words)"
    assert chat.page.locator("#status").text_content() == "Thinking…"
    assert answer.locator(".answer").text_content().strip() == ""
    chat.wait_settled()

    def check() -> None:
        assert thinking.get_attribute("open") is None  # collapsed
        assert thinking.locator(".thinking-label").text_content() == "Thinking"
        assert not thinking.locator(".thinking-text").is_visible()
        assert answer.locator(".answer").text_content().strip() == "The answer is 42."
        assert answer.locator(".answer strong").text_content() == "42"
        # It sits above the answer.
        order = answer.evaluate(
            "(item) => [...item.children].map((c) => c.className.split(' ')[0])"
        )
        assert order.index("thinking") < order.index("answer")

    check()
    thinking.locator("summary").click()
    assert thinking.locator(".thinking-text").text_content() == (
        "First I weigh the question. Then I check the other spelling."
    )
    assert thinking.locator(".thinking-text").is_visible()
    saved = chat.page.evaluate(SAVED_TURNS)[-1]
    assert saved["content"] == "The answer is **42**."
    assert saved["reasoning"].startswith("First I weigh")
    chat.reload()
    answer = chat.answer()
    thinking = answer.locator("details.thinking")
    check()
    assert "other spelling" in thinking.locator(".thinking-text").text_content()
    assert chat.errors == []


# --- tool calls ----------------------------------------------------------------------------


def test_a_tool_card_grows_then_is_pretty_printed_and_a_bad_call_is_flagged(chat: Any) -> None:
    answer = play(
        chat,
        tool_delta(0, "", id="call_1", name="get_weather"),
        tool_delta(0, '{"city": "Par'),
        1.0,  # the arguments are half there: the card must show them growing
        tool_delta(0, 'is", "days": [1, 2]}'),
        tool_delta(1, '{"query": "unterminated', id="call_2", name="search"),
        finish("tool_calls"),
        DONE,
    )
    card = answer.locator('.tool-call[data-index="0"]')
    chat.page.wait_for_selector('.tool-call[data-index="0"][data-status="streaming"]')
    assert card.locator(".tool-call-name").text_content() == "get_weather"
    assert card.locator(".tool-call-args").text_content() == '{"city": "Par'
    chat.wait_settled()

    def check() -> None:
        cards = answer.locator(".tool-call")
        assert cards.count() == 2
        assert card.get_attribute("data-status") == "json"
        assert card.locator(".tool-call-args").text_content() == json.dumps(
            {"city": "Paris", "days": [1, 2]}, indent=2
        )
        assert "valid JSON" in card.locator(".tool-call-status").text_content()
        bad = answer.locator('.tool-call[data-index="1"]')
        assert bad.locator(".tool-call-name").text_content() == "search"
        assert bad.get_attribute("data-status") == "invalid"
        assert "invalid" in (bad.get_attribute("class") or "")
        assert bad.locator(".tool-call-args").text_content() == '{"query": "unterminated'
        assert "not valid JSON" in bad.locator(".tool-call-status").text_content()
        assert bad.locator('.tool-call-status[role="alert"]').count() == 1
        # An answer of calls only is not "an empty answer": the page says what happened.
        notice = answer.locator(".notice").text_content()
        assert "asked to call a tool" in notice
        assert "empty" not in notice

    check()
    chat.reload()
    answer = chat.answer()
    card = answer.locator('.tool-call[data-index="0"]')
    check()
    assert chat.errors == []


# --- JSON answers --------------------------------------------------------------------------


def test_a_json_answer_is_pretty_printed_once_complete(chat: Any) -> None:
    pieces = ['{"name": "Ru', 'th", "chap', 'ters": [1, 2, 3', '], "ok": true}']
    answer = play(chat, *(chunk(piece) for piece in pieces), finish(), DONE)
    chat.wait_settled()
    code = answer.locator(".answer .json-answer pre code")
    expected = json.dumps({"name": "Ruth", "chapters": [1, 2, 3], "ok": True}, indent=2)
    assert code.text_content() == expected
    assert answer.locator(".answer .codeblock-lang").text_content() == "json"
    chat.reload()
    assert chat.answer().locator(".answer .json-answer pre code").text_content() == expected


def test_text_that_is_not_json_stays_markdown(chat: Any) -> None:
    answer = play(chat, chunk("{not json} but *prose*"), finish(), DONE)
    chat.wait_settled()
    assert answer.locator(".json-answer").count() == 0
    assert answer.locator(".answer em").text_content() == "prose"


# --- continued answers ---------------------------------------------------------------------


def test_a_continued_answer_reads_as_one_with_a_seam_mark_and_its_reason(chat: Any) -> None:
    seam = {"n": 1, "reason": "disconnected", "upstream": "primary", "offset": 15}
    answer = play(
        chat,
        chunk("Rivers run to t"),
        ": continued n=1 reason=disconnected\n\n",
        chunk("he sea, and *on*.", gloo_continuation=seam),
        finish(),
        DONE,
    )
    chat.wait_settled()

    def check() -> None:
        text = answer.locator(".answer")
        assert text.text_content().strip() == "Rivers run to the sea, and on."
        marks = text.locator(".seam")
        assert marks.count() == 1
        title = marks.get_attribute("title")
        assert title == "Continued here (continuation 1): the connection to the model dropped."
        assert marks.get_attribute("aria-label") == title
        # The mark sits where the seam is: right after "t", inside the same paragraph.
        before = marks.evaluate("(m) => m.previousSibling.textContent")
        assert before.endswith("Rivers run to t")
        assert "Continued (1 seam)" in answer.locator(".meta").text_content()
        assert answer.locator(".notice").is_hidden()

    check()
    saved = chat.page.evaluate(SAVED_TURNS)[-1]
    assert saved["content"] == "Rivers run to the sea, and *on*."  # no mark in the text
    assert saved["seams"] == [seam]
    chat.reload()
    answer = chat.answer()
    check()
    assert chat.errors == []


def test_a_seam_on_the_fallback_says_so(chat: Any) -> None:
    seam = {"n": 2, "reason": "timeout", "upstream": "fallback", "offset": 3}
    answer = play(chat, chunk("One"), chunk(" two", gloo_continuation=seam), finish(), DONE)
    chat.wait_settled()
    title = answer.locator(".seam").get_attribute("title")
    assert title == (
        "Continued here on the fallback upstream (continuation 2): the model went silent."
    )


# --- who answered --------------------------------------------------------------------------


def test_an_answer_from_another_upstream_is_labelled_with_its_host(chat: Any) -> None:
    answer = play(chat, chunk("Hi."), finish(), DONE)
    chat.wait_settled()
    host = f"127.0.0.1:{chat.stack.upstream.port}"
    assert answer.locator("h2").text_content() == f"{host} answered"
    assert answer.locator(".meta").text_content().endswith(f"from {host}")
    named = chat.page.evaluate(
        """async () => {
            const { answererOf } = await import('/static/answer-parts.js');
            return ['platform.ai.gloo.com', 'gloo.com:443', '', 'notgloo.com', 'gloo.com.evil.io']
                .map(answererOf);
        }"""
    )
    assert named == ["Gloo", "Gloo", "Gloo", "notgloo.com", "gloo.com.evil.io"]
