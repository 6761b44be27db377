"""``AsyncGlooClient`` and ``AsyncChatStream``: the asyncio twin, running ``_answer``'s flows.

Only I/O lives here (sending, reading, closing, sleeping, each awaited); what to send is
decided in ``_base``, when to retry and what the bytes mean in ``_answer`` and the core.
``AsyncChatStream`` is the asyncio runner of the flow protocol (``_steps``);
``AsyncGlooClient`` is its ``AsyncTransmitter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from gloo_stream.accumulate import StreamResult
from gloo_stream.client._answer import StreamBase, tell, whole_result
from gloo_stream.client._base import POOL_LIMITS, ClientBase, Messages, OnRetry, OnToken
from gloo_stream.client._steps import (
    Close,
    Flow,
    IOStep,
    ReadAll,
    ReadAndClose,
    ReadSome,
    SendRequest,
    Sleep,
    next_step,
)
from gloo_stream.client.auth import BearerAuth
from gloo_stream.client.tool_loop import (
    AsyncToolLoopStream,
    OnEvent,
    loop_options,
    tell_event,
)
from gloo_stream.client.transport import BODY_EXTENSION, StreamingTransport
from gloo_stream.errors import GlooError
from gloo_stream.events import AnswerEvent, events_of
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["AsyncChatStream", "AsyncGlooClient"]


class AsyncGlooClient(ClientBase[httpx.AsyncClient]):
    """The asyncio twin of ``GlooClient``: same arguments, ``await``-able methods.

    ``http_client`` is an ``httpx.AsyncClient``; for thousands of concurrent streams, give
    it ``transport=StreamingTransport()`` (``gloo_stream.client.transport``).
    """

    def _new_pool(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(limits=POOL_LIMITS)

    async def __aenter__(self) -> AsyncGlooClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            await self._http.aclose()

    def stream(
        self, prompt_or_messages: Messages, *, max_continuations: int | None = None, **params: Any
    ) -> AsyncChatStream | AsyncToolLoopStream:
        """Start one answer; use as ``async with client.stream(...) as s: async for c in s``.

        With Python functions in ``tools`` (or a ``response_format``) it is an
        ``AsyncToolLoopStream``; see ``GlooClient.stream``.
        """
        params, options = loop_options(params)
        body = self._body(prompt_or_messages, params)
        if options is None:
            return AsyncChatStream(self, body, max_continuations=max_continuations)
        return AsyncToolLoopStream(
            lambda b: AsyncChatStream(self, b, max_continuations=max_continuations),
            **options.stream_arguments(body),
        )

    def stream_body(self, body: Mapping[str, Any]) -> AsyncChatStream:
        """Start one answer from a request body built already, sent as given.

        For callers that build and check the body themselves, as the proxy does (with
        ``build_chat_request`` and its own caps): no setting fills anything in. Used like
        ``stream()``'s result: ``async with client.stream_body(body) as s: async for c in s``,
        or ``await s.open()`` first to learn whether the server accepted the request.
        """
        return AsyncChatStream(self, dict(body))

    async def complete(
        self,
        prompt_or_messages: Messages,
        *,
        on_token: OnToken | None = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
        max_continuations: int | None = None,
        **params: Any,
    ) -> StreamResult:
        """Stream one whole answer and return it; see ``GlooClient.complete``."""
        params, options = loop_options(params)
        body = self._body(prompt_or_messages, params)
        if options is not None:
            async with AsyncToolLoopStream(
                lambda b: AsyncChatStream(
                    self, b, on_retry=on_retry, restart=True, max_continuations=max_continuations
                ),
                **options.stream_arguments(body),
            ) as rounds:
                async for event in rounds.events:
                    tell_event(event, on_token, on_event)
            assert rounds.result is not None  # the loop ended without raising: it kept one
            return rounds.result
        async with AsyncChatStream(
            self, body, on_retry=on_retry, restart=True, max_continuations=max_continuations
        ) as stream:
            async for chunk in stream:
                tell(on_token, chunk, on_event)
        return whole_result(stream)

    # -- the runner's I/O (``_steps.AsyncTransmitter``): for AsyncChatStream, not documented --

    async def transmit(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """Send ``request`` on this client's pool, streamed: the response, its body unread.

        To a ``StreamingTransport`` with a static key (or none) the request goes straight to
        the transport: httpx's send adds nothing such a request uses here (redirects are not
        followed, no cookies, no hooks) and costs about a quarter of a relayed request's CPU.
        """
        http = self._http
        if (auth is None or type(auth) is BearerAuth) and not http.is_closed:
            hooks = http.event_hooks
            transport = http._transport_for_url(request.url)
            if isinstance(transport, StreamingTransport) and not any(hooks.values()):
                if auth is not None:
                    auth.sign(request)
                response = await transport.handle_async_request(request)
                response.request = request
                return response
        return await http.send(request, stream=True, auth=auth)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` between attempts, on the ``sleep`` given (else ``asyncio.sleep``)."""
        await (self._sleep or asyncio.sleep)(seconds)


class AsyncChatStream(StreamBase[AsyncGlooClient]):
    """The asyncio twin of ``ChatStream``: ``async with`` and ``async for``."""

    _pieces: AsyncIterator[bytes] | None = None

    async def __aenter__(self) -> AsyncChatStream:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Send the request (retrying failures before the stream starts, per the policy)."""
        async for _ in self._run(self._opening()):
            pass  # opening hands on no chunks

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        self._claim()
        return self._run(self._answer())

    def batches(self) -> AsyncIterator[list[ChatCompletionChunk]]:
        """The chunks in batches, one per read of the response that completed any.

        For a relay: several events that arrived together go on in one write. Iterate
        either this or the stream itself, not both.
        """
        self._claim()
        return self._run(self._answer(), batched=True)

    @property
    async def text_stream(self) -> AsyncIterator[str]:
        """The answer's text pieces as they arrive."""
        async for chunk in self:
            if text := chunk.content:
                yield text

    @property
    async def events(self) -> AsyncIterator[AnswerEvent]:
        """The answer as typed events (``gloo_stream.events``): sources, reasoning, text.

        Reads the same chunks as ``text_stream``: use one of the two per stream.
        """
        async for chunk in self:
            for event in events_of(chunk):
                yield event

    def flow(self) -> Flow[None]:
        """The answer's course as a flow (``_steps``), for a runner of one's own.

        A relay drives it inside the event loop's callbacks (``proxy/callback_relay.py``):
        each read of the body is fed in as it arrives, ``do_step`` does any other I/O it
        asks for. Claims the stream as iterating it does; the runner closes the stream.
        """
        self._claim()
        return self._answer()

    async def do_step(self, step: IOStep) -> object:
        """One I/O step of ``flow()``: its outcome, or the failure for the flow to judge."""
        return await self._do(step)

    async def aclose(self) -> None:
        """Release the connection (idempotent)."""
        response, self._response, self._pieces = self._response, None, None
        if response is not None:
            await response.aclose()
            # httpx's Response and the stream wrapping its body refer to each other: let go
            # of the body, so the finished response is freed now, not by a full collection.
            response.stream = _CLOSED_BODY
        self._abandon_span()

    async def _run(self, flow: Flow[Any], *, batched: bool = False) -> AsyncIterator[Any]:
        """Run ``flow``: do the I/O each step asks for, hand on the chunks it has ready.

        ``batched`` hands on each ready list whole. The flow closes the response where it
        ends normally; on any other way out (an error, a cancelled task, a consumer that
        stopped early) this does.
        """
        try:
            step = next_step(flow, None)
            while step is not None:
                if isinstance(step, list):
                    if batched:
                        yield step
                    else:
                        for chunk in step:
                            yield chunk
                    step = next_step(flow, None)
                else:
                    step = next_step(flow, await self._do(step))
        except BaseException:
            await self.aclose()
            raise

    async def _do(self, step: IOStep) -> object:
        """One step's I/O; a failure is returned, for the flow to say what it means."""
        try:
            match step:
                case ReadSome(response):
                    if self._pieces is None:
                        self._pieces = _pieces_of(response)
                    return await anext(self._pieces, None)
                case SendRequest(request, auth):
                    return await self._client.transmit(request, auth)
                case ReadAll(response):
                    return await response.aread()
                case ReadAndClose(response):
                    try:
                        return await response.aread()
                    finally:
                        await response.aclose()
                case Sleep(seconds):
                    await self._client.pause(seconds)
                case Close():
                    await self.aclose()
        except (httpx.TransportError, GlooError) as exc:
            return exc
        return None


_CLOSED_BODY = httpx.ByteStream(b"")


class _DirectBody:
    """A body read straight from ``StreamingTransport``: one await per read, no layers."""

    __slots__ = ("_body",)

    def __init__(self, body: Any) -> None:
        self._body = body

    def __aiter__(self) -> _DirectBody:
        return self

    async def __anext__(self) -> bytes:
        data: bytes | None = await self._body.read_some()
        if data is None:
            raise StopAsyncIteration
        return data


def direct_body(response: httpx.Response) -> Any:
    """The body of a ``StreamingTransport`` response, read without httpx's layers (its
    ``read_ready``, ``listen``, ``pause``); None for any other response."""
    body = response.extensions.get(BODY_EXTENSION)
    # httpx's own iteration undoes a content-encoding; the direct read is for identity only.
    if body is not None and "content-encoding" not in response.headers:
        return body
    return None


def _pieces_of(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive: from the transport itself when it allows."""
    body = response.extensions.get(BODY_EXTENSION)
    # httpx's own iteration undoes a content-encoding; the direct read is for identity only.
    if body is not None and "content-encoding" not in response.headers:
        return _DirectBody(body)
    return response.aiter_bytes()
