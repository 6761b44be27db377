"""Mapping statuses and bodies to exceptions; Retry-After in all its forms."""

from __future__ import annotations

import email.utils

import pytest

from gloo_stream.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    error_from_response,
    parse_retry_after,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (401, AuthenticationError, "Authentication failed (401): Invalid or expired token"),
        (403, PermissionDeniedError, "Authorization failed (403): Insufficient permissions"),
        (429, RateLimitError, "Rate limit exceeded (429): Too many requests"),
    ],
)
def test_tutorial_wording(status: int, kind: type[Exception], message: str) -> None:
    error = error_from_response(status, b'{"error":"x"}', {}, now=NOW)
    assert type(error) is kind
    assert str(error) == message
    assert error.status_code == status


def test_other_statuses_keep_the_first_200_characters() -> None:
    body = "x" * 500
    error = error_from_response(502, body, {}, now=NOW)
    assert type(error) is ServerError
    assert str(error) == "API error (502): " + "x" * 200
    assert error.body == body


@pytest.mark.parametrize(("status", "kind"), [(404, NotFoundError), (418, APIStatusError)])
def test_named_and_generic_statuses(status: int, kind: type[Exception]) -> None:
    assert type(error_from_response(status, "", {}, now=NOW)) is kind


@pytest.mark.parametrize("status", [400, 422])
def test_validation_detail_is_carried(status: int) -> None:
    body = b'{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required"}]}'
    error = error_from_response(status, body, {}, now=NOW)
    assert isinstance(error, BadRequestError)
    assert error.detail[0]["loc"] == ["body", "messages"]


def test_invalid_utf8_body_never_raises() -> None:
    error = error_from_response(500, b"\xff\xfe bad", {}, now=NOW)
    assert "\ufffd" in str(error)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"X-RateLimit-Reset": "12"}, 12.0),
        ({"X-RateLimit-Reset": str(int(NOW + 40))}, 40.0),
        ({"X-RateLimit-Reset": str(int((NOW + 5) * 1000))}, 5.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float | None) -> None:
    value = parse_retry_after(headers, NOW)
    if seconds is None:
        assert value is None
    else:
        assert value == pytest.approx(seconds, abs=1.0)


def test_rate_limit_error_carries_retry_after() -> None:
    error = error_from_response(429, "", {"X-RateLimit-Reset": "3"}, now=NOW)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0
