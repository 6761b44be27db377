"""The page asks for usage and takes the usage-only chunk (``choices: []``) in its stride.

Through the whole stack (Chromium -> page -> proxy -> simulator), and the page's own
``streamAnswer`` fed chunk shapes the simulator does not send.
"""

from __future__ import annotations

from typing import Any

import pytest

from gloo_stream.simulator import expected_answer

pytestmark = pytest.mark.browser

PROMPT = "How do tokens stream?"


def test_the_page_asks_for_usage_and_shows_the_models_count(fast_chat: Any) -> None:
    fast_chat.ask(PROMPT)
    fast_chat.wait_settled()
    assert fast_chat.state() == "done"
    request = fast_chat.simulator.stats()["last_request"]
    assert request["stream_options"] == {"include_usage": True}
    meta = fast_chat.answer().locator(".meta").text_content()
    tokens = len(expected_answer([{"role": "user", "content": PROMPT}]))
    assert f"{tokens} tokens" in meta
    assert fast_chat.errors == []


FEED = """
async (events) => {
  const { streamAnswer } = await import('/static/completion.js');
  const body = new ReadableStream({
    start(controller) {
      for (const e of events) controller.enqueue(new TextEncoder().encode(e));
      controller.close();
    },
  });
  const texts = [];
  const outcome = await streamAnswer({
    url: '/api/stream',
    body: {},
    signal: new AbortController().signal,
    onText: (text) => texts.push(text),
    fetchImpl: async () => new Response(body, {status: 200}),
  });
  return {outcome, texts};
}
"""


def data(chunk: str) -> str:
    return f"data: {chunk}\n\n"


@pytest.mark.parametrize("place", ["after the finish", "before the finish", "alone first"])
def test_a_usage_chunk_anywhere_carries_no_text_and_ends_nothing(
    fast_chat: Any, place: str
) -> None:
    usage = data('{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":7}}')
    events = [
        data('{"model":"m","choices":[{"delta":{"content":"Hel"}}]}'),
        data('{"choices":[{"delta":{"content":"lo"}}]}'),
        data('{"choices":[{"delta":{},"finish_reason":"stop"}]}'),
    ]
    at = {"after the finish": 3, "before the finish": 2, "alone first": 0}[place]
    events.insert(at, usage)
    got = fast_chat.page.evaluate(FEED, events)
    assert got["texts"] == ["Hel", "lo"]
    outcome = got["outcome"]
    assert outcome["state"] == "done"
    assert outcome["finishReason"] == "stop"
    assert outcome["tokens"] == 2
    assert outcome["usageTokens"] == 7


def test_an_error_in_a_chunk_with_no_choices_is_an_error(fast_chat: Any) -> None:
    events = [
        data('{"choices":[{"delta":{"content":"Hel"}}]}'),
        data('{"choices":[],"error":{"message":"upstream broke","code":"upstream_error"}}'),
    ]
    outcome = fast_chat.page.evaluate(FEED, events)["outcome"]
    assert outcome["state"] == "error"
    assert "upstream broke" in outcome["error"]["message"]
