"""``ToolLoopStream`` and its asyncio twin: answers in rounds, running Python function tools.

A loop over answers, each answer one normal stream (``ChatStream``: its retries, fallback
and reconnects are its own): the round's chunks are handed on as they arrive; when the
answer ends asking for function tools, the functions run (concurrently in the async twin)
and the next round is asked with their results. The rules (which calls run, what is sent
next, when to stop) are ``gloo_stream.tools.ToolLoop``'s; only the I/O is here. A
``response_format`` rides the same stream (one round, or the last): ``json_stream`` hands
the JSON over as it grows and ``result.parsed`` holds it at the end.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gloo_stream.accumulate import StreamResult, ToolCall, ToolResult
from gloo_stream.errors import StreamError
from gloo_stream.events import AnswerEvent, CallTracker, TextDelta, ToolRan
from gloo_stream.structured import PartialJson, ResponseFormat, with_parsed
from gloo_stream.tools import (
    DEFAULT_MAX_TOOL_ROUNDS,
    Approve,
    FunctionTool,
    RunCalls,
    Stop,
    ToolLoop,
    ToolSet,
    prepare,
    runs_tools,
    tool_result,
)
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "AsyncToolLoopStream",
    "LoopOptions",
    "OnEvent",
    "ToolLoopStream",
    "loop_options",
    "tell_event",
]

Item = ChatCompletionChunk | AnswerEvent
OnEvent = Callable[[AnswerEvent], None]


def tell_event(
    event: AnswerEvent, on_token: Callable[[str], None] | None, on_event: OnEvent | None
) -> None:
    """Give ``on_token`` the event's text (if it is text) and ``on_event`` the event."""
    if on_token is not None and isinstance(event, TextDelta):
        on_token(event.text)
    if on_event is not None:
        on_event(event)


@dataclass(frozen=True, slots=True)
class LoopOptions:
    """A call's tool-loop keywords, taken out of its parameters (they are not sent)."""

    toolset: ToolSet
    response_format: ResponseFormat | None
    max_rounds: int
    raise_tool_errors: bool
    approve_tool: Approve | None

    def stream_arguments(self, body: dict[str, Any]) -> dict[str, Any]:
        """The keywords of a loop stream sending ``body`` first."""
        return {
            "loop": ToolLoop(body, self.toolset, self.max_rounds),
            "response_format": self.response_format,
            "raise_tool_errors": self.raise_tool_errors,
            "approve_tool": self.approve_tool,
        }


def loop_options(params: Mapping[str, Any]) -> tuple[dict[str, Any], LoopOptions | None]:
    """The parameters to send, and the loop's options when the call needs a loop stream.

    It does when ``tools`` holds a Python function or ``response_format`` is given;
    ``max_tool_rounds``, ``raise_tool_errors`` and ``approve_tool`` are never sent.
    """
    sent = dict(params)
    max_rounds = sent.pop("max_tool_rounds", None)
    raise_errors = bool(sent.pop("raise_tool_errors", False))
    approve = sent.pop("approve_tool", None)
    toolset = ToolSet(sent["tools"]) if runs_tools(sent.get("tools")) else None
    given = sent.get("response_format")
    response_format = ResponseFormat(given) if given is not None else None
    if toolset is not None:
        sent["tools"] = toolset.specs
    if response_format is not None:
        sent["response_format"] = response_format.body
    if toolset is None and response_format is None:
        return sent, None
    options = LoopOptions(
        toolset=toolset or ToolSet([]),
        response_format=response_format,
        max_rounds=DEFAULT_MAX_TOOL_ROUNDS if max_rounds is None else max_rounds,
        raise_tool_errors=raise_errors,
        approve_tool=approve,
    )
    ToolLoop({}, options.toolset, options.max_rounds)  # a bad max_tool_rounds fails now
    return sent, options


class RoundStream(Protocol):
    """One round's answer (a ``ChatStream``)."""

    result: StreamResult | None

    def open(self) -> None:
        """Send the request."""

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        """The chunks as they arrive."""
        ...

    def close(self) -> None:
        """Release the connection."""


class AsyncRoundStream(Protocol):
    """One round's answer (an ``AsyncChatStream``)."""

    result: StreamResult | None

    async def open(self) -> None:
        """Send the request."""

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        """The chunks as they arrive."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""


class _LoopBase:
    """What both twins share: the loop's rules, its options, and the result at the end."""

    def __init__(
        self,
        loop: ToolLoop,
        *,
        response_format: ResponseFormat | None,
        raise_tool_errors: bool,
        approve_tool: Approve | None,
    ) -> None:
        self._loop = loop
        self._format = response_format
        self._raise = raise_tool_errors
        self._approve = approve_tool
        self._claimed = False
        self.result: StreamResult | None = None

    @property
    def tool_results(self) -> list[ToolResult]:
        """The tool calls run so far, over every round."""
        return list(self._loop.results)

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError("this stream was already read; start a new one with stream()")
        self._claimed = True

    def _round_ended(self, stream_result: StreamResult | None) -> RunCalls | Stop:
        assert stream_result is not None  # the round's stream ended without raising
        return self._loop.after_answer(stream_result)

    def _finish(self, result: StreamResult) -> None:
        self.result = with_parsed(result, self._format) if self._format else result

    def _failed(self, exc: StreamError) -> None:
        # The partial answer keeps the tool results of the rounds before it.
        exc.partial = self._loop.finished(exc.partial)
        self.result = exc.partial


class ToolLoopStream(_LoopBase):
    """One answer over as many rounds as its tools need: a context manager and an iterator
    of chunks (every round's), like ``ChatStream``.

    ``text_stream``: the text of every round as one stream; ``events()``: text, calls as
    they stream, calls complete, tool results; ``json_stream``: the JSON answer as it grows.
    ``result`` at the end: the last round's answer with ``tool_results`` (and ``parsed``).
    """

    def __init__(self, open_round: Callable[[dict[str, Any]], RoundStream], **kw: Any) -> None:
        super().__init__(**kw)
        self._open_round = open_round
        self._current: RoundStream | None = None

    def __enter__(self) -> ToolLoopStream:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Send the first round's request (retrying per the policy), to fail early."""
        if self._current is None:
            self._current = self._open_round(self._loop.body)
        self._current.open()

    def close(self) -> None:
        """Release the round's connection (idempotent)."""
        if self._current is not None:
            self._current.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return (item for item in self._items() if isinstance(item, ChatCompletionChunk))

    @property
    def events(self) -> Iterator[AnswerEvent]:
        """Text deltas, tool calls as they stream and once complete, and tool results."""
        return (item for item in self._items() if not isinstance(item, ChatCompletionChunk))

    @property
    def text_stream(self) -> Iterator[str]:
        """The text of every round as one stream of pieces."""
        return (item.text for item in self._items() if isinstance(item, TextDelta))

    @property
    def json_stream(self) -> Iterator[Any]:
        """The answer's JSON as it grows: ever more complete objects (``response_format``)."""
        reader = PartialJson()
        for text in self.text_stream:
            changed, value = reader.feed(text)
            if changed:
                yield value

    def _items(self) -> Iterator[Item]:
        self._claim()
        try:
            while True:
                stream = self._current or self._open_round(self._loop.body)
                self._current = stream
                tracker = CallTracker()
                try:
                    for chunk in stream:
                        yield chunk
                        yield from tracker.events(chunk)
                except StreamError as exc:
                    self._failed(exc)
                    raise
                yield from tracker.completed(stream.result or StreamResult())
                decision = self._round_ended(stream.result)
                if isinstance(decision, Stop):
                    self._finish(decision.result)
                    return
                ran = []
                for call, tool in decision.calls:
                    ran.append(outcome := self._run(call, tool))
                    yield ToolRan(outcome)
                self._current = self._open_round(self._loop.next_body(ran))
        finally:
            self.close()

    def _run(self, call: ToolCall, tool: FunctionTool) -> ToolResult:
        arguments = prepare(call, tool, self._approve)
        if isinstance(arguments, ToolResult):
            return arguments
        try:
            value = tool.function(**arguments)
            if inspect.isawaitable(value):
                value = asyncio.run(_awaited(value))  # an async tool in the blocking twin
        except Exception as exc:
            if self._raise:
                raise
            return tool_result(call, arguments, error=exc)
        return tool_result(call, arguments, value=value)


class AsyncToolLoopStream(_LoopBase):
    """The asyncio twin of ``ToolLoopStream``: ``async with``, ``async for``; the calls of
    one round run concurrently (sync functions in a worker thread each)."""

    def __init__(self, open_round: Callable[[dict[str, Any]], AsyncRoundStream], **kw: Any) -> None:
        super().__init__(**kw)
        self._open_round = open_round
        self._current: AsyncRoundStream | None = None

    async def __aenter__(self) -> AsyncToolLoopStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Send the first round's request (retrying per the policy), to fail early."""
        if self._current is None:
            self._current = self._open_round(self._loop.body)
        await self._current.open()

    async def aclose(self) -> None:
        """Release the round's connection (idempotent)."""
        if self._current is not None:
            await self._current.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        async for item in self._items():
            if isinstance(item, ChatCompletionChunk):
                yield item

    @property
    async def events(self) -> AsyncIterator[AnswerEvent]:
        """Text deltas, tool calls as they stream and once complete, and tool results."""
        async for item in self._items():
            if not isinstance(item, ChatCompletionChunk):
                yield item

    @property
    async def text_stream(self) -> AsyncIterator[str]:
        """The text of every round as one stream of pieces."""
        async for item in self._items():
            if isinstance(item, TextDelta):
                yield item.text

    @property
    async def json_stream(self) -> AsyncIterator[Any]:
        """The answer's JSON as it grows: ever more complete objects (``response_format``)."""
        reader = PartialJson()
        async for text in self.text_stream:
            changed, value = reader.feed(text)
            if changed:
                yield value

    async def _items(self) -> AsyncIterator[Item]:
        self._claim()
        try:
            while True:
                stream = self._current or self._open_round(self._loop.body)
                self._current = stream
                tracker = CallTracker()
                try:
                    async for chunk in stream:
                        yield chunk
                        for event in tracker.events(chunk):
                            yield event
                except StreamError as exc:
                    self._failed(exc)
                    raise
                for event in tracker.completed(stream.result or StreamResult()):
                    yield event
                decision = self._round_ended(stream.result)
                if isinstance(decision, Stop):
                    self._finish(decision.result)
                    return
                try:
                    async with asyncio.TaskGroup() as group:
                        tasks = [group.create_task(self._run(c, t)) for c, t in decision.calls]
                except BaseExceptionGroup as failed:  # raise_tool_errors: the tool's own error
                    raise failed.exceptions[0] from None
                ran = [task.result() for task in tasks]
                for outcome in ran:
                    yield ToolRan(outcome)
                self._current = self._open_round(self._loop.next_body(ran))
        finally:
            await self.aclose()

    async def _run(self, call: ToolCall, tool: FunctionTool) -> ToolResult:
        arguments = prepare(call, tool, self._approve)
        if isinstance(arguments, ToolResult):
            return arguments
        try:
            if tool.is_async:
                value = await tool.function(**arguments)
            else:
                value = await asyncio.to_thread(tool.function, **arguments)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            if self._raise:
                raise
            return tool_result(call, arguments, error=exc)
        return tool_result(call, arguments, value=value)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
