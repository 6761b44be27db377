"""Hostile model output executes nothing; the page works with the keyboard alone."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

# Each payload sets window.__xss if it ever runs. Streamed through the simulator's `answer`
# fault, so the tags arrive split across many chunks, as a real model would send them.
PAYLOAD = """# Payloads

<img src=x onerror="window.__xss='img'">

<script>window.__xss='script'</script>

Inline <b onmouseover="window.__xss='b'">bold?</b> and <svg onload="window.__xss='svg'"></svg>

[click me](javascript:window.__xss='md-link')

<a href="javascript:window.__xss='a'">raw link</a>

<iframe src="javascript:window.__xss='iframe'"></iframe>

![img](x" onerror="window.__xss='alt')

<details open ontoggle="window.__xss='details'"><summary>s</summary></details>

`<img src=x onerror=alert(1)>` in code is fine.
"""


def test_html_script_and_handlers_in_model_output_execute_nothing(fast_chat: Any) -> None:
    page = fast_chat.page
    fast_chat.simulator.push_fault({"kind": "answer", "text": PAYLOAD})
    fast_chat.ask("Say something nasty")
    turn = fast_chat.wait_settled()
    answer = turn.locator(".answer")
    assert fast_chat.state() == "done"
    # Hover and click everything that could carry a handler or a javascript: URL.
    for link in answer.locator("a").all():
        link.click(modifiers=[], no_wait_after=True)
    answer.locator("h1").hover()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__xss") is None

    # Nothing dangerous made it into the DOM at all...
    dangerous = "script, iframe, svg, object, embed, details, [onerror], [onload], [onmouseover]"
    assert answer.locator(dangerous).count() == 0
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('.answer a')].map(a => a.getAttribute('href'))"
    )
    assert not [h for h in hrefs if h and h.strip().lower().startswith("javascript:")]
    # ...and the raw HTML is shown as text, so the reader sees what the model wrote.
    text = answer.text_content()
    assert "<img src=x onerror=" in text
    assert "<script>window.__xss='script'</script>" in text
    assert '<a href="javascript:' in text
    assert answer.locator("h1").text_content() == "Payloads"
    assert fast_chat.errors == []


def test_user_text_is_shown_as_typed_never_as_markup(fast_chat: Any) -> None:
    page = fast_chat.page
    typed = "<img src=x onerror=\"window.__xss='user'\"> **not bold**"
    fast_chat.ask(typed)
    fast_chat.wait_settled()
    bubble = page.locator(".turn.user .bubble")
    assert bubble.text_content() == typed
    assert bubble.locator("img, strong").count() == 0
    assert page.evaluate("window.__xss") is None


def _focused(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.id || e.getAttribute('name') + '=' + e.value || e.tagName; }"
        )
    )


def _to_top(page: Any) -> None:
    """Put focus on the page's first stop (the skip link), as after a fresh Tab into it."""
    page.evaluate("() => document.querySelector('.skip-link').focus()")
    assert page.evaluate("document.activeElement.className") == "skip-link"


def test_the_page_works_with_the_keyboard_alone(fast_chat: Any) -> None:
    page, keyboard = fast_chat.page, fast_chat.page.keyboard
    assert _focused(page) == "prompt"  # ready to type on arrival

    # Shift+Enter adds a line, Enter sends.
    keyboard.type("First line")
    keyboard.press("Shift+Enter")
    keyboard.type("second line")
    assert page.locator("#prompt").input_value() == "First line\nsecond line"
    keyboard.press("Enter")
    fast_chat.wait_settled()
    assert page.locator(".turn.user .bubble").text_content() == "First line\nsecond line"
    assert page.locator("#prompt").input_value() == ""

    # From the top of the page: skip link, New chat, Settings, then into the settings panel.
    _to_top(page)
    keyboard.press("Tab")
    assert _focused(page) == "new-chat"
    keyboard.press("Tab")
    assert _focused(page) == "settings-toggle"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # visible focus
    keyboard.press("Enter")
    assert page.locator("#settings-toggle").get_attribute("aria-expanded") == "true"
    keyboard.press("Tab")
    assert _focused(page) == "routing=auto"
    keyboard.press("ArrowDown")  # radio group: arrows move and select
    assert page.locator("input[name=routing][value=family]").is_checked()
    keyboard.press("Tab")
    assert _focused(page) == "model-family"
    keyboard.press("ArrowDown")  # openai -> anthropic
    assert page.locator("#model-family").input_value() == "anthropic"

    # Back to the message box by the skip link, then send with Enter.
    _to_top(page)
    keyboard.press("Enter")
    assert _focused(page) == "prompt"
    keyboard.type("Routed by keyboard")
    keyboard.press("Enter")
    fast_chat.wait_settled(2)
    assert fast_chat.simulator.stats()["last_request"]["model_family"] == "anthropic"

    # New chat by keyboard.
    _to_top(page)
    keyboard.press("Tab")
    assert _focused(page) == "new-chat"
    keyboard.press("Enter")
    assert page.locator(".turn").count() == 0
    assert _focused(page) == "prompt"


def test_stop_by_keyboard_returns_focus_to_the_message_box(slow_chat: Any) -> None:
    page, keyboard = slow_chat.page, slow_chat.page.keyboard
    slow_chat.ask("Long answer please")
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant').dataset.state === 'streaming'"
    )
    page.locator("#stop").focus()
    keyboard.press("Enter")
    slow_chat.wait_settled()
    assert slow_chat.state() == "stopped"
    assert _focused(page) == "prompt"  # not lost on the now-disabled Stop button
    # The Retry button is reachable and works from the keyboard.
    slow_chat.answer().locator("button.retry").focus()
    keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant')?.dataset.state === 'streaming'"
    )
    keyboard.press("Escape")
    slow_chat.wait_settled()
    assert slow_chat.simulator.wait_until(lambda stats: stats["streams_open"] == 0, timeout=5)
