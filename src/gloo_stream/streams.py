"""The stream objects ``GlooClient.stream()`` and ``AsyncGlooClient.stream()`` return.

Each is one answer: it sends the request (retrying failures before the stream starts),
hands on chunks the moment they arrive, and closes the response on every path.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import GlooError, StreamDisconnectedError, StreamError, StreamTimeoutError
from gloo_stream.protocol import CompletionProtocol
from gloo_stream.retry import RetryState
from gloo_stream.wire import ChatCompletionChunk

if TYPE_CHECKING:
    from gloo_stream.client import AsyncGlooClient, GlooClient

__all__ = ["AsyncChatStream", "ChatStream", "OnRetry"]

OnRetry = Callable[[Exception, float], None]
clock = time.perf_counter


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


def retry_wait(retry: RetryState, error: GlooError, on_retry: OnRetry | None) -> float:
    """How long to wait before the next attempt (raises ``error`` when none is left)."""
    delay = retry.after_failure(error, now=clock(), jitter=random.random())
    if on_retry is not None:
        on_retry(error, delay)  # told before the wait: a 429's wait can be long
    return delay


class _StreamBase:
    """What both stream twins share: one answer's request, retry budget and outcome."""

    def __init__(
        self,
        body: dict[str, Any],
        *,
        retry: RetryState,
        started_at: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._body = body
        self._retry = retry
        self._started_at = started_at
        self._on_retry = on_retry
        self._response: httpx.Response | None = None
        self._iterated = False
        self.result: StreamResult | None = None

    @property
    def attempts(self) -> int:
        """How many times the request has been sent so far (1 + retries)."""
        return self._retry.attempts

    def _claim(self) -> None:
        if self._iterated:
            raise RuntimeError("this stream was already read; start a new one with stream()")
        self._iterated = True

    def _protocol(self) -> CompletionProtocol:
        return CompletionProtocol(started_at=self._started_at, attempts=self._retry.attempts)

    def _broken(
        self, protocol: CompletionProtocol, exc: httpx.TransportError
    ) -> StreamError | None:
        """The error for a transport failure, or None when the answer had already ended."""
        if protocol.finished:  # after the end, a broken tail costs nothing
            return None
        error = _stream_error(protocol, exc)
        self.result = error.partial
        return error

    def _finish(self, protocol: CompletionProtocol) -> None:
        try:
            self.result = protocol.finish(clock())
        except StreamError as exc:
            self.result = exc.partial
            raise


class ChatStream(_StreamBase):
    """One streamed answer: a context manager and an iterator of chunks as they arrive.

    ``result`` is set when the stream ends; a mid-stream failure raises a ``StreamError``
    whose ``partial`` (also stored in ``result``) keeps what arrived. The response is closed
    on every path: end, break, exception, or garbage collection.
    """

    def __init__(
        self,
        client: GlooClient,
        body: dict[str, Any],
        *,
        retry: RetryState,
        started_at: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        super().__init__(body, retry=retry, started_at=started_at, on_retry=on_retry)
        self._client = client

    def __enter__(self) -> ChatStream:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self._response is not None:
            self._response.close()

    def open(self) -> None:
        """Send the request (retrying failures before the stream starts, per the policy)."""
        while self._response is None:
            try:
                self._response = self._client._open(self._body)
            except GlooError as exc:
                time.sleep(retry_wait(self._retry, exc, self._on_retry))

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._claim()
        self.open()
        response = self._response
        assert response is not None
        protocol = self._protocol()
        try:
            if _is_json(response):
                yield from protocol.feed_json(response.read(), clock())
            else:
                for data in response.iter_bytes():
                    yield from protocol.feed(data, clock())
                    if protocol.stopped:
                        break
        except httpx.TransportError as exc:
            if error := self._broken(protocol, exc):
                raise error from None
        finally:
            self.close()
        self._finish(protocol)

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer's text pieces as they arrive."""
        return (text for chunk in self if (text := chunk.content))

    def close(self) -> None:
        """Release the connection (idempotent)."""
        response, self._response = self._response, None
        if response is not None:
            response.close()


class AsyncChatStream(_StreamBase):
    """The asyncio twin of ``ChatStream``: ``async with`` and ``async for``."""

    def __init__(
        self,
        client: AsyncGlooClient,
        body: dict[str, Any],
        *,
        retry: RetryState,
        started_at: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        super().__init__(body, retry=retry, started_at=started_at, on_retry=on_retry)
        self._client = client

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
        while self._response is None:
            try:
                self._response = await self._client._open(self._body)
            except GlooError as exc:
                await asyncio.sleep(retry_wait(self._retry, exc, self._on_retry))

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        self._claim()
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        await self.open()
        response = self._response
        assert response is not None
        protocol = self._protocol()
        try:
            if _is_json(response):
                for chunk in protocol.feed_json(await response.aread(), clock()):
                    yield chunk
            else:
                async for data in response.aiter_bytes():
                    for chunk in protocol.feed(data, clock()):
                        yield chunk
                    if protocol.stopped:
                        break
        except httpx.TransportError as exc:
            if error := self._broken(protocol, exc):
                raise error from None
        finally:
            await self.aclose()
        self._finish(protocol)

    @property
    async def text_stream(self) -> AsyncIterator[str]:
        """The answer's text pieces as they arrive."""
        async for chunk in self:
            if text := chunk.content:
                yield text

    async def aclose(self) -> None:
        """Release the connection (idempotent)."""
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()
