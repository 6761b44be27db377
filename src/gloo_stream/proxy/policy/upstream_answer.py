"""Whether an upstream's 200 is an answer at all: the right content type, before any byte.

A 200 in ``text/html`` (a captive portal, a misrouted gateway, a hostile upstream) would
otherwise become a 200 to the caller, then an ``upstream_truncated`` event: the caller
is better told at once, with a status, that the upstream did not answer as an API does.
"""

from __future__ import annotations

from typing import Any

from gloo_stream.proxy.failures import UPSTREAM_BAD_RESPONSE, ProxyFailure

__all__ = ["not_an_answer"]

_ANSWERS = (b"text/event-stream", b"application/json")


def not_an_answer(stream: Any) -> ProxyFailure | None:
    """The 502 to send when the opened ``stream``'s response is neither an event stream nor
    JSON (the library reads either); None when it is one."""
    response = getattr(stream, "_response", None)
    if response is None:
        return None
    content_type = response.headers.get("content-type", "").encode("latin-1", "replace")
    if content_type.split(b";")[0].strip().lower() in _ANSWERS:
        return None
    return UPSTREAM_BAD_RESPONSE
