"""What the proxy tells a caller when something fails: the one catalogue of its failures.

Every failure the proxy answers with is a ``ProxyFailure`` built in this package by a named
constructor, with a curated message: the proxy's own refusals and states (``refusals``: the
request, its keys, the limits, the front door), and the library's exceptions as the caller
is told them (``library_errors``, which reads each exception class's catalogue entry).
``shape`` is how each is sent: a status and OpenAI's error body before the stream, one
final SSE error event during it.
"""

from gloo_stream.proxy.failures.library_errors import (
    UPSTREAM_NOT_CONFIGURED,
    failure_from_exception,
    internal_error,
    invalid_request,
    stream_failure,
)
from gloo_stream.proxy.failures.refusals import (
    BAD_HTTP,
    CAPACITY_EXCEEDED,
    LIMITS_UNAVAILABLE,
    NOT_FOUND,
    SHUTDOWN,
    SHUTDOWN_UNREAD,
    TOO_MANY_CONNECTIONS,
    USE_POST,
    bad_content_type,
    body_too_large,
    family_not_allowed,
    headers_too_large,
    http_error,
    invalid_api_key,
    invalid_json,
    invalid_messages,
    max_tokens_capped,
    max_tokens_twice,
    missing_api_key,
    model_not_allowed,
    not_an_object,
    not_found,
    only_one_choice,
    rate_limited,
    renamed_param,
    request_timeout,
    too_many_auth_failures,
    too_many_streams,
    unknown_fields,
    unsupported_fields,
    wrong_type,
)
from gloo_stream.proxy.failures.shape import ProxyFailure, RequestRefused

__all__ = [
    "BAD_HTTP",
    "CAPACITY_EXCEEDED",
    "LIMITS_UNAVAILABLE",
    "NOT_FOUND",
    "SHUTDOWN",
    "SHUTDOWN_UNREAD",
    "TOO_MANY_CONNECTIONS",
    "UPSTREAM_NOT_CONFIGURED",
    "USE_POST",
    "ProxyFailure",
    "RequestRefused",
    "bad_content_type",
    "body_too_large",
    "failure_from_exception",
    "family_not_allowed",
    "headers_too_large",
    "http_error",
    "internal_error",
    "invalid_api_key",
    "invalid_json",
    "invalid_messages",
    "invalid_request",
    "max_tokens_capped",
    "max_tokens_twice",
    "missing_api_key",
    "model_not_allowed",
    "not_an_object",
    "not_found",
    "only_one_choice",
    "rate_limited",
    "renamed_param",
    "request_timeout",
    "stream_failure",
    "too_many_auth_failures",
    "too_many_streams",
    "unknown_fields",
    "unsupported_fields",
    "wrong_type",
]
