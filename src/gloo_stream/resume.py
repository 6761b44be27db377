"""Resuming an answer from a gloo-stream proxy instead of asking for it again (sans-IO).

A proxy running with ``PROXY_RESUME_WINDOW`` answers with an ``X-Stream-Id`` header and
numbers every event (``id: N``). When such a stream drops mid-answer, ``GET
/api/stream/{id}`` with ``Last-Event-ID: N`` sends the rest of the same answer: nothing is
generated twice, and the text is identical. These are the rules the clients share.
"""

from __future__ import annotations

import re

from gloo_stream.errors import StreamDisconnectedError, StreamError, StreamTimeoutError

__all__ = ["STREAM_ID_HEADER", "can_resume", "resume_url", "stream_id_from"]

STREAM_ID_HEADER = "x-stream-id"
# What an id may look like before it is put in a URL (a server is not trusted to send one).
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
_ROUTES = ("/v1/chat/completions", "/api/stream")


def stream_id_from(value: str | None) -> str | None:
    """The stream id from an ``X-Stream-Id`` header value, or None if it is not one."""
    if value is None:
        return None
    value = value.strip()
    return value if _STREAM_ID.fullmatch(value) else None


def resume_url(api_url: str, stream_id: str) -> str:
    """``/api/stream/{id}`` next to the route the answer was started at, under any prefix."""
    base = api_url.split("?", 1)[0].rstrip("/")
    for route in _ROUTES:
        if base.endswith(route):
            base = base[: -len(route)]
            break
    return f"{base}/api/stream/{stream_id}"


def can_resume(error: StreamError) -> bool:
    """True for the failures a resume can mend: the connection dropped or went silent.

    Anything the server said (an error event, an early end, a malformed chunk) is its
    answer, and resuming would only hear it again.
    """
    return isinstance(error, StreamDisconnectedError | StreamTimeoutError)
