"""The course of one answer, written once for ``ChatStream`` and ``AsyncChatStream``.

Open (retrying on the primary, then moving to the fallback, as the call's ``UpstreamRoute``
says), read, reconnect to a resumable gloo-stream proxy answer where it broke off, and in
``complete()``'s mode start a failed answer over. All of it is sans-IO flows (``_steps``
says how a runner drives one); of its client it uses only what ``AnswerClient`` names.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import httpx

from gloo_stream.accumulate import StreamResult
from gloo_stream.client._base import Clock, OnRetry, OnToken, clock
from gloo_stream.client._steps import (
    CLOSE,
    Flow,
    ReadAll,
    ReadAndClose,
    ReadSome,
    SendRequest,
    Sleep,
)
from gloo_stream.client.auth import redactor_for
from gloo_stream.client.spans import AttemptSpan, configured_tracer
from gloo_stream.continuation import (
    NO_TEXT,
    AnswerParts,
    ChunkSplicer,
    continuation_body,
    not_continued_because,
    seam_reason,
)
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    GlooError,
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
    error_from_response,
)
from gloo_stream.events import AnswerContinued, AnswerEvent, events_of
from gloo_stream.failover import Upstream, UpstreamRoute
from gloo_stream.protocol import CompletionProtocol
from gloo_stream.redaction import NO_SECRETS
from gloo_stream.resume import STREAM_ID_HEADER, can_resume, resume_url, stream_id_from
from gloo_stream.retry import RetryPolicy
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "AnswerClient",
    "StreamBase",
    "connection_error",
    "exchange",
    "retry_wait",
    "tell",
    "whole_result",
]


class AnswerClient(Protocol):
    """What an answer's course asks of its client; ``ClientBase`` provides it for both twins.

    The settings it reads (``retry_policy``, ``read_timeout``, ``tracer_provider``, ``clock``)
    and the requests it has built (``request_for``, ``reconnect_request``); the I/O itself
    goes through the runner (``_steps``).
    """

    retry_policy: RetryPolicy
    read_timeout: float
    max_continuations: int
    continue_instruction: str
    tracer_provider: Any
    clock: Clock

    def route(self, now: float) -> UpstreamRoute:
        """The course of one call's attempts, starting ``now`` on ``clock``."""
        ...

    def upstream_url(self, upstream: Upstream, body: dict[str, Any] | None = None) -> str:
        """Where an attempt on ``upstream`` (sending ``body``) goes."""
        ...

    def request_for(
        self, body: dict[str, Any], upstream: Upstream, headers: dict[str, str] | None
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """The request (and its credential) sending ``body`` to ``upstream``."""
        ...

    def reconnect_request(
        self, url: str, last_event_id: str
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """The request (and its credential) for the rest of a resumable proxy answer."""
        ...


ClientT = TypeVar("ClientT", bound=AnswerClient)


class StreamBase(Generic[ClientT]):
    """What both stream twins share: one answer's request, route, course and outcome.

    ``attempts`` counts the requests sent (on either upstream), ``upstream`` says which one
    is answering, and ``resumes`` how often a dropped answer from a gloo-stream proxy was
    picked up where it broke off (``X-Stream-Id``) instead of being asked for again.
    ``keep_text = False`` (set before reading) is for a relay that passes the chunks on and
    needs only the count: the result's ``text`` stays empty, everything else is kept.
    """

    def __init__(
        self,
        client: ClientT,
        body: dict[str, Any],
        *,
        on_retry: OnRetry | None = None,
        restart: bool = False,
        max_continuations: int | None = None,
    ) -> None:
        self._client = client
        self._body = body
        self._sent_body = body  # what the next attempt sends: a continuation's, after a cut
        self._max_continuations = (
            client.max_continuations if max_continuations is None else max_continuations
        )
        if self._max_continuations < 0:
            raise ValueError("max_continuations must be 0 or more")
        self._parts: AnswerParts | None = None  # once cut and continued: the parts so far
        self._splicer: ChunkSplicer | None = None  # the part after a seam, while it streams
        self._cut_by: str | None = None  # the reason of the seam the next opening makes
        self._earlier_attempts = 0  # requests sent for the parts before the current one
        self._started_at = clock()  # the answer's own timings; the route reads client.clock
        self._route = client.route(client.clock())
        self._on_retry = on_retry
        self._restart = restart  # complete(): a failure mid-stream starts the answer over
        self._response: httpx.Response | None = None
        self._iterated = False
        self._rest_at: str | None = None  # where a resumable proxy answer's rest is asked for
        self._protocol: CompletionProtocol | None = None
        self._tracer = configured_tracer(client.tracer_provider)
        self._span: AttemptSpan | None = None
        self.upstream: Upstream = self._route.upstream
        self.resumes = 0
        self.keep_text = True  # False: the result counts tokens but keeps no text (a relay)
        self.result: StreamResult | None = None

    @property
    def attempts(self) -> int:
        """How many times the request has been sent so far (1 + retries, either upstream)."""
        return self._earlier_attempts + self._route.attempts

    @property
    def continuations(self) -> int:
        """How many times the answer was cut and continued so far."""
        return 0 if self._parts is None else len(self._parts.seams)

    def _claim(self) -> None:
        if self._iterated:
            raise RuntimeError("this stream was already read; start a new one with stream()")
        self._iterated = True

    def partial_result(self) -> StreamResult | None:
        """The result, or while the answer is unfinished what has arrived so far (interrupted).

        None before any answer began. For a caller that stopped reading early and still
        wants to know what it received (the proxy bills it).
        """
        if self.result is not None:
            return self.result
        if self._protocol is None:
            return None
        partial = self._protocol.accumulator.result(clock(), interrupted=True, error="cancelled")
        if self._parts is None:
            return partial
        shown = self._splicer.shown if self._splicer is not None else None
        return self._parts.result(partial, attempts=self.attempts, shown=shown)

    def _opening(self) -> Flow[httpx.Response]:
        """Send until an upstream accepts, waiting and moving on as the route says.

        With tracing, each try is one client span, and its context goes with the request.
        """
        while self._response is None:
            upstream = self._route.upstream
            span = self._span = self._start_span(upstream)
            try:
                headers = span.headers if span is not None else None
                request, auth = self._client.request_for(self._sent_body, upstream, headers)
                if span is not None and auth is not None:
                    span.redactor = redactor_for(auth, request)
                response = yield from exchange(request, auth, self._client.read_timeout)
            except BaseException as exc:
                if span is not None:
                    span.failed(exc)
                if not isinstance(exc, GlooError):
                    raise
                yield Sleep(self._retry_wait(exc))
                continue
            self._route.succeeded(self._client.clock())
            self.upstream = upstream
            stream_id = stream_id_from(response.headers.get(STREAM_ID_HEADER))
            self._rest_at = resume_url(str(response.url), stream_id) if stream_id else None
            self._response = response
        if self._span is not None:
            self._span.opened(self._response.status_code)
        return self._response

    def _start_span(self, upstream: Upstream) -> AttemptSpan | None:
        if self._tracer is None:
            return None
        since = clock() - self._started_at
        url = self._client.upstream_url(upstream, self._body)
        attempt = self._route.attempts  # counts this try already (1 for the first)
        body = self._sent_body
        return AttemptSpan(self._tracer, body, url, attempt=attempt, started_after=since)

    def _abandon_span(self) -> None:
        """The stream was closed before its answer ended: end the attempt's span as such."""
        span = self._span
        if span is not None and not span.ended:
            span.abandoned(self.partial_result())

    def _answer(self) -> Flow[None]:
        """Open, then read to the end. A cut after text arrived is continued (``continuation``
        says when); before any text, ``restart`` (``complete()``) starts the answer over."""
        while True:
            response = yield from self._opening()
            if self._cut_by is not None:
                self._seam_opened(self._cut_by)
            try:
                yield from self._read(response)
            except StreamError as exc:
                if not (yield from self._after_cut(exc)):
                    raise
                continue
            if self._splicer is not None:
                yield from self._part_finished(self._splicer)
            return

    def _after_cut(self, exc: StreamError) -> Flow[bool]:
        """Decide what a cut answer gets: True to try again (continued or restarted), False
        to raise ``exc`` (which then carries every part of the answer, no character twice)."""
        parts, splicer = self._parts, self._splicer
        if parts is not None and splicer is not None:
            parts.part_ended(exc.partial, splicer.shown)  # what it held back is dropped
            self._splicer = None
        text = parts.text if parts is not None else exc.partial.text
        why = not_continued_because(exc, text) if self.keep_text else "the text is not kept"
        if parts is None and (why == NO_TEXT or self._max_continuations == 0):
            if not self._restart:  # nothing to continue: today's rules
                return False
            yield Sleep(self._retry_wait(exc))
            return True
        if why is None and self.continuations < self._max_continuations:
            self._continue_after(exc, parts or AnswerParts(exc.partial, self._body))
            return True
        if parts is not None:
            exc.partial = self.result = parts.result(exc.partial, attempts=self.attempts)
        if why is not None and why != NO_TEXT:
            exc.args = (f"{exc.args[0]}; not continued: {why}", *exc.args[1:])
        return False

    def _continue_after(self, exc: StreamError, parts: AnswerParts) -> None:
        """Ask for the rest: the same request plus the text so far, on a fresh route (the
        retry policy, breaker and fallback as for any request), with no wait of its own."""
        self._parts = parts
        now = self._client.clock()
        self._route.cut_mid_answer(now)
        self._earlier_attempts += self._route.attempts
        self._route = self._client.route(now)
        instruction = self._client.continue_instruction
        self._sent_body = continuation_body(self._body, parts.text, instruction)
        self._cut_by = seam_reason(exc)

    def _seam_opened(self, reason: str) -> None:
        """The continuation was accepted: record the seam and splice what follows."""
        assert self._parts is not None
        seam = self._parts.seam(reason, self.upstream, self._sent_body)
        self._splicer = ChunkSplicer(self._parts.text, seam)
        self._cut_by = None

    def _part_finished(self, splicer: ChunkSplicer) -> Flow[None]:
        """The part after the last seam ended whole: hand on what it held back; the result
        is the whole answer."""
        if rest := splicer.flush():
            yield rest
        self._splicer = None
        assert self._parts is not None and self.result is not None
        self._parts.part_ended(self.result, splicer.shown)
        self.result = self._parts.result(self.result, attempts=self.attempts)

    def _retry_wait(self, error: GlooError) -> float:
        """How long to wait before the next attempt (raises ``error`` when none is left)."""
        return retry_wait(self._route, error, self._on_retry, now=self._client.clock())

    def _read(self, response: httpx.Response) -> Flow[None]:
        """Hand on the chunks as they arrive; a dropped resumable answer is reconnected to."""
        protocol = CompletionProtocol(
            started_at=self._started_at,
            attempts=self._route.attempts,
            upstream=self.upstream,
            keep_text=self.keep_text,
        )
        self._protocol = protocol
        while True:
            failure = yield from self._read_body(response, protocol)
            if failure is None:
                failure = self._finish(protocol)
            rest = None
            if failure is not None and self._rest_at is not None and can_resume(failure):
                self._end_span(failure)  # the attempt's own connection ended here
                yield CLOSE
                rest = yield from self._reconnecting(self._rest_at, protocol)
            if rest is None:
                self._end_span(failure)
                yield CLOSE
                if failure is not None:
                    try:
                        raise failure
                    finally:
                        failure = None  # this frame is in its traceback: no cycle
                return
            response = rest

    def _end_span(self, failure: StreamError | None) -> None:
        if self._span is not None:
            self._span.finished(self.result, failure)

    def _read_body(
        self, response: httpx.Response, protocol: CompletionProtocol
    ) -> Flow[StreamError | None]:
        """Feed one response's body to ``protocol``; the failure that ended it, if any."""
        failure: StreamError | None = None
        try:
            if _is_json(response):
                body = yield ReadAll(response)
                chunks = protocol.feed_json(body, clock())
                yield chunks if self._splicer is None else self._splicer.take(chunks)
            elif self._splicer is not None:
                yield from self._read_spliced(response, protocol, self._splicer)
            else:
                # The loop ``ReadSome.protocol`` stands for: a runner may run it itself.
                more = ReadSome(response, protocol)
                while not protocol.stopped and (data := (yield more)) is not None:
                    if chunks := protocol.feed(data, clock()):
                        yield chunks
        except httpx.TransportError as exc:
            failure = self._broken(protocol, exc)
        except StreamError as exc:  # a whole JSON answer that does not decode
            failure = exc
        return failure

    def _read_spliced(
        self, response: httpx.Response, protocol: CompletionProtocol, splicer: ChunkSplicer
    ) -> Flow[None]:
        """``_read_body``'s loop for the part after a seam: the repeat is cut from its start
        (a loop of its own, so an answer never cut pays nothing per read for it)."""
        more = ReadSome(response)
        while not protocol.stopped and (data := (yield more)) is not None:
            if (chunks := protocol.feed(data, clock())) and (chunks := splicer.take(chunks)):
                yield chunks

    def _reconnecting(self, url: str, protocol: CompletionProtocol) -> Flow[httpx.Response | None]:
        """Ask the proxy for the rest after the last event received; None when it cannot be had.

        Unreachable or failing, the proxy is tried again per the retry policy (a replica may
        be restarting); a 404 or 410 means the answer is gone (expired, stopped).
        """
        now = self._client.clock
        retry = self._client.retry_policy.start(now())
        while True:
            request, auth = self._client.reconnect_request(url, protocol.last_event_id)
            try:
                response = yield from exchange(request, auth, self._client.read_timeout)
            except GlooError as exc:
                gone = getattr(exc, "status_code", None) in (404, 410)
                try:
                    wait = (
                        None
                        if gone
                        else retry.after_failure(exc, now=now(), jitter=random.random())
                    )
                except GlooError:
                    wait = None
                if wait is None:
                    return None
                yield Sleep(wait)
                continue
            protocol.reconnect()
            self.resumes += 1
            self._response = response
            return response

    def _broken(
        self, protocol: CompletionProtocol, exc: httpx.TransportError
    ) -> StreamError | None:
        """The error for a transport failure, or None when the answer had already ended."""
        if protocol.finished:  # after the end, a broken tail costs nothing
            return None
        error = _stream_error(protocol, exc)
        self.result = error.partial
        return error

    def _finish(self, protocol: CompletionProtocol) -> StreamError | None:
        """Decide the outcome of a body read to its end: the result kept, and the error if any."""
        try:
            self.result = protocol.finish(clock())
        except StreamError as exc:
            self.result = exc.partial
            return exc
        return None


def whole_result(stream: StreamBase[Any]) -> StreamResult:
    """The result of an answer ``complete()`` read to its end (its stream set it)."""
    assert stream.result is not None  # the stream ended without raising: it kept a result
    return stream.result


def exchange(
    request: httpx.Request, auth: httpx.Auth | None, read_timeout: float
) -> Flow[httpx.Response]:
    """Send ``request``: the response once accepted; anything else raised as a ``GlooError``.

    An error status is read (and closed) for its words; a transport failure says what could
    not be reached. The call's route decides whether to try again, and where.
    """
    try:
        response: httpx.Response = yield SendRequest(request, auth)
    except httpx.TransportError as exc:
        raise connection_error(exc, str(request.url)) from None
    if response.status_code >= 300:
        try:
            content: bytes = yield ReadAndClose(response)
        except httpx.TransportError:
            content = b""
        raise error_from_response(
            response.status_code,
            content,
            response.headers,
            now=time.time(),
            redactor=redactor_for(auth, response.request) if auth else NO_SECRETS,
        )
    # httpcore reads the read timeout from this dict when body reading starts, so from
    # here on a silent stream fails after read_timeout instead of first_byte_timeout.
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = read_timeout
    return response


def connection_error(exc: httpx.TransportError, url: str) -> APIConnectionError:
    """The error for a request that never got an answer (``url`` unless the token's failed)."""
    what = type(exc).__name__
    requested = url
    with contextlib.suppress(RuntimeError):  # httpx raises when the error has no request
        url = str(exc.request.url)  # the token endpoint, when that is what failed
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out waiting for {url} ({what}); the server may be busy")
    # Name only the setting of the URL that failed: an API-key user has no token endpoint.
    setting = "GLOO_API_URL" if url == requested else "GLOO_TOKEN_URL"
    return APIConnectionError(f"Could not reach {url} ({what}); check {setting} and the network")


def retry_wait(
    route: UpstreamRoute, error: GlooError, on_retry: OnRetry | None, *, now: float
) -> float:
    """How long to wait before the next attempt (raises ``error`` when none is left)."""
    delay = route.after_failure(error, now=now, jitter=random.random())
    if on_retry is not None:
        on_retry(error, delay)  # told before the wait: a 429's wait can be long
    return delay


def tell(
    on_token: OnToken | None,
    chunk: ChatCompletionChunk,
    on_event: Callable[[AnswerEvent], None] | None = None,
) -> None:
    """Give ``on_token`` the chunk's text, if it has any, and ``on_event`` its events.

    A seam (``AnswerContinued``) is told before the text it precedes, so a caller marks it
    where it is."""
    events = events_of(chunk) if on_event is not None else []
    seam = 1 if events and isinstance(events[0], AnswerContinued) else 0
    if seam and on_event is not None:
        on_event(events[0])
    if on_token is not None and (text := chunk.content):
        on_token(text)
    if on_event is not None:
        for event in events[seam:]:
            on_event(event)


def _stream_error(protocol: CompletionProtocol, exc: httpx.TransportError) -> StreamError:
    if isinstance(exc, httpx.TimeoutException):
        return protocol.fail(
            StreamTimeoutError,
            "The stream stalled (no data within the read timeout); the partial answer is kept",
            clock(),
        )
    return protocol.fail(
        StreamDisconnectedError,
        f"The connection dropped mid-stream ({type(exc).__name__}); the partial answer is kept",
        clock(),
    )


def _is_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")
