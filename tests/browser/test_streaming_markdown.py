"""The page's incremental markdown renderer (static/markdown.js), driven directly in Chromium."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def sample_markdown(sections: int, seed: int = 7) -> str:
    """A long answer with every block kind a model writes, code with blank lines included."""
    rng = random.Random(seed)
    parts = []
    for n in range(sections):
        parts.append(f"## Section {n} ✨\n")
        parts.append(
            f"Paragraph {n} with **bold**, *emphasis*, `code` and "
            f"[a link](https://example.org/{n}).\nA second line — café.\n"
        )
        parts.append("- one\n- two\n  continued\n\n- loose three\n")
        if rng.random() < 0.5:
            parts.append("```python\ndef f():\n\n    return 1  # blank line above\n```\n")
        if rng.random() < 0.3:
            parts.append("| a | b |\n|---|---|\n| 1 | 2 |\n")
        if rng.random() < 0.3:
            parts.append("> quoted\n> text\n")
        parts.append("1. first\n2. second\n")
    return "\n".join(parts)


def chunked(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        step = rng.randint(1, 12)
        out.append(text[i : i + step])
        i += step
    return out


RENDER_BOTH = """
async ({ chunks }) => {
  const { formatter } = await import('/static/conversation.js');
  const { StreamingMarkdown } = await import('/static/markdown.js');
  const normal = (el) => el.innerHTML.replace(/>\\s+</g, '><').trim();
  const incremental = document.createElement('div');
  // schedule: never (the test flushes by hand, once per chunk, as if each had its own frame)
  const md = new StreamingMarkdown(incremental, formatter, { schedule: () => {} });
  let maxOpen = 0;
  for (const chunk of chunks) {
    md.append(chunk);
    md.flush();
    maxOpen = Math.max(maxOpen, md._tail.length);
  }
  md.flush(true);
  const parts = incremental.querySelectorAll('.md-part').length;
  for (const part of [...incremental.querySelectorAll('.md-part')]) {
    part.replaceWith(...part.childNodes);
  }
  const whole = document.createElement('div');
  whole.append(formatter.fragment(chunks.join('')));
  return { incremental: normal(incremental), whole: normal(whole), parts, maxOpen, text: md.text };
}
"""


def test_incremental_render_equals_rendering_the_whole_answer(fast_chat: Any) -> None:
    text = sample_markdown(12)
    chunks = chunked(text, random.Random(3))
    got = fast_chat.page.evaluate(RENDER_BOTH, {"chunks": chunks})
    assert got["text"] == text
    assert got["incremental"] == got["whole"]
    assert got["parts"] > 20  # finished blocks were sealed, not re-rendered each time


def test_only_the_open_block_is_re_rendered(fast_chat: Any) -> None:
    text = sample_markdown(120)  # ~25 KB
    got = fast_chat.page.evaluate(RENDER_BOTH, {"chunks": chunked(text, random.Random(5))})
    # The re-rendered part stays the size of a block or two, however long the answer grows.
    assert got["maxOpen"] < 400 < len(text) / 50
    assert got["incremental"] == got["whole"]


def test_blank_lines_inside_code_fences_do_not_split_the_block(fast_chat: Any) -> None:
    text = "Intro\n\n~~~js\nlet a = 1;\n\n\nlet b = 2;\n```\nstill code\n~~~\n\nAfter\n"
    got = fast_chat.page.evaluate(RENDER_BOTH, {"chunks": list(text)})
    assert got["incremental"] == got["whole"]
    assert got["incremental"].count("<pre>") == 1
    assert "still code" in got["incremental"].split("</pre>")[0]


def test_rendering_happens_at_most_once_per_animation_frame(fast_chat: Any) -> None:
    got = fast_chat.page.evaluate(
        """async () => {
            const { formatter } = await import('/static/conversation.js');
            const { StreamingMarkdown } = await import('/static/markdown.js');
            const el = document.createElement('div');
            document.body.append(el);
            const md = new StreamingMarkdown(el, formatter);
            for (let i = 0; i < 300; i++) md.append(`word${i} `);
            const before = md.renders;
            const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
            await frame();
            await frame();
            const after = md.renders;
            el.remove();
            return { before, after, text: el.textContent };
        }"""
    )
    assert got["before"] == 0  # appending never renders synchronously
    assert got["after"] == 1  # 300 chunks in one frame: one render
    assert got["text"].strip().startswith("word0 word1")


def test_a_half_written_markup_line_is_held_back_until_the_end(fast_chat: Any) -> None:
    got = fast_chat.page.evaluate(
        """async () => {
            const { formatter } = await import('/static/conversation.js');
            const { StreamingMarkdown } = await import('/static/markdown.js');
            const el = document.createElement('div');
            const md = new StreamingMarkdown(el, formatter, { schedule: () => {} });
            md.append('Intro line\\n- **');
            md.flush();
            const during = el.innerHTML;
            md.flush(true);
            return { during, after: el.innerHTML };
        }"""
    )
    assert "<li>" not in got["during"]  # no empty bullet flashing up mid-stream
    assert "<li>" in got["after"]
