"""``POST /api/stream`` and ``POST /v1/chat/completions``: pure ASGI, no response buffering.

``CompletionsEndpoint`` is the route; each request is a ``CompletionExchange`` whose methods
are its steps.

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

from gloo_stream.accumulate import StreamResult
from gloo_stream.client import AsyncChatStream, AsyncGlooClient
from gloo_stream.errors import ContentFilterError, GlooError, StreamError
from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import NOSNIFF, Headers, Receive, Scope, Send, header, respond
from gloo_stream.proxy.callback_relay import relay_answer
from gloo_stream.proxy.failures import (
    SHUTDOWN,
    ProxyFailure,
    RequestRefused,
    failure_from_exception,
    stream_failure,
)
from gloo_stream.proxy.observe.accesslog import RequestRecord, logger
from gloo_stream.proxy.observe.telemetry import RequestSpan
from gloo_stream.proxy.policy.accounting import Answer, ask_for_usage, reservation_tokens
from gloo_stream.proxy.policy.limits import admit_request
from gloo_stream.proxy.policy.limits.budget import Reservation
from gloo_stream.proxy.policy.upstream_answer import not_an_answer
from gloo_stream.proxy.relay import RelayStats, StreamControl, StreamStopped, end_with
from gloo_stream.proxy.resume import ResumableAnswer
from gloo_stream.proxy.routes.body_admission import read_json_body, upstream_body
from gloo_stream.proxy.routes.openai_dialect import completion_body, translate_request
from gloo_stream.proxy.state import ProxyState
from gloo_stream.usage import BilledUsage

__all__ = ["CompletionExchange", "CompletionsEndpoint"]

_clock = time.perf_counter
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Why a resumable answer was stopped from outside, and the event its stream ends with.
_ENDED_BY = {"cancel": failures.STREAM_CANCELLED, "abandoned": failures.STREAM_ABANDONED}
SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class CompletionsEndpoint:
    """The streaming completions route; ``openai=True`` speaks OpenAI's dialect (``/v1``).

    The route is shared by every request; each request gets its own ``CompletionExchange``.
    """

    def __init__(self, state: ProxyState, *, openai: bool) -> None:
        self.state = state
        self.openai = openai
        self.route = "/v1/chat/completions" if openai else "/api/stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request end to end; never raises into the server."""
        await CompletionExchange(self, scope, receive, send).run()


class CompletionExchange:
    """One request to a completions route: its channel (scope, receive, send) and its state.

    Like sse-starlette's ``EventSourceResponse``, which holds its own ``send``/``receive``
    and state while its methods are the steps of one response, each step here is a method
    reading ``self``: admission, the upstream request, the relay, the bill, the log line.
    Built once per request; the per-chunk path (``relay_chunks``) sends through the
    ``StreamControl`` directly, so the object adds nothing per event.
    """

    __slots__ = (
        "answer",
        "control",
        "extra_headers",
        "openai",
        "receive",
        "record",
        "reservation",
        "resumable",
        "route",
        "scope",
        "send",
        "span",
        "started",
        "state",
        "stats",
        "usage",
        "wants_usage",
    )

    def __init__(
        self, endpoint: CompletionsEndpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        state = self.state = endpoint.state
        self.openai = endpoint.openai
        self.route = endpoint.route
        self.scope, self.receive, self.send = scope, receive, send
        self.started = _clock()
        incoming = header(scope, b"x-request-id")
        request_id = (
            incoming.decode()
            if incoming is not None and _REQUEST_ID.fullmatch(incoming)
            else secrets.token_hex(8)
        )
        self.record = RequestRecord(request_id=request_id, route=self.route, method=scope["method"])
        self.extra_headers: Headers = [
            *state.cors.headers(scope),
            (b"x-request-id", request_id.encode()),
            NOSNIFF,
        ]
        """Headers every response to this request carries (CORS, request id, budget left)."""
        self.stats = RelayStats()
        self.control: StreamControl | None = None
        self.span: RequestSpan | None = None
        self.answer: Answer | None = None
        """What came back from upstream, once the request was sent there (for the bill)."""
        self.usage: BilledUsage | None = None
        self.reservation: Reservation | None = None
        """The tokens taken from the caller's budget before its request went upstream."""
        self.wants_usage = False
        self.resumable: ResumableAnswer | None = None
        """With ``PROXY_RESUME_WINDOW``: the send that numbers and keeps the events."""

    def headers(self, *base: tuple[bytes, bytes]) -> Headers:
        """``base`` followed by the headers every response to this request carries."""
        return [*base, *self.extra_headers]

    async def run(self) -> None:
        """Handle the request end to end; never raises into the server."""
        state, record = self.state, self.record
        if state.tracing is not None:
            self.span = state.tracing.request_span(self.scope, self.route, record.request_id)
            self.span.activate()  # the upstream attempts' spans become its children
        try:
            await self._handle()
        except RequestRefused as exc:
            if exc.limit is not None:
                state.metrics.limited.labels(exc.limit).inc()
            self.extra_headers.extend(exc.headers)
            await self._fail(exc.failure)
        except ConnectionAbortedError:
            record.outcome, record.status = "disconnect", 499
        except Exception:
            logger.exception("request %s failed unexpectedly", record.request_id)
            if not record.status:  # nothing sent yet: a status can still be given
                await self._fail(failures.internal_error())
        finally:
            await self._settle()
            self._record()
            if self.span is not None:
                self._end_span(self.span)

    async def _handle(self) -> None:
        state = self.state
        await self._admit()
        client_id = self.record.client
        data = await read_json_body(self.scope, self.receive, state.settings.proxy_max_body_bytes)
        if self.openai:
            body, wants_stream = translate_request(data, state.settings)
        else:
            body, wants_stream = upstream_body(data, state.settings), True
        if state.settings.proxy_log_content:
            self.record.content = {"messages": body["messages"]}
        self.wants_usage = ask_for_usage(body, always=state.settings.proxy_upstream_usage)
        if self.span is not None:
            self.span.admitted(body, client_id)
        if state.client is None:
            await self._fail(failures.UPSTREAM_NOT_CONFIGURED)
            return
        await state.slots.admit(client_id)
        try:
            if state.budgets is not None:  # reserved last: every cheaper refusal came first
                reserve = reservation_tokens(data, body, state.settings.proxy_budget_reserve_tokens)
                self.reservation, left = await state.budgets.reserve(client_id, reserve)
                self.extra_headers = [left, *(h for h in self.extra_headers if h[0] != left[0])]
            await self._upstream(state.client, body, wants_stream)
        finally:
            state.slots.release(client_id)

    async def _admit(self) -> None:
        """The checks before the body is read: method, client key, request rate, draining,
        a spent token budget. Each raises ``RequestRefused``; ``run`` answers it. (The
        request's cost is reserved once the body says what it may be.)"""
        if self.scope["method"] != "POST":
            raise RequestRefused(failures.USE_POST)
        state = self.state
        client_id = self.record.client = await state.auth.admit(self.scope)
        await admit_request(state.rate, client_id)
        if state.streams.draining:
            raise RequestRefused(SHUTDOWN)
        if state.budgets is not None:  # a spent budget is refused before the body is read
            self.extra_headers.append(await state.budgets.check(client_id))

    async def _upstream(
        self, client: AsyncGlooClient, body: dict[str, Any], wants_stream: bool
    ) -> None:
        state, record = self.state, self.record
        control = self.control = StreamControl(state.settings.proxy_heartbeat_interval)
        sent = _clock()
        stream = client.stream_body(body)
        # A cut answer is continued with its text so far, so that text is kept then.
        stream.keep_text = _reads_answer_text(state, wants_stream) or client.max_continuations > 0
        resumable = await self._watch(control) if wants_stream else None
        if resumable is None:
            control.watch_caller(self.receive, self.send)
        state.streams.add(control)
        state.metrics.active_streams.inc()
        try:
            await self._answer(stream, wants_stream)
        except asyncio.CancelledError:
            stop = control.stopped()
            await self._stopped(stop)
            if stop.foreign:
                raise
        finally:
            control.finish()
            state.streams.discard(control)
            state.metrics.active_streams.dec()
            record.attempts = stream.attempts
            if stream.attempts > 1:
                state.metrics.retries.inc(stream.attempts - 1)
            await stream.aclose()
            if resumable is not None:
                resumable.close()
                if not resumable.attended and record.outcome == "ok":
                    record.outcome = "detached"  # generated on for a caller to come back to
                    state.metrics.disconnects.inc()
            failure = self.stats.failure
            self.answer = Answer(
                record.client,
                body,
                stream.partial_result(),  # what arrived, when the caller left early
                _clock() - sent,
                failure.code if failure is not None else None,
            )
            self._ended(self.answer.result)

    def _ended(self, result: StreamResult | None) -> None:
        """How the answer ended, in the outcome word every face uses, and its seams: the log
        line, ``gloo_proxy_continuations_total``, a span event per seam."""
        record = self.record
        if result is None or record.outcome != "ok":
            return  # refused, failed before any answer, or the caller left
        if self.stats.failure is None:
            record.outcome = result.outcome
        elif self.control is not None and self.control.headers_sent:
            record.outcome = "cut"  # an error event ended an answer that had begun
        if not result.seams:
            return
        seams = record.continuations = [seam.to_dict() for seam in result.seams]
        counter = self.state.metrics.continuations
        for seam in seams:
            counter.labels(seam["reason"], seam["upstream"], record.outcome).inc()
            if self.span is not None:
                self.span.continued(seam)

    async def _watch(self, control: StreamControl) -> ResumableAnswer | None:
        """With ``PROXY_RESUME_WINDOW``: events go through a ``ResumableAnswer``, which
        numbers and keeps them, and a caller who leaves does not stop the upstream."""
        resume = self.state.resume
        if resume is None:
            return None
        resumable = self.resumable = await resume.keep(
            self.record.client, self.route, self.send, control.stop
        )
        if resumable is not None:
            control.watch_caller(resumable.watch(self.receive), resumable)
        return resumable

    async def _answer(self, stream: AsyncChatStream, wants_stream: bool) -> None:
        state = self.state
        try:
            await stream.open()
        except GlooError as exc:
            state.last_upstream_error = type(exc).__name__
            await self._fail(failure_from_exception(exc, state.redactor()))
            return
        state.last_upstream_error = None
        if (refused := not_an_answer(stream)) is not None:  # before any byte is relayed
            await self._fail(refused)
            return
        self.record.upstream = stream.upstream
        state.metrics.upstream_answers.labels(stream.upstream).inc()
        if not wants_stream:
            await self._whole(stream)
            return
        control = self.control
        assert control is not None
        resumable = self.resumable
        stream_id = () if resumable is None else ((b"x-stream-id", resumable.stream_id.encode()),)
        await control.start_response(self.headers(*SSE_HEADERS, *stream_id))
        self.record.status = 200
        await relay_answer(
            stream,
            control,
            self.stats,
            self.send if resumable is None else None,  # a resumable answer keeps its send
            done_event=self.openai,
            redactor=state.redactor(),
            usage_chunk=self.wants_usage,
        )

    async def _whole(self, stream: AsyncChatStream) -> None:
        """A non-streamed OpenAI request: the whole answer as one ``chat.completion``."""
        try:
            async for _ in stream:
                pass
            result = stream.result
        except ContentFilterError as exc:
            result = exc.partial
        except StreamError as exc:
            await self._fail(stream_failure(exc, self.state.redactor()))
            return
        assert result is not None
        stats = self.stats
        stats.result_tokens, stats.ttft_ms = result.token_count, result.ttft_ms
        body = completion_body(result)
        redactor = self.state.redactor()
        if redactor:  # an upstream that echoed a secret in its answer: never relayed
            body = redactor.text(body.decode()).encode()
        self.record.status = 200
        stats.bytes = len(body)
        await respond(self.send, 200, body, self.headers((b"content-type", b"application/json")))

    async def _stopped(self, stop: StreamStopped) -> None:
        record, control = self.record, self.control
        if stop.reason == "disconnect":
            record.outcome = "disconnect"
            if not record.status:
                record.status = 499  # nginx's "client closed request", for logs and metrics
            self.state.metrics.disconnects.inc()
        elif stop.reason in _ENDED_BY and control is not None and control.headers_sent:
            record.outcome = stop.reason  # DELETE, or nobody came back within the window
            await end_with(control, _ENDED_BY[stop.reason], self.stats)
        elif control is not None and control.headers_sent:
            await end_with(control, SHUTDOWN, self.stats)
        else:
            await self._fail(SHUTDOWN)

    async def _fail(self, failure: ProxyFailure) -> None:
        self.record.status = failure.status
        self.stats.failure = failure
        await failure.send_response(self.send, *self.extra_headers)

    async def _settle(self) -> None:
        """Bill what the upstream answered: token metrics, the log line, the budget."""
        answer, accountant = self.answer, self.state.accountant
        if accountant is None or (answer is None and self.reservation is None):
            return
        try:
            self.usage = await accountant.settle(answer, self.reservation)
        except Exception:  # the answer was sent: counting it must not fail the request
            logger.exception("request %s: its usage could not be counted", self.record.request_id)
            return
        if self.usage is not None and answer is not None:
            self.record.usage = self.usage.to_dict()
            self.record.model = answer.result.model if answer.result is not None else None

    def _end_span(self, span: RequestSpan) -> None:
        record = self.record
        span.end(
            status=record.status,
            outcome=record.outcome,
            error_code=record.error_code,
            result=self.answer.result if self.answer is not None else None,
            usage=self.usage,
        )

    def _record(self) -> None:
        record, stats, metrics = self.record, self.stats, self.state.metrics
        record.duration_ms = (_clock() - self.started) * 1000
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
        if self.control is not None and self.control.headers_sent:
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
