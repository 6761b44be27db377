"""A continued answer in the page with the REAL continuing proxy (issue 24, items 3-4).

The simulator cuts the answer once mid-way (its continuation repeats the last 16+
characters, as models do); the proxy itself continues it inside the same response. The page
shows one answer, equal to the uninterrupted one, with the seam marked where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for

pytestmark = pytest.mark.browser

PROMPT = "Tell me about rivers, at length."
TOKENS = 60
CUT_AFTER = 25
TOKEN_TEXTS = expected_answer([{"role": "user", "content": PROMPT}], answer_tokens=TOKENS)
ANSWER = "".join(TOKEN_TEXTS)
SAVED_TURNS = "() => JSON.parse(localStorage.getItem('gloo-stream.chat.v1')).turns"
TITLES = {
    "disconnected": "the connection to the model dropped.",
    "upstream_error": None,  # any wording: the reason's own sentence
    "truncated": None,
}


@dataclass
class ContinuingStack:
    """The simulator and a proxy that continues cut answers (both resumable and not)."""

    simulator: SimulatorServer
    proxy: ProxyServer

    @property
    def url(self) -> str:
        """The chat page."""
        return self.proxy.url + "/"


@pytest.fixture(scope="module", params=[0.0, 30.0], ids=["plain", "resumable"])
def continuing_stack(request: pytest.FixtureRequest) -> Iterator[ContinuingStack]:
    config = SimulatorConfig(
        tokens_per_second=40, first_token_delay=0, answer_tokens=TOKENS, continue_repeat_chars=16
    )
    with SimulatorServer(config) as simulator:
        settings = settings_for(simulator, proxy_rate_limit="", proxy_resume_window=request.param)
        with ProxyServer(settings) as proxy:
            yield ContinuingStack(simulator, proxy)


@pytest.fixture
def stack(continuing_stack: ContinuingStack) -> Iterator[ContinuingStack]:
    continuing_stack.simulator.reset()
    yield continuing_stack
    assert continuing_stack.simulator.wait_until(lambda s: s["streams_open"] == 0, timeout=10)


def answer_in_page(open_chat: Callable[[Any], Any], stack: ContinuingStack) -> tuple[Any, Any]:
    chat = open_chat(stack)
    chat.ask(PROMPT)
    return chat, chat.wait_settled()


@pytest.mark.parametrize("kind", ["disconnect", "error", "truncate"])
def test_the_page_shows_the_proxys_continued_answer_whole_with_its_seam(
    open_chat: Callable[[Any], Any], stack: ContinuingStack, kind: str
) -> None:
    stack.simulator.push_fault({"kind": kind, "after": CUT_AFTER})
    chat, answer = answer_in_page(open_chat, stack)
    assert chat.state() == "done"
    turn = chat.page.evaluate(SAVED_TURNS)[-1]
    assert turn["content"] == ANSWER, turn  # every character once, none lost
    (seam,) = turn["seams"]
    # The page keeps the offset in its own (UTF-16) string units: the 🌱 counts twice.
    before = "".join(TOKEN_TEXTS[:CUT_AFTER])
    assert seam["offset"] == len(before.encode("utf-16-le")) // 2 and seam["n"] == 1
    shown = " ".join(answer.locator(".answer").text_content().split())
    assert shown.endswith("steady pacing,") and "Short version first!" in shown  # all of it
    mark = answer.locator(".answer .seam")
    assert mark.count() == 1
    title = mark.get_attribute("title")
    assert title.startswith("Continued here (continuation 1): ")
    if (reason_text := TITLES.get(seam["reason"])) is not None:
        assert title.endswith(reason_text)
    assert "Continued (1 seam)" in answer.locator(".meta").text_content()
    assert answer.locator(".notice").is_hidden()
    assert chat.errors == []
    assert stack.simulator.stats()["requests"] == 2  # the cut answer and its rest
