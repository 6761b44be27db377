"""The retry policy: what is retried, how long to wait, and when to give up."""

from __future__ import annotations

import pytest

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    GlooError,
    MalformedChunkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamDisconnectedError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
    error_from_response,
)
from gloo_stream.retry import RetryPolicy

PARTIAL = StreamResult(text="part", interrupted=True)


def status(code: int, **headers: str) -> GlooError:
    return error_from_response(code, "", headers, now=0.0)


RETRYABLE = [
    status(408),
    status(409),
    status(429),
    status(500),
    status(502),
    status(503),
    APIConnectionError("down"),
    APITimeoutError("slow"),
    StreamDisconnectedError("drop", partial=PARTIAL),
    StreamTimeoutError("stall", partial=PARTIAL),
    TruncatedStreamError("cut", partial=PARTIAL),
    MalformedChunkError("bad", partial=PARTIAL),
    UpstreamStreamError("err", partial=PARTIAL, error={"code": 2001}),
]
FINAL = [
    status(400),
    status(401),
    status(403),
    status(404),
    status(422),
    ContentFilterError("filtered", partial=PARTIAL),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_transient_failures_are_retried(error: GlooError) -> None:
    assert RetryPolicy().is_retryable(error)


@pytest.mark.parametrize("error", FINAL, ids=lambda e: f"{type(e).__name__}")
def test_final_failures_are_not(error: GlooError) -> None:
    assert not RetryPolicy().is_retryable(error)
    with pytest.raises(type(error)):
        RetryPolicy().start(0).after_failure(error, now=0, jitter=0)


def test_kinds_of_final_errors() -> None:
    kinds = {type(e) for e in FINAL}
    assert {BadRequestError, AuthenticationError, PermissionDeniedError, NotFoundError} <= kinds


def test_backoff_grows_with_jitter_and_cap() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=3.0)
    error = APIConnectionError("down")
    assert policy.delay(error, 1, jitter=0.0) == 0.5
    assert policy.delay(error, 1, jitter=0.999) == pytest.approx(1.0, abs=1e-3)
    assert policy.delay(error, 2, jitter=0.0) == 1.0
    assert policy.delay(error, 5, jitter=0.0) == 1.5  # capped at 3.0, halved by jitter floor


def test_server_requested_wait_is_honoured() -> None:
    policy = RetryPolicy()
    assert policy.delay(status(429, **{"Retry-After": "4"}), 1, jitter=0.7) == 4.0
    assert policy.delay(status(503, **{"retry-after-ms": "20"}), 1, jitter=0.7) == 0.02


def test_attempts_are_bounded() -> None:
    state = RetryPolicy(max_retries=2).start(0.0)
    error = APIConnectionError("down")
    assert state.after_failure(error, now=0, jitter=0) >= 0
    assert state.after_failure(error, now=0, jitter=0) >= 0
    assert state.attempts == 3
    with pytest.raises(APIConnectionError):
        state.after_failure(error, now=0, jitter=0)


def test_a_wait_longer_than_the_cap_raises_instead_of_sleeping() -> None:
    state = RetryPolicy(max_wait=10).start(0.0)
    error = status(429, **{"Retry-After": "3600"})
    with pytest.raises(RateLimitError) as caught:
        state.after_failure(error, now=0, jitter=0)
    assert isinstance(caught.value, RateLimitError)
    assert caught.value.retry_after == 3600


def test_overall_deadline() -> None:
    state = RetryPolicy(deadline=5, backoff_base=1).start(100.0)
    with pytest.raises(APIConnectionError):
        state.after_failure(APIConnectionError("down"), now=104.9, jitter=0.9)


def test_invalid_policy() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
