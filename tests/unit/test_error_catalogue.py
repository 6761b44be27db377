"""The exception catalogue: every class carries its code, exit status, advice and proxy answer."""

from __future__ import annotations

import pytest

from gloo_stream import errors
from gloo_stream.accumulate import StreamAccumulator
from gloo_stream.errors import (
    ExitStatus,
    GlooError,
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
)
from gloo_stream.protocol import CompletionProtocol

CLASSES = sorted(
    (kind for name in errors.__all__ if isinstance(kind := getattr(errors, name), type)),
    key=lambda kind: kind.__name__,
)
EXCEPTIONS = [kind for kind in CLASSES if issubclass(kind, GlooError)]


def test_every_exception_is_in_the_catalogue() -> None:
    assert len(EXCEPTIONS) == 21
    assert {kind for kind in CLASSES if kind not in EXCEPTIONS} == {ExitStatus}


@pytest.mark.parametrize("kind", EXCEPTIONS, ids=lambda kind: kind.__name__)
def test_each_entry_is_complete(kind: type[GlooError]) -> None:
    assert kind.error_code and kind.error_code.isidentifier()
    assert isinstance(kind.exit_status, ExitStatus)
    assert kind.exit_status not in (ExitStatus.OK, ExitStatus.INTERRUPTED)
    assert 400 <= kind.http_status < 600
    assert kind.proxy_code.isidentifier() and kind.proxy_type.isidentifier()
    assert kind.advice == "" or kind.advice.endswith(".")


def test_error_codes_are_unique() -> None:
    codes = [kind.error_code for kind in EXCEPTIONS]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (StreamDisconnectedError, "disconnected"),
        (StreamTimeoutError, "timeout"),
        (StreamError, "interrupted"),
    ],
)
def test_a_transport_failure_records_its_class_code(kind: type[StreamError], code: str) -> None:
    protocol = CompletionProtocol(started_at=0.0)
    protocol.feed(b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n', 0.5)
    error = protocol.fail(kind, "dropped", 1.0)
    assert type(error) is kind
    assert (error.partial.error, error.partial.text, error.partial.interrupted) == (
        code,
        "Hel",
        True,
    )


def test_advice_reads_what_only_the_instance_knows() -> None:
    partial = StreamAccumulator(started_at=0.0, attempts=3).result(1.0, interrupted=True)
    dropped = StreamDisconnectedError("dropped", partial=partial)
    assert dropped.advise() == (
        "Gave up after 3 attempts; try again in a moment (GLOO_MAX_RETRIES sets the retries)."
    )
    limited = errors.RateLimitError("slow down", status_code=429, retry_after=7.2)
    assert limited.advise() == "The server asks to wait 7 s; try again after that."
    refused = errors.AuthenticationError("refused", status_code=401)
    assert "GLOO_API_KEY" in refused.advise(auth_mode="api_key")
    assert "GLOO_CLIENT_ID" in refused.advise(auth_mode="client_credentials")
