"""Browser test fixtures: one headless Debian Chromium per session, driven by Playwright.

The page is served by the real proxy in front of the offline simulator, both on loopback,
with the marked and DOMPurify copies shipped inside the package (what a pip user gets): a
fast pair (answers arrive at once) and a slow pair (answers take a few seconds, for
watching them stream and stopping them). Each test gets a fresh browser context, so
localStorage starts empty.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scripted_upstream import ScriptedStack, ScriptedUpstream, proxy_settings_for

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# As the machine notes prescribe: without the networking flags Chromium phones home at every
# start, and this machine refuses those connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# The page's modules export what the tests reach into (nothing is put on globalThis). Importing
# app.js, the module that starts the page, resolves once it and every module it imports have
# run, and rejects with the page's own error if one of them threw.
STARTED = "async () => { await import('/static/app.js'); }"


def wait_started(page: Any) -> None:
    """Wait until the page's modules have run (at once after ``goto``: modules run before load)."""
    page.evaluate(STARTED)


@dataclass
class Stack:
    """A simulator and the proxy in front of it (which serves the page)."""

    simulator: SimulatorServer
    proxy: ProxyServer

    @property
    def url(self) -> str:
        """The chat page."""
        return self.proxy.url + "/"


def _stack(config: SimulatorConfig, **overrides: Any) -> Iterator[Stack]:
    with SimulatorServer(config) as simulator:
        settings = settings_for(
            simulator,
            proxy_rate_limit="",
            gloo_max_retries=0,  # each fault must reach the page, not be retried away
            **overrides,
        )
        with ProxyServer(settings) as proxy:
            yield Stack(simulator, proxy)


@pytest.fixture(scope="session")
def fast_stack() -> Iterator[Stack]:
    """Answers arrive as fast as the sockets allow."""
    yield from _stack(SimulatorConfig(tokens_per_second=0, first_token_delay=0))


@pytest.fixture(scope="session")
def slow_stack() -> Iterator[Stack]:
    """About 25 tokens a second: a typical answer takes 2-4 s, long enough to watch."""
    yield from _stack(SimulatorConfig(tokens_per_second=25, first_token_delay=0.1))


@pytest.fixture(scope="session")
def bare_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A proxy whose marked and DOMPurify are missing (PROXY_NODE_MODULES: an empty folder)."""
    empty = tmp_path_factory.mktemp("no-node-modules")
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0)
    yield from _stack(config, proxy_node_modules=str(empty))


@pytest.fixture
def fast(fast_stack: Stack) -> Stack:
    """The fast stack with zeroed counters and no queued faults."""
    fast_stack.simulator.reset()
    return fast_stack


@pytest.fixture
def slow(slow_stack: Stack) -> Stack:
    """The slow stack with zeroed counters and no queued faults."""
    slow_stack.simulator.reset()
    return slow_stack


@pytest.fixture(scope="session")
def scripted_stack() -> Iterator[ScriptedStack]:
    """The proxy in front of a scripted upstream (scripted_upstream.py), for the whole session."""
    with ScriptedUpstream() as upstream, ProxyServer(proxy_settings_for(upstream)) as proxy:
        yield ScriptedStack(upstream, proxy)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the whole session; skipped only when Chromium is not installed."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed ({CHROMIUM}): `make browser-deps` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh profile (empty localStorage) per test."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    yield context
    context.close()


class Chat:
    """The chat page of one stack, with the few actions the tests repeat."""

    def __init__(self, page: Any, stack: Any) -> None:
        self.page = page
        self.stack = stack
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    @property
    def simulator(self) -> SimulatorServer:
        """The simulator behind the proxy."""
        simulator: SimulatorServer = self.stack.simulator
        return simulator

    def open(self) -> Chat:
        """Load the page and wait until its modules have run."""
        self.page.goto(self.stack.url)
        wait_started(self.page)
        return self

    def reload(self) -> None:
        """Reload the page (the conversation comes back from localStorage) and wait for it."""
        self.page.reload()
        wait_started(self.page)

    def ask(self, text: str) -> None:
        """Type a message and send it with Enter, as a user would."""
        self.page.locator("#prompt").fill(text)
        self.page.locator("#prompt").press("Enter")

    def answer(self, number: int = 1) -> Any:
        """The ``number``-th answer turn (1-based)."""
        return self.page.locator(".turn.assistant").nth(number - 1)

    def wait_settled(self, number: int = 1, timeout: float = 10_000) -> Any:
        """Wait until the ``number``-th answer has ended, any way; return its locator."""
        self.page.wait_for_function(
            """(index) => {
                const turn = document.querySelectorAll('.turn.assistant')[index];
                return turn && !['connecting', 'streaming', 'reconnecting', undefined]
                    .includes(turn.dataset.state);
            }""",
            arg=number - 1,
            timeout=timeout,
        )
        return self.answer(number)

    def state(self, number: int = 1) -> str:
        """The ``data-state`` of an answer turn."""
        return str(self.answer(number).get_attribute("data-state"))


@pytest.fixture
def started() -> Callable[[Any], None]:
    """For tests that open their own page: wait until its modules have run."""
    return wait_started


@pytest.fixture
def open_chat(context: Any) -> Callable[[Any], Chat]:
    """Opens the chat page of any stack-like object (``url``, ``simulator``) in a new tab."""
    return lambda stack: Chat(context.new_page(), stack).open()


@pytest.fixture
def fast_chat(context: Any, fast: Stack) -> Chat:
    """The chat page on the fast stack, loaded."""
    return Chat(context.new_page(), fast).open()


@pytest.fixture
def slow_chat(context: Any, slow: Stack) -> Chat:
    """The chat page on the slow stack, loaded."""
    return Chat(context.new_page(), slow).open()


@pytest.fixture
def bare_chat(context: Any, bare_stack: Stack) -> Chat:
    """The chat page of a proxy whose libraries are missing, loaded."""
    bare_stack.simulator.reset()
    return Chat(context.new_page(), bare_stack).open()
