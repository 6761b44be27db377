"""The fallback rule: which failures move a call to the fallback, and when the breaker skips."""

from __future__ import annotations

import pytest

from gloo_stream.accumulate import StreamResult
from gloo_stream.breaker import CircuitBreaker
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    GlooError,
    StreamDisconnectedError,
    error_from_response,
)
from gloo_stream.failover import UpstreamRoute, fallback_body, is_upstream_failure
from gloo_stream.retry import RetryPolicy

POLICY = RetryPolicy(max_retries=2, backoff_base=0.5, max_wait=5.0, deadline=None)


def status(code: int, **headers: str) -> GlooError:
    return error_from_response(code, "", headers, now=0.0)


UNWELL = [
    status(500),
    status(502),
    status(503),
    status(408),
    status(429),
    APIConnectionError("refused"),
    APITimeoutError("no first byte"),
]
REQUEST_PROBLEMS = [status(400), status(401), status(403), status(404), status(422)]


@pytest.mark.parametrize("error", UNWELL, ids=repr)
def test_an_unwell_primary_moves_the_call_to_the_fallback_after_its_retries(
    error: GlooError,
) -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    waits = []
    for _ in range(POLICY.max_retries):
        waits.append(route.after_failure(error, now=0, jitter=0.0))
        assert route.upstream == "primary"
    assert route.after_failure(error, now=0, jitter=0.0) == 0.0
    assert route.upstream == "fallback"
    assert route.attempts == POLICY.max_retries + 2  # three on the primary, one on the fallback
    assert all(w > 0 for w in waits)


@pytest.mark.parametrize("error", REQUEST_PROBLEMS, ids=repr)
def test_a_4xx_is_never_hidden_by_the_fallback(error: GlooError) -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    with pytest.raises(type(error)):
        route.after_failure(error, now=0, jitter=0.0)
    assert route.upstream == "primary"


def test_a_429_asking_a_wait_longer_than_the_budget_moves_at_once() -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    too_long = status(429, **{"retry-after": "120"})
    assert route.after_failure(too_long, now=0, jitter=0.0) == 0.0
    assert route.upstream == "fallback"
    assert route.attempts == 2


def test_a_429_with_a_short_wait_is_waited_for_on_the_primary() -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    assert route.after_failure(status(429, **{"retry-after": "2"}), now=0, jitter=0.0) == 2.0
    assert route.upstream == "primary"


def test_without_a_fallback_the_error_is_raised_as_before() -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=False)
    error = status(503)
    route.after_failure(error, now=0, jitter=0.0)
    route.after_failure(error, now=0, jitter=0.0)
    with pytest.raises(type(error)):
        route.after_failure(error, now=0, jitter=0.0)


def test_the_fallback_has_its_own_budget_and_then_the_error_is_raised() -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    error = status(500)
    for _ in range(POLICY.max_retries + 1):
        route.after_failure(error, now=0, jitter=0.0)
    assert route.upstream == "fallback"
    route.after_failure(error, now=0, jitter=0.0)
    route.after_failure(error, now=0, jitter=0.0)
    with pytest.raises(type(error)):
        route.after_failure(error, now=0, jitter=0.0)
    assert route.attempts == 6


def test_a_mid_stream_failure_is_retried_but_never_moved() -> None:
    route = UpstreamRoute(POLICY, now=0, fallback=True)
    drop = StreamDisconnectedError("drop", partial=StreamResult(text="Hel", interrupted=True))
    for _ in range(POLICY.max_retries):
        route.after_failure(drop, now=0, jitter=0.0)
    with pytest.raises(StreamDisconnectedError):
        route.after_failure(drop, now=0, jitter=0.0)
    assert route.upstream == "primary"


def test_an_open_breaker_sends_calls_straight_to_the_fallback_then_probes() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=30)
    first = UpstreamRoute(POLICY, now=0, breaker=breaker, fallback=True)
    first.after_failure(status(502), now=0, jitter=0.0)
    # The second failure opens the breaker: the primary's last retry is not spent.
    assert first.after_failure(status(502), now=1, jitter=0.0) == 0.0
    assert first.upstream == "fallback"
    assert first.attempts == 3
    assert breaker.state == "open"
    skipped = UpstreamRoute(POLICY, now=10, breaker=breaker, fallback=True)
    assert skipped.upstream == "fallback"
    probe = UpstreamRoute(POLICY, now=31, breaker=breaker, fallback=True)
    assert probe.upstream == "primary"
    assert UpstreamRoute(POLICY, now=31.5, breaker=breaker, fallback=True).upstream == "fallback"
    probe.succeeded(now=32)
    assert breaker.state == "closed"
    assert UpstreamRoute(POLICY, now=33, breaker=breaker, fallback=True).upstream == "primary"


def test_a_breaker_without_a_fallback_never_skips_the_primary() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=30)
    breaker.record_failure(0)
    assert UpstreamRoute(POLICY, now=1, breaker=breaker, fallback=False).upstream == "primary"


def test_a_4xx_counts_as_the_primary_answering() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=30)
    route = UpstreamRoute(POLICY, now=0, breaker=breaker, fallback=True)
    route.after_failure(status(500), now=0, jitter=0.0)
    with pytest.raises(GlooError):
        route.after_failure(status(400), now=0, jitter=0.0)
    assert breaker.failures == 0


def test_is_upstream_failure_matches_the_documented_rule() -> None:
    assert all(is_upstream_failure(e) for e in UNWELL)
    assert not any(is_upstream_failure(e) for e in REQUEST_PROBLEMS)


def test_the_fallback_gets_no_gloo_only_fields_and_its_own_model() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "auto_routing": True,
        "model_family": "anthropic",
        "tradition": "catholic",
        "temperature": 0.2,
        "stream": True,
    }
    out = fallback_body(body, "llama3")
    assert out == {
        "messages": body["messages"],
        "temperature": 0.2,
        "stream": True,
        "model": "llama3",
    }
    assert "auto_routing" in body, "the original request is not changed"
    assert fallback_body({"messages": [], "model": "gpt-x"}, None)["model"] == "gpt-x"
