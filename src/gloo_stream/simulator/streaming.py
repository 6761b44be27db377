"""Writing a completion to the ASGI ``send``: paced SSE streams, whole JSON answers, and faults.

ASGI servers report a client that went away only through ``receive`` (uvicorn's ``send``
silently drops bytes for a closed connection), so the stream asks ``receive`` itself, with no
watcher task per stream: long waits are timed waits on ``receive()``, so they end the moment the
client leaves; between tokens a plain sleep is followed by a non-blocking peek.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Receive, Send

from gloo_stream.simulator.chunks import ChunkEncoder, completion_body
from gloo_stream.simulator.faults import Fault
from gloo_stream.simulator.toolcalls import tool_call_deltas

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_MID_STREAM = frozenset({"stall", "disconnect", "truncate", "malformed", "error", "content_filter"})
_LONG_WAIT = 0.1  # waits at least this long end the moment the client disconnects


class SimulatedDisconnect(Exception):  # noqa: N818 - it names the event, like ClientDisconnect
    """Raised inside a response to make the server drop the connection mid-body (a fault)."""


@dataclass(slots=True)
class Plan:
    """Everything decided about one completion before the first byte is sent."""

    completion_id: str
    created: int
    model: str
    routing: dict[str, Any]
    text_tokens: tuple[str, ...]
    token_json: tuple[bytes, ...]
    finish_reason: str
    prompt_tokens: int
    tool_calls: list[dict[str, Any]] | None
    fault: Fault | None
    first_token_delay: float
    interval: float
    send_done: bool
    usage_chunk: bool = False
    """``stream_options.include_usage``: usage comes last, alone (``choices: []``), as OpenAI
    sends it, instead of on the finish chunk as Gloo does."""
    citations: list[dict[str, Any]] | None = None
    """A grounded answer's sources, sent as the first event (None: no citations event)."""
    citations_variant: str = "chunk"
    reasoning: tuple[str, ...] = ()
    """Thinking sent before the answer, one delta each, under ``reasoning_field``."""
    reasoning_field: str = "reasoning_content"
    started: float = field(default_factory=time.monotonic)
    ttft_ms: int | None = None


async def wait_or_disconnect(receive: Receive, delay: float) -> bool:
    """Wait ``delay`` seconds; True as soon as the client disconnects (then stop sending)."""
    deadline = asyncio.get_running_loop().time() + delay
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            return False
        if message["type"] == "http.disconnect":
            return True


def has_disconnected(receive: Receive) -> bool:
    """True if the client is already gone, found out without waiting."""
    # Step receive() once by hand: with a disconnect pending it returns at once; otherwise it
    # parks on a future nobody will resolve, and closing it unregisters that future. About a
    # tenth of what a timed wait on receive() costs, which matters once per token.
    step = receive()
    if not isinstance(step, Coroutine):
        return False
    try:
        message = step.send(None)
    except StopIteration as finished:
        message = finished.value
        return isinstance(message, dict) and message.get("type") == "http.disconnect"
    step.close()
    return False


async def pause(receive: Receive, delay: float) -> bool:
    """Wait between two events; True when the client has gone away meanwhile."""
    if delay >= _LONG_WAIT:
        return await wait_or_disconnect(receive, delay)
    # Short waits: a plain sleep then a peek. A disconnect is noticed one token later at most.
    await asyncio.sleep(delay)
    return has_disconnected(receive)


def _body(data: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def _usage(plan: Plan, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": plan.prompt_tokens + completion_tokens,
    }


def _events(plan: Plan, encoder: ChunkEncoder) -> tuple[int, Iterator[bytes]]:
    if plan.tool_calls is not None:
        frames = [encoder.tool_calls(delta) for delta in tool_call_deltas(plan.tool_calls)]
        return len(frames), iter(frames)
    return len(plan.token_json), (encoder.content(token) for token in plan.token_json)


async def send_stream(plan: Plan, receive: Receive, send: Send) -> None:
    """Stream the completion as Gloo does, applying the plan's fault if it has one."""
    fault = plan.fault
    kind = fault.kind if fault is not None else None
    if (
        fault is not None
        and kind == "slow_headers"
        and await wait_or_disconnect(receive, fault.delay)
    ):
        return
    encoder = ChunkEncoder(
        completion_id=plan.completion_id,
        created=plan.created,
        model=plan.model,
        routing=plan.routing,
        crlf=kind == "crlf",
        multiline=kind == "multiline",
    )
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    if plan.citations is not None:
        # Gloo: "citations are prepended as the first SSE event before any content chunks".
        await send(_body(encoder.citations(plan.citations, plan.citations_variant)))
    await send(_body(encoder.role()))
    if await _think(plan, encoder, receive, send):
        return
    count, events = _events(plan, encoder)
    sent = await _send_events(plan, encoder, count, events, receive, send)
    if sent is None:
        return
    finish_reason = "tool_calls" if plan.tool_calls is not None else plan.finish_reason
    if kind == "content_filter":
        finish_reason = "content_filter"
    usage = _usage(plan, sent)
    tail = encoder.finish(
        finish_reason, None if plan.usage_chunk else usage, {"ttft_ms": plan.ttft_ms}
    )
    if plan.usage_chunk:
        tail += encoder.usage_only(usage)
    if plan.send_done or kind == "done":
        tail += encoder.done()
    await send(_body(tail, more=False))


async def _think(plan: Plan, encoder: ChunkEncoder, receive: Receive, send: Send) -> bool:
    """Send the plan's reasoning deltas, paced like tokens; True when the client left."""
    for token in plan.reasoning:
        if await pause(receive, plan.interval):
            return True
        await send(_body(encoder.reasoning(token, plan.reasoning_field)))
    return False


async def _send_events(
    plan: Plan,
    encoder: ChunkEncoder,
    count: int,
    events: Iterator[bytes],
    receive: Receive,
    send: Send,
) -> int | None:
    """Send the paced events; the number sent, or None when the body has already ended."""
    fault = plan.fault
    strike = min(fault.after, count) if fault is not None and fault.kind in _MID_STREAM else -1
    first_delay = plan.first_token_delay
    if fault is not None and fault.kind == "slow_first_token":
        first_delay = fault.delay
    for index in range(count + 1):
        if index == strike and fault is not None:
            if not await _strike(fault, encoder, receive, send):
                return None
            if fault.kind == "content_filter":
                return index
        if index == count:
            return count
        if await pause(receive, first_delay if index == 0 else plan.interval):
            return None
        await send(_body(next(events)))
        if index == 0:
            plan.ttft_ms = round((time.monotonic() - plan.started) * 1000)
    return count


async def _strike(fault: Fault, encoder: ChunkEncoder, receive: Receive, send: Send) -> bool:
    """Apply a mid-stream fault; False when it ended the body (or the client left)."""
    if fault.kind == "stall":
        return not await wait_or_disconnect(receive, fault.duration)
    if fault.kind == "disconnect":
        raise SimulatedDisconnect(f"fault: disconnect after {fault.after} chunks")
    if fault.kind == "truncate":
        await send(_body(b"", more=False))
        return False
    if fault.kind == "malformed":
        await send(_body(encoder.malformed(), more=not fault.end))
        return not fault.end
    if fault.kind == "error":
        await send(_body(encoder.error(fault.code, fault.name, fault.message), more=False))
        return False
    return True  # content_filter: the caller sends its finish chunk


async def send_completion(plan: Plan, receive: Receive, send: Send) -> None:
    """Answer with one ``chat.completion`` JSON object after the simulated generation time."""
    fault = plan.fault
    kind = fault.kind if fault is not None else None
    count = len(plan.text_tokens)
    delay = plan.first_token_delay + plan.interval * max(count - 1, 0)
    if fault is not None:
        delay += fault.delay if kind in ("slow_headers", "slow_first_token") else 0.0
        delay -= plan.first_token_delay if kind == "slow_first_token" else 0.0
        delay += fault.duration if kind == "stall" else 0.0
    if await wait_or_disconnect(receive, delay):
        return
    cut = min(fault.after, count) if fault is not None else count
    tokens = plan.text_tokens[:cut] if kind in ("content_filter", "error") else plan.text_tokens
    finish = plan.finish_reason
    extra: dict[str, Any] = {}
    if kind == "content_filter":
        finish = "content_filter"
    elif fault is not None and kind == "error":
        finish = "error"
        extra["error"] = {"code": fault.code, "name": fault.name, "message": fault.message}
    if plan.tool_calls is not None:
        finish = "tool_calls"
    if plan.citations is not None:
        extra["citations"] = plan.citations
    payload = completion_body(
        completion_id=plan.completion_id,
        created=plan.created,
        model=plan.model,
        routing=plan.routing,
        content=None if plan.tool_calls is not None else "".join(tokens),
        tool_calls=plan.tool_calls,
        finish_reason=finish,
        usage=_usage(plan, len(tokens)),
        extra=extra,
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if kind == "disconnect":
        await send(_body(payload[: len(payload) // 2]))
        raise SimulatedDisconnect("fault: disconnect in the middle of a JSON body")
    await send(_body(payload, more=False))
