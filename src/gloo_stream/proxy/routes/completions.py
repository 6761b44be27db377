"""``POST /api/stream`` and ``POST /v1/chat/completions``: pure ASGI, no response buffering.

The order of checks is cheapest-first and nothing reaches upstream before all pass: too
many wrong keys from the caller's address (429), client key (401), request rate (429),
draining (503), body and fields (4xx), concurrent streams (429) and the global upstream cap
(503). Until the upstream answers, failures get real statuses; after the first byte went
out, one final SSE error event.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

from gloo_stream.client import AsyncChatStream, AsyncGlooClient
from gloo_stream.errors import ContentFilterError, GlooError, StreamError
from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import NOSNIFF, Headers, Receive, Scope, Send, header, respond
from gloo_stream.proxy.failures import (
    SHUTDOWN,
    ProxyFailure,
    RequestRefused,
    failure_from_exception,
    stream_failure,
)
from gloo_stream.proxy.observe.accesslog import RequestRecord, logger
from gloo_stream.proxy.observe.telemetry import RequestSpan
from gloo_stream.proxy.policy.accounting import Answer, ask_for_usage
from gloo_stream.proxy.policy.limits import admit_request
from gloo_stream.proxy.relay import RelayStats, StreamControl, StreamStopped, end_with, relay_chunks
from gloo_stream.proxy.resume import ResumableAnswer
from gloo_stream.proxy.routes.body_admission import read_json_body, upstream_body
from gloo_stream.proxy.routes.openai_dialect import completion_body, translate_request
from gloo_stream.proxy.state import ProxyState
from gloo_stream.usage import BilledUsage

__all__ = ["CompletionsEndpoint"]

_clock = time.perf_counter
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Why a resumable answer was stopped from outside, and the event its stream ends with.
_ENDED_BY = {"cancel": failures.STREAM_CANCELLED, "abandoned": failures.STREAM_ABANDONED}
SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class _Exchange:
    """One request's mutable bits: its headers-to-add, log record, relay counts, span, usage."""

    __slots__ = (
        "answer",
        "control",
        "extra_headers",
        "record",
        "resumable",
        "span",
        "started",
        "stats",
        "usage",
        "wants_usage",
    )

    def __init__(self, record: RequestRecord, extra_headers: Headers) -> None:
        self.record = record
        self.extra_headers = extra_headers
        self.stats = RelayStats()
        self.control: StreamControl | None = None
        self.started = _clock()
        self.span: RequestSpan | None = None
        self.answer: Answer | None = None
        """What came back from upstream, once the request was sent there (for the bill)."""
        self.usage: BilledUsage | None = None
        self.wants_usage = False
        self.resumable: ResumableAnswer | None = None
        """With ``PROXY_RESUME_WINDOW``: the send that numbers and keeps the events."""

    def headers(self, *base: tuple[bytes, bytes]) -> Headers:
        return [*base, *self.extra_headers]


class CompletionsEndpoint:
    """The streaming completions route; ``openai=True`` speaks OpenAI's dialect (``/v1``)."""

    def __init__(self, state: ProxyState, *, openai: bool) -> None:
        self.state = state
        self.openai = openai
        self.route = "/v1/chat/completions" if openai else "/api/stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request end to end; never raises into the server."""
        state = self.state
        incoming = header(scope, b"x-request-id")
        request_id = (
            incoming.decode()
            if incoming is not None and _REQUEST_ID.fullmatch(incoming)
            else secrets.token_hex(8)
        )
        record = RequestRecord(request_id=request_id, route=self.route, method=scope["method"])
        extra = [*state.cors.headers(scope), (b"x-request-id", request_id.encode()), NOSNIFF]
        ex = _Exchange(record, extra)
        if state.tracing is not None:
            ex.span = state.tracing.request_span(scope, self.route, request_id)
            ex.span.activate()  # the upstream attempts' spans become its children
        try:
            await self._handle(scope, receive, send, ex)
        except RequestRefused as exc:
            if exc.limit is not None:
                state.metrics.limited.labels(exc.limit).inc()
            ex.extra_headers.extend(exc.headers)
            await self._fail(send, ex, exc.failure)
        except ConnectionAbortedError:
            record.outcome, record.status = "disconnect", 499
        except Exception:
            logger.exception("request %s failed unexpectedly", request_id)
            if not record.status:  # nothing sent yet: a status can still be given
                await self._fail(send, ex, failures.internal_error())
        finally:
            await self._settle(ex)
            self._record(ex)
            if ex.span is not None:
                self._end_span(ex, ex.span)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, ex: _Exchange) -> None:
        state = self.state
        await self._admit(scope, ex)
        client_id = ex.record.client
        data = await read_json_body(scope, receive, state.settings.proxy_max_body_bytes)
        if self.openai:
            body, wants_stream = translate_request(data, state.settings)
        else:
            body, wants_stream = upstream_body(data, state.settings), True
        if state.settings.proxy_log_content:
            ex.record.content = {"messages": body["messages"]}
        ex.wants_usage = ask_for_usage(body, always=state.settings.proxy_upstream_usage)
        if ex.span is not None:
            ex.span.admitted(body, client_id)
        if state.client is None:
            await self._fail(send, ex, failures.UPSTREAM_NOT_CONFIGURED)
            return
        await state.slots.admit(client_id)
        try:
            await self._upstream(state.client, body, wants_stream, receive, send, ex)
        finally:
            state.slots.release(client_id)

    async def _admit(self, scope: Scope, ex: _Exchange) -> None:
        """The checks before the body is read: method, client key, request rate, draining,
        token budget. Each raises ``RequestRefused``; the caller answers it."""
        if scope["method"] != "POST":
            raise RequestRefused(failures.USE_POST)
        state = self.state
        client_id = ex.record.client = await state.auth.admit(scope)
        await admit_request(state.rate, client_id)
        if state.streams.draining:
            raise RequestRefused(SHUTDOWN)
        if state.budgets is not None:
            ex.extra_headers.append(await state.budgets.check(client_id))

    async def _upstream(
        self,
        client: AsyncGlooClient,
        body: dict[str, Any],
        wants_stream: bool,
        receive: Receive,
        send: Send,
        ex: _Exchange,
    ) -> None:
        state = self.state
        control = ex.control = StreamControl(state.settings.proxy_heartbeat_interval)
        sent = _clock()
        stream = client.stream_body(body)
        stream.keep_text = _reads_answer_text(state, wants_stream)
        resumable = await self._watch(control, receive, send, ex) if wants_stream else None
        if resumable is None:
            control.start(receive, send)
        state.streams.add(control)
        state.metrics.active_streams.inc()
        try:
            await self._answer(stream, wants_stream, send, ex)
        except asyncio.CancelledError:
            stop = control.stopped()
            await self._stopped(stop, send, ex)
            if stop.foreign:
                raise
        finally:
            control.finish()
            state.streams.discard(control)
            state.metrics.active_streams.dec()
            ex.record.attempts = stream.attempts
            if stream.attempts > 1:
                state.metrics.retries.inc(stream.attempts - 1)
            await stream.aclose()
            if resumable is not None:
                resumable.close()
                if not resumable.attended and ex.record.outcome == "ok":
                    ex.record.outcome = "detached"  # generated on for a caller to come back to
                    state.metrics.disconnects.inc()
            failure = ex.stats.failure
            ex.answer = Answer(
                ex.record.client,
                body,
                stream.partial_result(),  # what arrived, when the caller left early
                _clock() - sent,
                failure.code if failure is not None else None,
            )

    async def _watch(
        self, control: StreamControl, receive: Receive, send: Send, ex: _Exchange
    ) -> ResumableAnswer | None:
        """With ``PROXY_RESUME_WINDOW``: events go through a ``ResumableAnswer``, which
        numbers and keeps them, and a caller who leaves does not stop the upstream."""
        resume = self.state.resume
        if resume is None:
            return None
        resumable = ex.resumable = await resume.begin(
            ex.record.client, self.route, send, control.stop
        )
        if resumable is not None:
            control.start(resumable.watch(receive), resumable)
        return resumable

    async def _answer(
        self, stream: AsyncChatStream, wants_stream: bool, send: Send, ex: _Exchange
    ) -> None:
        try:
            await stream.open()
        except GlooError as exc:
            self.state.last_upstream_error = type(exc).__name__
            await self._fail(send, ex, failure_from_exception(exc, self.state.redactor()))
            return
        self.state.last_upstream_error = None
        ex.record.upstream = stream.upstream
        self.state.metrics.upstream_answers.labels(stream.upstream).inc()
        if not wants_stream:
            await self._whole(stream, send, ex)
            return
        control = ex.control
        assert control is not None
        resumable = ex.resumable
        stream_id = () if resumable is None else ((b"x-stream-id", resumable.stream_id.encode()),)
        await control.begin(ex.headers(*SSE_HEADERS, *stream_id))
        ex.record.status = 200
        await relay_chunks(
            stream,
            control,
            ex.stats,
            done_event=self.openai,
            redactor=self.state.redactor(),
            usage_chunk=ex.wants_usage,
        )

    async def _whole(self, stream: AsyncChatStream, send: Send, ex: _Exchange) -> None:
        """A non-streamed OpenAI request: the whole answer as one ``chat.completion``."""
        try:
            async for _ in stream:
                pass
            result = stream.result
        except ContentFilterError as exc:
            result = exc.partial
        except StreamError as exc:
            await self._fail(send, ex, stream_failure(exc, self.state.redactor()))
            return
        assert result is not None
        ex.stats.result_tokens, ex.stats.ttft_ms = result.token_count, result.ttft_ms
        body = completion_body(result)
        ex.record.status = 200
        ex.stats.bytes = len(body)
        await respond(send, 200, body, ex.headers((b"content-type", b"application/json")))

    async def _stopped(self, stop: StreamStopped, send: Send, ex: _Exchange) -> None:
        record = ex.record
        control = ex.control
        if stop.reason == "disconnect":
            record.outcome = "disconnect"
            if not record.status:
                record.status = 499  # nginx's "client closed request", for logs and metrics
            self.state.metrics.disconnects.inc()
        elif stop.reason in _ENDED_BY and control is not None and control.headers_sent:
            record.outcome = stop.reason  # DELETE, or nobody came back within the window
            await end_with(control, _ENDED_BY[stop.reason], ex.stats)
        elif control is not None and control.headers_sent:
            await end_with(control, SHUTDOWN, ex.stats)
        else:
            await self._fail(send, ex, SHUTDOWN)

    async def _fail(self, send: Send, ex: _Exchange, failure: ProxyFailure) -> None:
        ex.record.status = failure.status
        ex.stats.failure = failure
        await failure.answer(send, *ex.extra_headers)

    async def _settle(self, ex: _Exchange) -> None:
        """Bill what the upstream answered: token metrics, the log line, the budget."""
        answer, accountant = ex.answer, self.state.accountant
        if answer is None or accountant is None:
            return
        try:
            ex.usage = await accountant.settle(answer)
        except Exception:  # the answer was sent: counting it must not fail the request
            logger.exception("request %s: its usage could not be counted", ex.record.request_id)
            return
        if ex.usage is not None:
            ex.record.usage = ex.usage.to_dict()
            ex.record.model = answer.result.model if answer.result is not None else None

    @staticmethod
    def _end_span(ex: _Exchange, span: RequestSpan) -> None:
        record = ex.record
        span.end(
            status=record.status,
            outcome=record.outcome,
            error_code=record.error_code,
            result=ex.answer.result if ex.answer is not None else None,
            usage=ex.usage,
        )

    def _record(self, ex: _Exchange) -> None:
        record, stats, metrics = ex.record, ex.stats, self.state.metrics
        record.duration_ms = (_clock() - ex.started) * 1000
        record.chunks, record.bytes = stats.chunks, stats.bytes
        record.tokens, record.ttft_ms = stats.result_tokens, stats.ttft_ms
        if stats.failure is not None:
            record.error_code = stats.failure.code
            if record.outcome == "ok":
                record.outcome = (
                    "refused" if record.status < 500 and record.status != 200 else "error"
                )
        metrics.requests.labels(self.route, str(record.status)).inc()
        if stats.chunks:
            metrics.chunks.inc(stats.chunks)
        if stats.bytes:
            metrics.bytes.inc(stats.bytes)
        if stats.ttft_ms is not None:
            metrics.ttft.observe(stats.ttft_ms / 1000)
        if ex.control is not None and ex.control.headers_sent:
            metrics.duration.observe(record.duration_ms / 1000)
        record.emit()


def _reads_answer_text(state: ProxyState, wants_stream: bool) -> bool:
    """Whether anything here reads the answer's text: a relayed one is passed on, not kept,
    unless content is logged or traced (a whole answer is always sent as one body)."""
    tracing = state.tracing
    return (
        not wants_stream
        or state.settings.proxy_log_content
        or (tracing is not None and tracing.record_content)
    )
