"""The page's exact-model setting, and its default routing through a proxy that sets GLOO_MODEL.

Chromium -> page -> proxy -> simulator, on loopback; the second stack's simulator requires a
model, as vLLM or Ollama do, so "Default" only works because the proxy fills in GLOO_MODEL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for

pytestmark = pytest.mark.browser

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
DEFAULT_MODEL = "llama-3.1-8b-instruct"
SETTLED = """() => {
    const turn = [...document.querySelectorAll('.turn.assistant')].at(-1);
    return turn && !['connecting', 'streaming', undefined].includes(turn.dataset.state);
}"""


def ask(page: Any, text: str) -> Any:
    """Send a message as a user would and wait until its answer has ended; the answer turn."""
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")
    page.wait_for_function(SETTLED)
    return page.locator(".turn.assistant").last


def test_exact_model_is_sent_stored_and_only_editable_when_chosen(fast_chat: Any) -> None:
    page, simulator = fast_chat.page, fast_chat.simulator
    page.locator("#settings-toggle").click()
    assert page.locator("#model").is_disabled()  # "Default" is chosen on a fresh profile
    page.locator("input[name=routing][value=model]").check()
    assert page.locator("#model").is_enabled()
    assert page.locator("#model-family").is_disabled()
    page.locator("#model").fill("  gloo-anthropic-claude-haiku-4.5 ")
    page.locator("#model").press("Tab")  # change fires on leaving the field
    turn = ask(page, "Pick my model")
    assert turn.get_attribute("data-state") == "done"
    body = simulator.stats()["last_request"]
    assert body["model"] == "gloo-anthropic-claude-haiku-4.5"
    assert "auto_routing" not in body
    assert "model_family" not in body

    fast_chat.reload()
    assert page.locator("#model").input_value() == "  gloo-anthropic-claude-haiku-4.5 "
    assert page.locator("input[name=routing][value=model]").is_checked()

    page.locator("#settings-toggle").click()
    page.locator("input[name=routing][value=auto]").check()
    assert page.locator("#model").is_disabled()
    ask(page, "Now let the proxy choose")
    body = simulator.stats()["last_request"]
    assert "model" not in body  # the page sent no routing; this proxy has no GLOO_MODEL
    assert body["auto_routing"] is True


@pytest.fixture(scope="module")
def model_stack() -> Iterator[tuple[ProxyServer, SimulatorServer]]:
    """A proxy with GLOO_MODEL in front of a simulator that refuses requests without a model."""
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, require_model=True)
    with SimulatorServer(config) as simulator:
        settings = settings_for(
            simulator,
            gloo_model=DEFAULT_MODEL,
            proxy_rate_limit="",
            gloo_max_retries=0,
            proxy_node_modules=str(NODE_MODULES),
        )
        with ProxyServer(settings) as proxy:
            yield proxy, simulator


def test_default_routing_uses_the_proxys_gloo_model(
    context: Any, model_stack: tuple[ProxyServer, SimulatorServer], started: Callable[[Any], None]
) -> None:
    proxy, simulator = model_stack
    simulator.reset()
    page = context.new_page()
    page.goto(proxy.url + "/")
    started(page)
    turn = ask(page, "Who answers?")
    assert turn.get_attribute("data-state") == "done"
    answer = "".join(expected_answer([{"role": "user", "content": "Who answers?"}]))
    assert answer.split()[1] in turn.locator(".answer").text_content()
    assert simulator.stats()["last_request"]["model"] == DEFAULT_MODEL
