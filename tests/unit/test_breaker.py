"""The circuit breaker, driven by a fake clock."""

from __future__ import annotations

import pytest

from gloo_stream.breaker import CircuitBreaker


def test_a_new_breaker_is_closed_and_lets_everything_through() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10)
    assert breaker.state == "closed"
    assert all(breaker.allow(t) for t in range(5))


def test_it_opens_after_threshold_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10)
    breaker.record_failure(0)
    breaker.record_failure(1)
    assert breaker.state == "closed"
    assert breaker.allow(1.5)
    breaker.record_failure(2)
    assert breaker.state == "open"
    assert not breaker.allow(2.1)
    assert not breaker.allow(11.9)
    assert breaker.retry_in(7) == pytest.approx(5)


def test_a_success_in_between_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10)
    breaker.record_failure(0)
    breaker.record_success(1)
    breaker.record_failure(2)
    assert breaker.state == "closed"
    assert breaker.failures == 1


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_it() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10)
    breaker.record_failure(0)
    assert breaker.allow(10)
    assert breaker.state == "half_open"
    assert not breaker.allow(10.5), "only one probe at a time"
    breaker.record_success(11)
    assert breaker.state == "closed"
    assert breaker.allow(11.1)


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    breaker = CircuitBreaker(threshold=5, cooldown=10)
    for t in range(5):
        breaker.record_failure(t)
    assert breaker.allow(14)
    breaker.record_failure(15)
    assert breaker.state == "open"
    assert not breaker.allow(24.9)
    assert breaker.allow(25)


def test_a_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10)
    breaker.record_failure(0)
    assert breaker.allow(10)  # the probe, then silence (its request was cancelled)
    assert not breaker.allow(19)
    assert breaker.allow(20)


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 10), (1, 0), (1, -1)])
def test_nonsense_settings_are_refused(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match=r"threshold|cooldown"):
        CircuitBreaker(threshold=threshold, cooldown=cooldown)
