"""The page while an answer is half-written: unterminated inline markdown in the open block
(``**bold``, `` `code ``, ``[link``) never shows raw markers, and a stopped answer's cut
markers are closed (static/partial-markdown.js, used by StreamingMarkdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gloo_stream.simulator import expected_answer

pytestmark = pytest.mark.browser

# One table for both implementations: the terminal's close_open_inline passes it too.
CASES = json.loads((Path(__file__).parents[1] / "partial_markdown_cases.json").read_text())
RAW_MARKERS = ("*", "`", "[", "]")


def test_the_page_closes_open_markup_as_the_terminal_does(fast_chat: Any) -> None:
    got = fast_chat.page.evaluate(
        """async (cases) => {
            const { closeOpenInline } = await import('/static/partial-markdown.js');
            return cases.map(([text]) => closeOpenInline(text));
        }""",
        CASES["cases"],
    )
    assert got == [shown for _, shown in CASES["cases"]]


# Every frame of an answer streamed one token per frame: the open block's text as shown.
FRAMES = """
async (tokens) => {
  const { formatter } = await import('/static/conversation.js');
  const { StreamingMarkdown } = await import('/static/markdown.js');
  const el = document.createElement('div');
  const md = new StreamingMarkdown(el, formatter, { schedule: () => {} });
  const frames = [];
  let text = '';
  for (const token of tokens) {
    text += token;
    md.append(token);
    md.flush();
    const shown = el.cloneNode(true);
    shown.querySelectorAll('.codeblock-bar').forEach((bar) => bar.remove());
    frames.push([text, shown.textContent]);
  }
  md.flush(true);
  return { frames, final: el.innerHTML };
}
"""


@pytest.mark.parametrize("prompt", ["hi", "How do tokens stream?", "Explain SSE"])
def test_no_frame_of_a_streamed_answer_shows_raw_markers(fast_chat: Any, prompt: str) -> None:
    tokens = expected_answer([{"role": "user", "content": prompt}])
    got = fast_chat.page.evaluate(FRAMES, tokens)
    frames = got["frames"]
    flashes = [(text, shown) for text, shown in frames if any(m in shown for m in RAW_MARKERS)]
    assert flashes == []
    assert "<strong>" in got["final"]
    assert "<code" in got["final"]


CUT = """
async ({ text, cut }) => {
  const { formatter } = await import('/static/conversation.js');
  const { StreamingMarkdown } = await import('/static/markdown.js');
  const el = document.createElement('div');
  const md = new StreamingMarkdown(el, formatter, { schedule: () => {} });
  md.append(text);
  md.flush();
  md.flush(true, { cut });
  return { html: el.innerHTML, text: el.textContent };
}
"""


def test_a_stopped_answer_has_its_cut_markers_closed(fast_chat: Any) -> None:
    got = fast_chat.page.evaluate(CUT, {"text": "The answer is **almost `don", "cut": True})
    assert "<strong>almost <code>don</code></strong>" in got["html"]
    assert "*" not in got["text"]
    assert "`" not in got["text"]


def test_a_finished_answer_is_rendered_as_sent(fast_chat: Any) -> None:
    # A literal, unmatched marker in a complete answer is the model's text: never "fixed".
    got = fast_chat.page.evaluate(CUT, {"text": "Use a*b, not **", "cut": False})
    assert got["text"].strip() == "Use a*b, not **"


def test_stopping_mid_answer_leaves_no_raw_markers(fast_chat: Any) -> None:
    page, prompt = fast_chat.page, "Tell me about streams"
    tokens = expected_answer([{"role": "user", "content": prompt}])
    text = "".join(tokens)
    # Stall the stream two tokens into the bold key idea, then stop it there.
    bold = text.index("**")
    after = next(n for n in range(len(tokens)) if len("".join(tokens[:n])) > bold + 4) + 1
    fast_chat.simulator.push_fault({"kind": "stall", "after": after, "duration": 30})
    fast_chat.ask(prompt)
    cut = "".join(tokens[:after])
    chat = page.evaluate_handle("async () => (await import('/static/app.js')).model")
    page.wait_for_function("([chat, cut]) => chat.turns.at(-1).content === cut", arg=[chat, cut])
    page.locator("#stop").click()
    turn = fast_chat.wait_settled()
    assert fast_chat.state() == "stopped"
    assert cut.count("**") == 1  # the stop really cut the bold open
    assert turn.locator(".answer strong").count() == 1
    assert "*" not in turn.locator(".answer").text_content()
    # After a reload the stopped answer is rendered from history the same way.
    fast_chat.reload()
    assert fast_chat.answer().locator(".answer strong").count() == 1
    assert "*" not in fast_chat.answer().locator(".answer").text_content()
