"""The page resumes its answer: a killed connection, a reload mid-answer, and Stop (DELETE).

Chromium reaches the proxy (``PROXY_RESUME_WINDOW`` on) through a loopback TCP relay
(``kit.TcpRelay``) the test can cut, as a phone changing networks drops its connections.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import TcpRelay

pytestmark = pytest.mark.browser

PROMPT = "Tell me about rivers, at length."
TOKENS = 80
ANSWER = "".join(expected_answer([{"role": "user", "content": PROMPT}], answer_tokens=TOKENS))
LAST_TURN = "async () => (await import('/static/app.js')).model.turns.at(-1)"
TEXT_LENGTH = "() => document.querySelector('.turn.assistant .answer').textContent.length"


@dataclass
class RelayedStack:
    """A simulator and the proxy in front of it, reached through a relay that can cut the
    page's connections."""

    simulator: SimulatorServer
    proxy: ProxyServer
    relay: TcpRelay

    @property
    def url(self) -> str:
        """The chat page, through the relay."""
        return self.relay.url + "/"


@pytest.fixture(scope="module")
def resumable_stack() -> Iterator[RelayedStack]:
    config = SimulatorConfig(tokens_per_second=25, first_token_delay=0, answer_tokens=TOKENS)
    with SimulatorServer(config) as simulator:
        settings = settings_for(simulator, proxy_rate_limit="", proxy_resume_window=30)
        with ProxyServer(settings) as proxy:
            relay = TcpRelay(("127.0.0.1", proxy.port))
            yield RelayedStack(simulator, proxy, relay)
            relay.close()


@pytest.fixture
def chat(open_chat: Callable[[Any], Any], resumable_stack: RelayedStack) -> Iterator[Any]:
    resumable_stack.simulator.reset()
    yield open_chat(resumable_stack)
    assert resumable_stack.simulator.wait_until(lambda s: s["streams_open"] == 0, timeout=10)


def wait_for_text(chat: Any, more_than: int) -> None:
    chat.page.wait_for_function(f"() => ({TEXT_LENGTH})() > {more_than}")


def test_a_killed_connection_reconnects_and_the_answer_completes(chat: Any) -> None:
    stack = chat.stack
    assert isinstance(stack, RelayedStack)
    chat.ask(PROMPT)
    wait_for_text(chat, 40)
    before = chat.page.evaluate(TEXT_LENGTH)
    cut_at = time.monotonic()
    stack.relay.cut(refuse_for=0.5)  # the network is gone for half a second
    chat.page.wait_for_selector('.turn.assistant[data-state="reconnecting"]', timeout=5000)
    assert "Reconnecting" in chat.page.locator("#status").text_content()
    wait_for_text(chat, before + 1)
    back = time.monotonic() - cut_at
    print(f"\npage: first resumed token {back * 1000:.0f} ms after the cut (0.5 s offline)")
    chat.wait_settled()
    assert chat.state() == "done"
    turn = chat.page.evaluate(LAST_TURN)
    assert turn["content"] == ANSWER, "every token once, none missing"
    assert "streamId" not in turn, "a finished answer keeps no stream id"
    assert stack.simulator.stats()["requests"] == 1, "resumed, not asked again"
    assert chat.errors == []


def test_a_quick_drop_is_resumed_at_once(chat: Any) -> None:
    stack = chat.stack
    assert isinstance(stack, RelayedStack)
    chat.ask(PROMPT)
    wait_for_text(chat, 40)
    before = chat.page.evaluate(TEXT_LENGTH)
    cut_at = time.monotonic()
    stack.relay.cut()
    wait_for_text(chat, before + 1)
    print(f"\npage: first resumed token {(time.monotonic() - cut_at) * 1000:.0f} ms after a drop")
    chat.wait_settled()
    assert chat.page.evaluate(LAST_TURN)["content"] == ANSWER


def test_a_reload_mid_answer_continues_the_same_answer(chat: Any) -> None:
    chat.ask(PROMPT)
    wait_for_text(chat, 60)
    chat.page.wait_for_function(
        "() => (JSON.parse(localStorage.getItem('gloo-stream.chat.v1')).turns.at(-1)"
        " ?.lastEventId ?? '') !== ''"
    )
    chat.reload()
    chat.wait_settled(timeout=15_000)
    assert chat.state() == "done"
    assert chat.page.evaluate(LAST_TURN)["content"] == ANSWER
    assert chat.answer().locator(".answer").text_content().strip() != ""
    assert chat.simulator.stats()["requests"] == 1, "the reload did not ask again"
    assert chat.errors == []


def test_stop_deletes_the_answer_so_the_proxy_stops_generating_it(chat: Any) -> None:
    chat.ask(PROMPT)
    wait_for_text(chat, 20)
    started = time.monotonic()
    chat.page.locator("#stop").click()
    assert chat.simulator.wait_until(lambda s: s["streams_open"] == 0, timeout=1.0), (
        "with resuming on, only the DELETE stops the upstream"
    )
    assert time.monotonic() - started < 2
    assert chat.state() == "stopped"
    assert chat.page.evaluate(LAST_TURN)["content"] != ANSWER
