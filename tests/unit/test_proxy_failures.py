"""failures/: what the caller is told before and during the stream."""

from __future__ import annotations

import msgspec
import pytest

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    MissingCredentialsError,
    RateLimitError,
    ServerError,
    StreamDisconnectedError,
    UpstreamStreamError,
)
from gloo_stream.proxy.failures import (
    SHUTDOWN,
    failure_from_exception,
    stream_failure,
)
from gloo_stream.sse import SSEDecoder


def partial() -> StreamResult:
    return StreamResult(text="He", interrupted=True)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (InvalidRequestError("bad", field="x"), 400, "invalid_request"),
        (MissingCredentialsError(), 503, "upstream_not_configured"),
        (RateLimitError("r", retry_after=3.2, status_code=429), 429, "upstream_rate_limited"),
        (AuthenticationError("a", status_code=401), 502, "upstream_auth_failed"),
        (ServerError("s", status_code=503), 502, "upstream_error"),
        (ServerError("s", status_code=408), 504, "upstream_timeout"),
        (APITimeoutError("t"), 504, "upstream_timeout"),
        (APIConnectionError("c"), 502, "upstream_unreachable"),
        (RuntimeError("secret internals"), 500, "internal_error"),
    ],
)
def test_failures_before_the_stream(exc: Exception, status: int, code: str) -> None:
    failure = failure_from_exception(exc)
    assert (failure.status, failure.code) == (status, code)
    body = msgspec.json.decode(failure.body())
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert "secret internals" not in failure.body().decode()


def test_rate_limit_failure_rounds_retry_after_up() -> None:
    failure = failure_from_exception(RateLimitError("r", retry_after=3.2, status_code=429))
    assert (b"retry-after", b"4") in failure.headers()


def test_stream_failure_event_is_one_valid_sse_error_event() -> None:
    error = {"code": 2001, "name": 'PROVIDER "TIMEOUT"\n\ndata: injected', "message": "x"}
    failure = stream_failure(UpstreamStreamError("m", partial=partial(), error=error))
    events = SSEDecoder().feed(failure.event())
    assert len(events) == 1
    assert events[0].event == "error"
    decoded = msgspec.json.decode(events[0].data)["error"]
    # A name that is not a short token (here one trying to inject an event) is not relayed.
    assert decoded["code"] == "upstream_error"
    assert "injected" not in events[0].data
    assert decoded["upstream_code"] == 2001
    named = stream_failure(
        UpstreamStreamError("m", partial=partial(), error={"name": "PROVIDER_TIMEOUT"})
    )
    assert named.code == "PROVIDER_TIMEOUT"
    disconnected = stream_failure(StreamDisconnectedError("m", partial=partial()))
    assert disconnected.code == "upstream_disconnected"
    assert SSEDecoder().feed(SHUTDOWN.event())[0].event == "error"
