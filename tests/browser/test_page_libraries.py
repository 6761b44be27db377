"""The page's libraries: a page that says so plainly when they are missing (plain text that
keeps its line breaks, a visible notice), the shipped ones rendering by default, and the
page's own modules adding nothing to the global scope beside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_without_its_libraries_the_page_says_markdown_is_off(bare_chat: Any) -> None:
    page = bare_chat.page
    notice = page.locator("#markdown-off")
    assert notice.is_visible()
    assert "Markdown is off" in notice.text_content()
    assert "Markdown is off" in page.locator("#status").text_content()
    vendor = httpx.get(bare_chat.stack.proxy.url + "/vendor/marked.js")
    assert vendor.status_code == 404
    assert "PROXY_NODE_MODULES" in vendor.json()["error"]["message"]

    bare_chat.ask("Show me markdown")
    answer = bare_chat.wait_settled().locator(".answer")
    assert bare_chat.state() == "done"
    assert answer.evaluate("(el) => getComputedStyle(el).whiteSpace") == "pre-wrap"
    # innerText follows the layout: with pre-wrap the answer's own lines stay lines.
    lines = [line for line in answer.evaluate("(el) => el.innerText").split("\n") if line]
    assert len(lines) >= 5
    assert lines[0].startswith("## ")  # shown as the raw text it is, safely
    assert answer.locator("strong").count() == 0
    assert notice.is_visible()  # still there once answers arrive
    assert bare_chat.errors == []


def test_the_shipped_libraries_render_markdown(fast_chat: Any) -> None:
    assert fast_chat.page.locator("#markdown-off").is_hidden()
    versions = fast_chat.page.evaluate("() => [typeof marked.parse, DOMPurify.version]")
    assert versions[0] == "function"
    assert versions[1]  # DOMPurify names its version


def test_the_page_adds_only_the_libraries_to_the_global_scope(
    context: Any, fast: Any, started: Callable[[Any], None]
) -> None:
    # The page's modules export what tests reach into; only the two UMD libraries are global.
    names = "() => Object.getOwnPropertyNames(globalThis)"
    page = context.new_page()
    page.goto(fast.proxy.url + "/health")  # a page of this origin that runs no script
    before = set(page.evaluate(names))
    page.goto(fast.url)
    started(page)
    assert set(page.evaluate(names)) - before == {"marked", "DOMPurify"}
