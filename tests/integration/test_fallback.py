"""The fallback upstream in the library: a faulting simulator as the primary, another as fallback.

The fallback simulator behaves like vLLM or Ollama (it requires ``model``) and has its own
key and seed, so its answer differs from the primary's: the text says who served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from gloo_stream import (
    APIStatusError,
    AsyncGlooClient,
    BadRequestError,
    GlooClient,
    RetryPolicy,
    ServerError,
    StreamResult,
)
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from kit import clean_settings, free_port, wait_streams_closed

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05, max_wait=5)
MESSAGES = [{"role": "user", "content": "Tell me about fallbacks."}]
PRIMARY_TEXT = "".join(expected_answer(MESSAGES))
FALLBACK_TEXT = "".join(expected_answer(MESSAGES, seed=7))
FALLBACK_MODEL = "llama3.1:8b"


@pytest.fixture(scope="module")
def fallback_sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(
        tokens_per_second=0,
        first_token_delay=0,
        seed=7,
        api_keys=("fallback-key",),
        require_model=True,
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def fallback(fallback_sim: SimulatorServer) -> Iterator[SimulatorServer]:
    fallback_sim.reset()
    yield fallback_sim
    wait_streams_closed(fallback_sim)


class Caller:
    """One client, sync or async, behind one blocking ``complete``."""

    def __init__(self, runner: asyncio.Runner | None, options: dict[str, Any]) -> None:
        self.runner = runner
        self.client: Any = AsyncGlooClient(**options) if runner else GlooClient(**options)

    def complete(self, **params: Any) -> StreamResult:
        if self.runner is None:
            return self.client.complete(MESSAGES, **params)  # type: ignore[no-any-return]
        return self.runner.run(self.client.complete(MESSAGES, **params))

    def close(self) -> None:
        if self.runner is None:
            self.client.close()
        else:
            self.runner.run(self.client.aclose())


@pytest.fixture(params=["sync", "async"])
def caller(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Builds a ``Caller`` of the twin under test from client keywords; closes them all."""
    with asyncio.Runner() as runner:
        made: list[Caller] = []

        def make(options: dict[str, Any]) -> Caller:
            made.append(Caller(runner if request.param == "async" else None, options))
            return made[-1]

        make.is_async = request.param == "async"  # type: ignore[attr-defined]
        yield make
        for built in made:
            built.close()


def complete_with(caller: Any, options: dict[str, Any], **params: Any) -> StreamResult:
    result: StreamResult = caller(options).complete(**params)
    return result


def kwargs(primary_url: str, fallback: SimulatorServer, **settings: Any) -> dict[str, Any]:
    return {
        "api_url": primary_url,
        "api_key": "sim-key",
        "retry_policy": FAST,
        "first_byte_timeout": settings.pop("first_byte_timeout", 5.0),
        "settings": clean_settings(
            gloo_fallback_api_url=fallback.api_url,
            gloo_fallback_api_key="fallback-key",
            gloo_fallback_model=FALLBACK_MODEL,
            **settings,
        ),
    }


def test_a_primary_failing_5xx_after_its_retries_is_answered_by_the_fallback(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "status", "status": 503, "times": 3})
    result = complete_with(caller, kwargs(simulator.api_url, fallback), tradition="catholic")
    assert result.text == FALLBACK_TEXT
    assert result.upstream == "fallback"
    assert result.attempts == 4  # three on the primary, one on the fallback
    assert simulator.stats()["requests"] == 3
    sent = fallback.stats()["last_request"]
    assert sent["model"] == FALLBACK_MODEL
    assert not {"auto_routing", "model_family", "tradition"} & set(sent), sent
    assert fallback.stats()["last_headers"]["authorization"] == "Bearer ***"


def test_a_healthy_primary_answers_and_the_fallback_is_never_asked(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    result = complete_with(caller, kwargs(simulator.api_url, fallback))
    assert (result.text, result.upstream, result.attempts) == (PRIMARY_TEXT, "primary", 1)
    assert fallback.stats()["requests"] == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_from_the_primary_is_never_hidden_by_the_fallback(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any, status: int
) -> None:
    simulator.push_fault({"kind": "status", "status": status})
    with pytest.raises(APIStatusError) as raised:
        complete_with(caller, kwargs(simulator.api_url, fallback))
    assert raised.value.status_code == status
    assert fallback.stats()["requests"] == 0


def test_an_unreachable_primary_moves_to_the_fallback(
    fallback: SimulatorServer, caller: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ai/v2/chat/completions"
    result = complete_with(caller, kwargs(dead, fallback))
    assert (result.text, result.upstream) == (FALLBACK_TEXT, "fallback")


def test_a_primary_with_no_first_byte_in_time_moves_to_the_fallback(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "slow_headers", "delay": 1.0, "times": 3})
    result = complete_with(caller, kwargs(simulator.api_url, fallback, first_byte_timeout=0.2))
    assert (result.text, result.upstream) == (FALLBACK_TEXT, "fallback")


def test_a_429_asking_longer_than_the_budget_moves_at_once(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "status", "status": 429, "retry_after": 120})
    result = complete_with(caller, kwargs(simulator.api_url, fallback))
    assert (result.upstream, result.attempts) == ("fallback", 2)
    assert simulator.stats()["requests"] == 1


def test_a_failure_mid_answer_is_retried_on_the_primary_not_moved(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "disconnect", "after": 3})
    result = complete_with(caller, kwargs(simulator.api_url, fallback))
    assert (result.text, result.upstream, result.attempts) == (PRIMARY_TEXT, "primary", 2)
    assert fallback.stats()["requests"] == 0


def test_when_both_fail_the_fallbacks_error_is_raised(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "status", "status": 500, "times": 3})
    fallback.push_fault({"kind": "status", "status": 502, "times": 3})
    with pytest.raises(ServerError) as raised:
        complete_with(caller, kwargs(simulator.api_url, fallback))
    assert raised.value.status_code == 502


class FakeClock:
    """The client's clock, moved by hand; its ``sleep`` moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def with_clock(caller: Any, options: dict[str, Any], fake: FakeClock) -> Any:
    """A ``Caller`` whose client reads ``fake`` and sleeps on it (the twin's kind of sleep)."""
    sleep = fake.async_sleep if caller.is_async else fake.sleep
    return caller({**options, "clock": fake, "sleep": sleep})


def test_the_breaker_skips_a_failing_primary_then_probes_it_again(
    simulator: SimulatorServer, fallback: SimulatorServer, caller: Any
) -> None:
    fake = FakeClock()
    options = kwargs(simulator.api_url, fallback, gloo_breaker_failures=2, gloo_breaker_seconds=30)
    client = with_clock(caller, options, fake)
    simulator.push_fault({"kind": "status", "status": 502, "times": 2})
    first = client.complete()
    assert (first.upstream, first.attempts) == ("fallback", 3)  # the breaker opened: no 3rd try
    assert client.client.breaker.state == "open"
    # On the fake: one backoff between the two tries on the primary, then none to move on.
    assert len(fake.slept) == 2 and 0 < fake.slept[0] <= 0.05 and fake.slept[1] == 0
    second = client.complete()  # straight to the fallback: the primary is not asked
    assert (second.upstream, second.attempts) == ("fallback", 1)
    assert simulator.stats()["requests"] == 2
    fake.now += 29.0  # still cooling down
    assert client.complete().upstream == "fallback"
    assert simulator.stats()["requests"] == 2
    fake.now += 1.5  # the cool-down has passed on the client's clock, not the wall's
    probe = client.complete()  # the primary is healthy again
    assert (probe.upstream, probe.text) == ("primary", PRIMARY_TEXT)
    assert client.client.breaker.state == "closed"


def test_a_client_without_a_fallback_behaves_as_before(
    simulator: SimulatorServer, caller: Any
) -> None:
    simulator.push_fault({"kind": "status", "status": 400})
    options = {"api_url": simulator.api_url, "api_key": "sim-key", "retry_policy": FAST}
    with pytest.raises(BadRequestError):
        complete_with(caller, {**options, "settings": clean_settings()})


def test_a_fallback_url_that_is_not_http_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="fallback_api_url must be an http"):
        GlooClient(api_key="k", fallback_api_url="ftp://example", settings=clean_settings())
