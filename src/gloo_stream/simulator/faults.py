"""Scripted faults: what can go wrong with one completions request, and the queue they wait in."""

from __future__ import annotations

import collections
from http import HTTPStatus
from typing import Annotated, Any, Literal

import msgspec

FaultKind = Literal[
    "status",
    "slow_headers",
    "slow_first_token",
    "stall",
    "disconnect",
    "truncate",
    "malformed",
    "error",
    "content_filter",
    "tool_calls",
    "done",
    "multiline",
    "crlf",
    "answer",
    "citations",
    "reasoning",
]
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_HeaderValue = str | int | float | None


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One scripted fault; build it directly (``Fault(kind="stall", after=3)``) or from a dict.

    Only the fields of its ``kind`` matter; the rest keep their defaults.
    """

    kind: FaultKind
    times: Annotated[int, msgspec.Meta(ge=1)] = 1
    """How many completions requests this fault applies to before it leaves the queue."""
    after: _NonNegative = 3
    """Content chunks sent before a mid-stream fault strikes (clamped to the answer's length)."""
    status: Annotated[int, msgspec.Meta(ge=200, le=599)] = 500
    retry_after: _HeaderValue = None
    ratelimit_reset: _HeaderValue = None
    retry_after_ms: _HeaderValue = None
    body: Any = None
    """Body for ``status``: an object (sent as JSON), a string (sent as is) or None (Gloo's)."""
    echo: bool = False
    """``status``: a 422-style body quoting the request's ``Authorization`` header back, as a
    careless upstream's validation error might (to test that no caller ever sees it)."""
    delay: _Seconds = 2.0
    duration: _Seconds = 30.0
    code: int = 2001
    name: str = "PROVIDER_TIMEOUT"
    message: str = "The model provider timed out"
    function: str | None = None
    """Tool name for ``tool_calls`` (default: the request's first tool, else get_weather)."""
    arguments: Any = None
    """Tool arguments for ``tool_calls``: a JSON string or an object (default: made up)."""
    parallel: bool = False
    """``tool_calls``: two calls (index 0 and 1) with interleaved argument fragments."""
    end: bool = False
    """``malformed``: end the body right after the bad line instead of carrying on."""
    text: str = ""
    """``answer``: stream exactly this text (split into tokens) instead of the usual answer."""
    variant: Literal["chunk", "bare", "sources", "proxy"] = "chunk"
    """``citations``: send a citations event first, in this shape (``simulator.grounded``),
    whether or not the request asked for citations."""
    spelling: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    """``reasoning``: think aloud first, in deltas with this field name."""

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Validate a fault given as a dict; raises ``ValueError`` saying what is wrong."""
        if isinstance(data, Fault):
            return data
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid fault: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The fault as a JSON-ready dict, defaults omitted."""
        out: dict[str, Any] = {"kind": self.kind}
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if field != "kind" and value != getattr(_DEFAULTS, field):
                out[field] = value
        return out


_DEFAULTS = Fault(kind="done")

# Gloo's documented bodies where GLOO_API.md has one; a plain {"error": phrase} otherwise.
_STATUS_BODIES: dict[int, dict[str, Any]] = {
    401: {"error": "Missing Authorization", "code": "unauthorized_missing_authorization"},
    403: {"error": "Forbidden - insufficient permissions", "code": "forbidden"},
    408: {"error": "Request Timeout", "code": "provider_timeout"},
    422: {"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]},
    429: {"error": "Rate limit exceeded", "code": "too_many_requests"},
}


def status_response(
    fault: Fault, authorization: str | None = None
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Body and headers (content type included) of a ``status`` fault's response.

    ``authorization`` is the request's header, quoted back when the fault says ``echo``.
    """
    body = fault.body
    if fault.echo:
        body = _echo_body(authorization or "")
    if body is None:
        body = _STATUS_BODIES.get(fault.status) or {"error": HTTPStatus(fault.status).phrase}
    if isinstance(body, str):
        payload, content_type = body.encode(), b"text/plain; charset=utf-8"
    else:
        payload, content_type = msgspec.json.encode(body), b"application/json"
    headers = [(b"content-type", content_type)]
    for name, value in (
        (b"retry-after", fault.retry_after),
        (b"x-ratelimit-reset", fault.ratelimit_reset),
        (b"retry-after-ms", fault.retry_after_ms),
    ):
        if value is not None:
            headers.append((name, str(value).encode()))
    return payload, headers


def _echo_body(authorization: str) -> dict[str, Any]:
    return {
        "detail": [
            {
                "type": "value_error",
                "loc": ["header", "authorization"],
                "msg": f"Value error, credential not accepted: Authorization: {authorization}",
                "input": authorization,
            }
        ]
    }


class FaultQueue:
    """FIFO of faults, each applying to ``times`` requests; not thread-safe on its own."""

    def __init__(self) -> None:
        self._items: collections.deque[list[Any]] = collections.deque()

    def push(self, fault: Fault) -> None:
        """Queue a fault behind those already waiting."""
        self._items.append([fault, fault.times])

    def take(self) -> Fault | None:
        """The fault for the next request, if any; counts one use of it."""
        if not self._items:
            return None
        entry = self._items[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._items.popleft()
        fault: Fault = entry[0]
        return fault

    def pending(self) -> list[dict[str, Any]]:
        """The waiting faults as dicts, with how many uses each has left."""
        return [{**fault.to_dict(), "times": left} for fault, left in self._items]

    def clear(self) -> None:
        """Drop every waiting fault."""
        self._items.clear()
