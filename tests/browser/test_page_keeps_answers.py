"""The page keeps an answer as it streams: a reload, a closed tab or a crash keeps what arrived.

Without resumable streams (the default), an answer a reload interrupted comes back with its
text, says the reload interrupted it (not the model), and offers Retry; a stopped answer keeps
its Retry button after a reload. (With PROXY_RESUME_WINDOW the reload continues the answer:
test_resume_page.py.) The slow stack: the simulator writes about 25 tokens a second.
"""

from __future__ import annotations

from typing import Any

import pytest

from gloo_stream.simulator import expected_answer

pytestmark = pytest.mark.browser

PROMPT = "Tell me about rivers, at length."
ANSWER = "".join(expected_answer([{"role": "user", "content": PROMPT}]))
SAVED = """() => {
    const saved = JSON.parse(localStorage.getItem('gloo-stream.chat.v1') || '{"turns": []}');
    return saved.turns.at(-1) ?? null;
}"""
LAST_TURN = "async () => (await import('/static/app.js')).model.turns.at(-1)"
SHOWN = "() => document.querySelector('.turn.assistant .answer').textContent.trim().length"


def saved_while_streaming(chat: Any, at_least: int) -> dict[str, Any]:
    """Wait until the answer in flight is saved with at least ``at_least`` characters."""
    chat.page.wait_for_function(
        f"""() => {{
            const turn = ({SAVED})();
            return turn && turn.role === 'assistant' && turn.content.length >= {at_least};
        }}"""
    )
    turn: dict[str, Any] = chat.page.evaluate(SAVED)
    return turn


def test_the_answer_is_saved_as_it_streams_and_a_reload_keeps_it(slow_chat: Any) -> None:
    chat = slow_chat
    chat.ask(PROMPT)
    chat.page.wait_for_function(f"() => ({SHOWN})() > 30")
    turn = saved_while_streaming(chat, 30)
    # Saved while the answer is still being written (before, it was saved only at its end).
    assert turn["state"] == "streaming"
    assert ANSWER.startswith(turn["content"])
    assert chat.state() == "streaming"
    chat.reload()
    answer = chat.answer()
    assert chat.state() == "interrupted"
    kept = chat.page.evaluate(LAST_TURN)["content"]
    assert len(kept) >= len(turn["content"])  # at least what was saved mid-answer
    assert ANSWER.startswith(kept)
    assert "The short answer" in answer.locator(".answer h2").text_content()
    notice = answer.locator(".notice").text_content()
    assert "interrupted when the page was reloaded" in notice
    assert "cut off" not in notice  # the model did not cut it: the reload did
    assert answer.locator(".meta").text_content().startswith("Interrupted")
    answer.locator(".retry").click()
    chat.wait_settled(timeout=20_000)
    assert chat.state() == "done"
    assert chat.page.locator(".turn.assistant").count() == 1
    assert chat.page.evaluate(SAVED)["content"] == ANSWER
    assert chat.errors == []


def test_a_closed_tab_keeps_what_arrived(slow_chat: Any, context: Any, started: Any) -> None:
    chat = slow_chat
    chat.ask(PROMPT)
    turn = saved_while_streaming(chat, 40)
    chat.page.close()  # the tab goes away mid-answer
    page = context.new_page()
    page.goto(chat.stack.url)
    started(page)
    answer = page.locator(".turn.assistant")
    assert answer.get_attribute("data-state") == "interrupted"
    kept = page.evaluate(LAST_TURN)["content"]
    assert len(kept) >= len(turn["content"])
    assert ANSWER.startswith(kept)
    assert "The short answer" in answer.locator(".answer").text_content()
    assert answer.locator(".retry").count() == 1


def test_a_stopped_answer_keeps_its_retry_button_after_a_reload(slow_chat: Any) -> None:
    chat = slow_chat
    chat.ask(PROMPT)
    chat.page.wait_for_function(f"() => ({SHOWN})() > 20")
    chat.page.locator("#stop").click()
    chat.wait_settled()
    assert chat.state() == "stopped"
    shown = chat.answer().locator(".answer").text_content()
    chat.reload()
    answer = chat.answer()
    assert chat.state() == "stopped"
    assert answer.locator(".answer").text_content() == shown
    assert "You stopped this answer" in answer.locator(".notice").text_content()
    assert answer.locator(".retry").count() == 1
    answer.locator(".retry").click()
    chat.wait_settled(timeout=20_000)
    assert chat.state() == "done"
