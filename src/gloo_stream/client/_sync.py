"""``GlooClient`` and ``ChatStream``: the blocking twin, running ``_answer``'s flows with httpx.

Only I/O lives here (sending, reading, closing, sleeping); what to send is decided in
``_base``, when to retry and what the bytes mean in ``_answer`` and the core. ``ChatStream``
is the blocking runner of the flow protocol (``_steps``); ``GlooClient`` is its
``Transmitter``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
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
from gloo_stream.client.tool_loop import OnEvent, ToolLoopStream, loop_options, tell_event
from gloo_stream.errors import GlooError
from gloo_stream.events import AnswerEvent, events_of
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["ChatStream", "GlooClient"]


class GlooClient(ClientBase[httpx.Client]):
    """Streams chat completions from Gloo AI (or any OpenAI-compatible server).

    Keyword arguments (each defaults from settings: environment and ``.env``): ``api_url``,
    ``api_key`` or ``client_id``/``client_secret`` (with ``token_url``), or ``auth``;
    ``timeout`` (connect), ``first_byte_timeout``, ``read_timeout`` (idle between bytes),
    ``max_retries`` or ``retry_policy``, ``headers``, ``settings``, ``http_client`` (an
    ``httpx.Client``). A call that names no routing uses ``GLOO_MODEL`` (or
    ``GLOO_MODEL_FAMILY``) when set, else Gloo's ``auto_routing``; ``GLOO_TRADITION`` fills
    in a missing ``tradition``. A grounded call (``grounded=True``, ``rag_publisher=``,
    ``sources_limit=``, or ``GLOO_RAG_PUBLISHER`` / ``GLOO_SOURCES_LIMIT`` set) goes to
    ``grounded_url`` (``GLOO_GROUNDED_URL``).
    """

    def _new_pool(self) -> httpx.Client:
        return httpx.Client(limits=POOL_LIMITS)

    def __enter__(self) -> GlooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            self._http.close()

    def stream(
        self, prompt_or_messages: Messages, *, max_continuations: int | None = None, **params: Any
    ) -> ChatStream | ToolLoopStream:
        """Start one answer; use as ``with client.stream(...) as s: for chunk in s: ...``.

        With Python functions in ``tools`` (or a ``response_format``) it is a
        ``ToolLoopStream``: the functions run as the model asks, the answer goes on
        (``max_tool_rounds``, ``raise_tool_errors``, ``approve_tool``; README "Tool use").
        A cut answer (each round's, with tools) is continued up to ``max_continuations``.
        """
        params, options = loop_options(params)
        body = self._body(prompt_or_messages, params)
        if options is None:
            return ChatStream(self, body, max_continuations=max_continuations)
        return ToolLoopStream(
            lambda b: ChatStream(self, b, max_continuations=max_continuations),
            **options.stream_arguments(body),
        )

    def stream_body(self, body: Mapping[str, Any]) -> ChatStream:
        """Start one answer from a request body built already, sent as given.

        For callers that build and check the body themselves (with ``build_chat_request``):
        no setting fills anything in. Used like ``stream()``'s result.
        """
        return ChatStream(self, dict(body))

    def complete(
        self,
        prompt_or_messages: Messages,
        *,
        on_token: OnToken | None = None,
        on_retry: OnRetry | None = None,
        on_event: OnEvent | None = None,
        max_continuations: int | None = None,
        **params: Any,
    ) -> StreamResult:
        """Stream one whole answer and return it, retrying per the policy.

        An answer cut after text arrived is continued where it stopped, up to
        ``max_continuations`` times (``GLOO_MAX_CONTINUATIONS``; ``on_token`` sees every
        character once); one cut before any text restarts the request (``on_retry`` is
        told). When the bound is reached, the error raised carries the whole partial answer.
        With ``max_continuations=0`` a cut answer is restarted instead. ``on_retry`` is
        also told before waiting to retry a request that failed before streaming (a 429's
        wait can be long). ``on_event`` gets the answer as typed events
        (``gloo_stream.events``: sources, reasoning, text; with Python function tools the
        loop runs (see ``stream``) and tool calls and results are events too). Grounded answers:
        ``grounded=True``, ``rag_publisher=``, ``sources_limit=`` (1-10),
        ``include_citations=True`` (as for ``stream()``; ``grounded=False`` overrides
        ``GLOO_RAG_PUBLISHER``).
        """
        params, options = loop_options(params)
        body = self._body(prompt_or_messages, params)
        if options is not None:
            with ToolLoopStream(
                lambda b: ChatStream(
                    self, b, on_retry=on_retry, restart=True, max_continuations=max_continuations
                ),
                **options.stream_arguments(body),
            ) as rounds:
                for event in rounds.events:
                    tell_event(event, on_token, on_event)
            assert rounds.result is not None  # the loop ended without raising: it kept one
            return rounds.result
        with ChatStream(
            self, body, on_retry=on_retry, restart=True, max_continuations=max_continuations
        ) as stream:
            for chunk in stream:
                tell(on_token, chunk, on_event)
        return whole_result(stream)

    # -- the runner's I/O (``_steps.Transmitter``): for ChatStream, not a documented API -----

    def transmit(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """Send ``request`` on this client's pool, streamed: the response, its body unread."""
        return self._http.send(request, stream=True, auth=auth)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` between attempts, on the ``sleep`` given (else ``time.sleep``)."""
        (self._sleep or time.sleep)(seconds)


class ChatStream(StreamBase[GlooClient]):
    """One streamed answer: a context manager and an iterator of chunks as they arrive.

    ``result`` is set when the stream ends; a mid-stream failure raises a ``StreamError``
    whose ``partial`` (also stored in ``result``) keeps what arrived. The response is closed
    on every path: end, break, exception, or garbage collection.
    """

    _pieces: Iterator[bytes] | None = None

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
        for _ in self._run(self._opening()):
            pass  # opening hands on no chunks

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._claim()
        try:
            yield from self._run(self._answer())
        finally:
            self.close()

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer's text pieces as they arrive."""
        return (text for chunk in self if (text := chunk.content))

    @property
    def events(self) -> Iterator[AnswerEvent]:
        """The answer as typed events (``gloo_stream.events``): sources, reasoning, text.

        Reads the same chunks as ``text_stream``: use one of the two per stream.
        """
        return (event for chunk in self for event in events_of(chunk))

    def close(self) -> None:
        """Release the connection (idempotent)."""
        response, self._response, self._pieces = self._response, None, None
        if response is not None:
            response.close()
        self._abandon_span()

    def _run(self, flow: Flow[Any]) -> Iterator[ChatCompletionChunk]:
        """Run ``flow``: do the I/O each step asks for, hand on the chunks it has ready."""
        step = next_step(flow, None)
        while step is not None:
            if isinstance(step, list):
                yield from step
                step = next_step(flow, None)
            else:
                step = next_step(flow, self._do(step))

    def _do(self, step: IOStep) -> object:
        """One step's I/O; a failure is returned, for the flow to say what it means."""
        try:
            match step:
                case ReadSome(response):
                    if self._pieces is None:
                        self._pieces = response.iter_bytes()
                    return next(self._pieces, None)
                case SendRequest(request, auth):
                    return self._client.transmit(request, auth)
                case ReadAll(response):
                    return response.read()
                case ReadAndClose(response):
                    try:
                        return response.read()
                    finally:
                        response.close()
                case Sleep(seconds):
                    self._client.pause(seconds)
                case Close():
                    self.close()
        except (httpx.TransportError, GlooError) as exc:
            return exc
        return None
