"""The steps a client flow yields to its runner, and the one way to advance a flow.

A flow (``_base``) is a generator: it yields a ``Step`` (the I/O it needs next, or a list of
chunks to hand on) and is sent what the I/O returned, or has the I/O's failure raised at
the step. The twins' runners (``_sync``, ``_async``) perform each step, blocking or awaited.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "CLOSE",
    "Close",
    "Drain",
    "Flow",
    "IOStep",
    "ReadAll",
    "ReadSome",
    "Send",
    "Sleep",
    "Step",
    "next_step",
]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` with ``auth`` (None: no credential); reply: the response, body unread."""

    request: httpx.Request
    auth: httpx.Auth | None


@dataclass(frozen=True, slots=True)
class Drain:
    """Read ``response``'s whole body and close it, on every path; reply: the bytes."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class ReadAll:
    """Read ``response``'s whole body; reply: the bytes."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class ReadSome:
    """Read the next piece of ``response``'s body; reply: the bytes, or None at its end."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Close:
    """Release the stream's response (idempotent); reply: None."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next attempt; reply: None."""

    seconds: float


IOStep = Send | Drain | ReadAll | ReadSome | Close | Sleep
Step = IOStep | list[ChatCompletionChunk]  # a list: chunks to hand on to the caller
T = TypeVar("T")
Flow = Generator[Step, Any, T]
CLOSE = Close()


def next_step(flow: Flow[Any], outcome: object) -> Step | None:
    """The flow's next step, given how its last one ended (None once the flow has ended).

    An exception is raised inside the flow, at the step that failed: the flow says what the
    failure means (retry, a typed error, or nothing when the answer had already ended).
    """
    try:
        if isinstance(outcome, Exception):
            return flow.throw(outcome)
        return flow.send(outcome)
    except StopIteration:
        return None
