"""The course of one answer, shared by ``ChatStream`` and ``AsyncChatStream`` (sans-IO flows).

Open (retrying on the primary, then moving to the fallback, as the call's ``UpstreamRoute``
says), read, resume a dropped answer from a gloo-stream proxy where it broke off, and in
``complete()``'s mode start a failed answer over. Each step of I/O is yielded to the twin's
runner (see ``_base`` and ``_steps``).
"""

from __future__ import annotations

import random
from typing import Any, Generic, TypeVar

import httpx

from gloo_stream.accumulate import StreamResult
from gloo_stream.client._base import ClientBase, OnRetry, OnToken, clock
from gloo_stream.client._steps import CLOSE, Flow, ReadAll, ReadSome, Sleep
from gloo_stream.client.spans import AttemptSpan, configured_tracer
from gloo_stream.errors import GlooError, StreamDisconnectedError, StreamError, StreamTimeoutError
from gloo_stream.failover import Upstream, UpstreamRoute
from gloo_stream.protocol import CompletionProtocol
from gloo_stream.resume import STREAM_ID_HEADER, can_resume, resume_url, stream_id_from
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["StreamBase", "retry_wait", "tell"]

ClientT = TypeVar("ClientT", bound=ClientBase[Any])


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
    ) -> None:
        self._client = client
        self._body = body
        self._started_at = clock()
        self._route = client.route(self._started_at)
        self._on_retry = on_retry
        self._restart = restart  # complete(): a failure mid-stream starts the answer over
        self._response: httpx.Response | None = None
        self._iterated = False
        self._resume_at: str | None = None
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
        return self._route.attempts

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
        return self._protocol.accumulator.result(clock(), interrupted=True, error="cancelled")

    def _opening(self) -> Flow[httpx.Response]:
        """Send until an upstream accepts, waiting and moving on as the route says.

        With tracing, each try is one client span, and its context goes with the request.
        """
        while self._response is None:
            upstream = self._route.upstream
            span = self._span = self._start_span(upstream)
            try:
                headers = span.headers if span is not None else None
                response = yield from self._client._attempt(self._body, upstream, headers)
            except BaseException as exc:
                if span is not None:
                    span.failed(exc)
                if not isinstance(exc, GlooError):
                    raise
                yield Sleep(retry_wait(self._route, exc, self._on_retry))
                continue
            self._route.succeeded(clock())
            self.upstream = upstream
            stream_id = stream_id_from(response.headers.get(STREAM_ID_HEADER))
            self._resume_at = resume_url(str(response.url), stream_id) if stream_id else None
            self._response = response
        if self._span is not None:
            self._span.opened(self._response.status_code)
        return self._response

    def _start_span(self, upstream: Upstream) -> AttemptSpan | None:
        if self._tracer is None:
            return None
        since = clock() - self._started_at
        fallback = self._client.fallback
        url = fallback.url if upstream == "fallback" and fallback else self._client.api_url
        attempt = self._route.attempts  # counts this try already (1 for the first)
        return AttemptSpan(self._tracer, self._body, url, attempt=attempt, started_after=since)

    def _abandon_span(self) -> None:
        """The stream was closed before its answer ended: end the attempt's span as such."""
        span = self._span
        if span is not None and not span.ended:
            span.abandoned(self.partial_result())

    def _answer(self) -> Flow[None]:
        """Open, then read to the end; with ``restart``, a failed answer is started over."""
        while True:
            response = yield from self._opening()
            try:
                yield from self._read(response)
                return
            except StreamError as exc:
                if not self._restart:
                    raise
                yield Sleep(retry_wait(self._route, exc, self._on_retry))

    def _read(self, response: httpx.Response) -> Flow[None]:
        """Hand on the chunks as they arrive; a dropped resumable answer is resumed."""
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
            resumed = None
            if failure is not None and self._resume_at is not None and can_resume(failure):
                self._end_span(failure)  # the attempt's own connection ended here
                yield CLOSE
                resumed = yield from self._resuming(self._resume_at, protocol)
            if resumed is None:
                self._end_span(failure)
                yield CLOSE
                if failure is not None:
                    try:
                        raise failure
                    finally:
                        failure = None  # this frame is in its traceback: no cycle
                return
            response = resumed

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
                yield protocol.feed_json(body, clock())
            else:
                more = ReadSome(response)
                while not protocol.stopped and (data := (yield more)) is not None:
                    if chunks := protocol.feed(data, clock()):
                        yield chunks
        except httpx.TransportError as exc:
            failure = self._broken(protocol, exc)
        except StreamError as exc:  # a whole JSON answer that does not decode
            failure = exc
        return failure

    def _resuming(self, url: str, protocol: CompletionProtocol) -> Flow[httpx.Response | None]:
        """Ask for the rest after the last event received; None when it cannot be had.

        Unreachable or failing, the proxy is tried again per the retry policy (a replica may
        be restarting); a 404 or 410 means the answer is gone (expired, stopped).
        """
        retry = self._client.retry_policy.start(clock())
        while True:
            request = self._client._resume_request(url, protocol.last_event_id)
            try:
                response = yield from self._client._exchange(request, self._client.auth)
            except GlooError as exc:
                gone = getattr(exc, "status_code", None) in (404, 410)
                try:
                    wait = (
                        None
                        if gone
                        else retry.after_failure(exc, now=clock(), jitter=random.random())
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

    def _whole(self) -> StreamResult:
        """The result of an answer read to its end."""
        assert self.result is not None
        return self.result


def retry_wait(route: UpstreamRoute, error: GlooError, on_retry: OnRetry | None) -> float:
    """How long to wait before the next attempt (raises ``error`` when none is left)."""
    delay = route.after_failure(error, now=clock(), jitter=random.random())
    if on_retry is not None:
        on_retry(error, delay)  # told before the wait: a 429's wait can be long
    return delay


def tell(on_token: OnToken | None, chunk: ChatCompletionChunk) -> None:
    """Give ``on_token`` the chunk's text, if it has any."""
    if on_token is not None and (text := chunk.content):
        on_token(text)


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
