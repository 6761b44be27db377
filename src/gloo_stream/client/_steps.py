"""The flow protocol: how an answer's course asks for I/O, and how a runner provides it.

The course of one answer (``_answer``: send, retry, move to the fallback, read, reconnect to
a resumable proxy answer) is written once, as a *flow*: a plain generator that does no I/O
and never sleeps. It **yields** what it needs next and is **sent** the outcome:

========================  =====================================  =========================
the flow yields            the runner does                        and sends back
========================  =====================================  =========================
``SendRequest(req, a)``   send ``req`` with auth ``a``, streamed  the response, body unread
``ReadSome(response)``    read the next piece of the body         the bytes, or None at end
``ReadAll(response)``     read the whole body                     the bytes
``ReadAndClose(resp)``    read the whole body, then close it      the bytes
``Close()``               release the stream's response           None
``Sleep(seconds)``        wait (the client's ``sleep``)           None
a ``list`` of chunks      hand them on to the caller              None
========================  =====================================  =========================

When the I/O fails (``httpx.TransportError``, or a ``GlooError`` from the auth flow), the
runner does not decide what that means: it passes the exception back and ``next_step``
raises it inside the flow, at the ``yield`` that asked. The flow then says what the failure
is (retry, a typed error, nothing at all when the answer had already ended). A flow ends by
returning (``StopIteration``; ``next_step`` returns None) or by raising its final error.

This is the shape of httpx's ``Auth.auth_flow`` (``httpx/_auth.py``): one generator, driven
by ``Client`` with blocking calls and by ``AsyncClient`` with ``await``, so a rule is written
once and both clients keep it. Here the two runners are ``ChatStream._run`` (``_sync``) and
``AsyncChatStream._run`` (``_async``); each is a loop of a few lines around ``next_step``,
and each does a step's I/O through what it was given: the client as a ``Transmitter`` or
``AsyncTransmitter`` (its connection pool and its ``sleep``), the way an httpx client does
its I/O through a transport's ``handle_request``.

A flow, and the sync runner for it, in small::

    def one_body(request: httpx.Request) -> Flow[bytes]:
        response = yield SendRequest(request, None)
        return (yield ReadAndClose(response))

    flow = one_body(request)
    step, outcome = next_step(flow, None), None
    while step is not None:
        try:
            outcome = do_the_io(step)  # blocking here; ``await`` in the async runner
        except httpx.TransportError as exc:
            outcome = exc  # raised inside the flow, where it yielded
        step = next_step(flow, outcome)
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from gloo_stream.protocol import CompletionProtocol
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "CLOSE",
    "AsyncTransmitter",
    "Close",
    "Flow",
    "IOStep",
    "ReadAll",
    "ReadAndClose",
    "ReadSome",
    "SendRequest",
    "Sleep",
    "Step",
    "Transmitter",
    "next_step",
]


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Send ``request`` with ``auth`` (None: no credential); reply: the response, body unread."""

    request: httpx.Request
    auth: httpx.Auth | None


@dataclass(frozen=True, slots=True)
class ReadAndClose:
    """Read ``response``'s whole body and close it, on every path; reply: the bytes.

    For an error's body: the response is done with once its words are read.
    """

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class ReadAll:
    """Read ``response``'s whole body; reply: the bytes."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class ReadSome:
    """Read the next piece of ``response``'s body; reply: the bytes, or None at its end.

    ``protocol``, when given, says the flow is in its plain read loop: it feeds each piece to
    ``protocol`` (``feed(data, clock())``, ``client._base.clock``), hands on the chunks that
    completed, and reads on until the body ends or ``protocol.stopped``. A runner may run
    that loop itself without resuming the flow, and resume it only with the body's end
    (None; also once ``protocol.stopped``) or the read's failure: the flow goes on exactly
    as if each piece had been sent in. A runner that ignores it sends every piece in.
    """

    response: httpx.Response
    protocol: CompletionProtocol | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Release the stream's response (idempotent); reply: None."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next attempt; reply: None."""

    seconds: float


IOStep = SendRequest | ReadAndClose | ReadAll | ReadSome | Close | Sleep
Step = IOStep | list[ChatCompletionChunk]  # a list: chunks to hand on to the caller
T = TypeVar("T")
Flow = Generator[Step, Any, T]
CLOSE = Close()


class Transmitter(Protocol):
    """What the blocking runner is given to do a step's I/O with (``GlooClient`` is one)."""

    def transmit(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """Send ``request`` streamed (``SendRequest``): the response, its body unread."""
        ...

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (``Sleep``), on the client's own ``sleep``."""
        ...


class AsyncTransmitter(Protocol):
    """What the asyncio runner is given to do a step's I/O with (``AsyncGlooClient`` is one)."""

    async def transmit(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """Send ``request`` streamed (``SendRequest``): the response, its body unread."""
        ...

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (``Sleep``), on the client's own ``sleep``."""
        ...


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
