"""The chat completions endpoints: auth, validation, fault selection, then stream or answer.

A raw ASGI callable rather than a Starlette request handler, because streaming needs
``receive`` (to notice disconnects) and ``send`` (to write pre-encoded bytes) directly.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import msgspec
from starlette.types import Receive, Scope, Send

from gloo_stream.simulator import answers, models
from gloo_stream.simulator.faults import Fault, status_response
from gloo_stream.simulator.grounded import REASONING_MODELS, citations_for, reasoning_tokens
from gloo_stream.simulator.json_answers import json_answer, json_fragments
from gloo_stream.simulator.state import SimulatorState
from gloo_stream.simulator.streaming import Plan, send_completion, send_stream
from gloo_stream.simulator.toolcalls import tool_answer, tool_calls_for, wants_tools
from gloo_stream.simulator.validation import json_invalid, validate_request

MAX_BODY = 8 * 1024 * 1024
_MISSING_AUTH = {"error": "Missing Authorization", "code": "unauthorized_missing_authorization"}
_INVALID_AUTH = {"error": "Invalid or expired token", "code": "unauthorized_invalid_token"}
_BYTE_POSITION = re.compile(r"byte (\d+)")


async def send_json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a whole JSON response."""
    body = msgspec.json.encode(payload)
    raw_headers = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyTooLarge(Exception):  # noqa: N818 - named for the condition, like the HTTP status
    """The request body exceeds ``MAX_BODY``."""


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class CompletionsEndpoint:
    """ASGI app for one of the completions paths (plain, guarded or grounded)."""

    def __init__(self, state: SimulatorState, *, grounded: bool = False) -> None:
        self.state = state
        self.grounded = grounded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one completions request."""
        state = self.state
        state.record_request(scope["headers"])
        try:
            raw = await read_body(receive)
        except BodyTooLarge:
            await send_json(send, 413, {"error": "Request body too large", "code": "too_large"})
            return
        if raw is None:
            return
        body, decode_error = _decode(raw)
        state.record_body(body, scope.get("path"))
        authorization, fault_header = _interesting_headers(scope)
        if state.config.require_auth and not await self._authorized(authorization, send):
            return
        errors = _body_errors(raw, body, decode_error, self.grounded, state.config.require_model)
        if errors:
            # Gloo's grounded reference: an explicitly empty messages array is a 400.
            empty = self.grounded and isinstance(body, dict) and body.get("messages") == []
            await send_json(send, 400 if empty else 422, {"detail": errors})
            return
        if self.grounded and "messages" not in body:
            body["messages"] = [{"role": "user", "content": "Hello world!"}]
        try:
            fault = Fault.from_dict(msgspec.json.decode(fault_header)) if fault_header else None
        except (ValueError, msgspec.DecodeError) as exc:
            await send_json(send, 400, {"error": f"invalid X-Sim-Fault header: {exc}"})
            return
        if fault is None:
            fault = state.take_fault()
        if fault is not None and fault.kind == "status":
            payload, headers = status_response(fault, authorization)
            await send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})
            return
        await self._respond(body, fault, receive, send)

    def _grounding(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        """The plan's grounded part: the sources, whether to send them, and in what shape."""
        scripted = fault is not None and fault.kind == "citations"
        if not (self.grounded or scripted):
            return {}
        items = citations_for(body, answers.last_user_content(body["messages"]))
        wanted = scripted or body.get("include_citations") is True
        return {
            "citations": items if wanted else None,
            "citations_variant": fault.variant if fault is not None and scripted else "chunk",
            "sources_returned": bool(items),
        }

    async def _authorized(self, authorization: str | None, send: Send) -> bool:
        challenge = [(b"www-authenticate", b"Bearer")]
        if not authorization:
            await send_json(send, 401, _MISSING_AUTH, challenge)
            return False
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not self.state.bearer_is_valid(credential.strip()):
            await send_json(send, 401, _INVALID_AUTH, challenge)
            return False
        return True

    async def _respond(
        self, body: dict[str, Any], fault: Fault | None, receive: Receive, send: Send
    ) -> None:
        plan = build_plan(body, self.state, fault, **self._grounding(body, fault))
        if not body.get("stream"):
            await send_completion(plan, receive, send)
            return
        self.state.stream_started()
        try:
            await send_stream(plan, receive, send)
        finally:
            # Reached on every exit: finish, fault, client disconnect, server shutdown.
            self.state.stream_closed()


def build_plan(
    body: dict[str, Any], state: SimulatorState, fault: Fault | None, **grounding: Any
) -> Plan:
    """Decide the whole completion (model, tokens, finish reason) for a valid request.

    ``grounding``: a grounded answer's ``citations``, ``citations_variant`` and
    ``sources_returned`` (``CompletionsEndpoint._grounding``).
    """
    config = state.config
    messages = body["messages"]
    prompt = answers.last_user_content(messages)
    model, routing = models.route(body, config.model, prompt)
    scripted = _scripted_answer(body, prompt, fault)
    if scripted is not None:
        text_tokens = scripted
        token_json = tuple(msgspec.json.encode(token) for token in text_tokens)
    elif (
        rest := answers.continuation_of(
            messages, config.seed, config.answer_tokens, config.continue_repeat_chars
        )
    ) is not None:
        text_tokens = rest  # the rest of the same answer (a cut answer being continued)
        token_json = tuple(msgspec.json.encode(token) for token in rest)
    else:
        text_tokens = answers.answer_for(prompt, config.seed, config.answer_tokens)
        token_json = answers.encoded_answer_for(prompt, config.seed, config.answer_tokens)
        if fault is None and config.cut_fraction > 0:
            fault = state.random_cut(len(text_tokens))
    finish_reason = "stop"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and int(max_tokens) < len(text_tokens):
        text_tokens, token_json = text_tokens[: int(max_tokens)], token_json[: int(max_tokens)]
        finish_reason = "length"
    use_tools = (fault is not None and fault.kind == "tool_calls") or wants_tools(body)
    thinks = REASONING_MODELS.get(model)
    if fault is not None and fault.kind == "reasoning":
        thinks = fault.spelling
    if grounding.get("sources_returned") is not None:
        routing = {**routing, "sources_returned": grounding["sources_returned"]}
    return Plan(
        completion_id=f"gen-{int(time.time())}-{secrets.token_urlsafe(15)}",
        created=int(time.time()),
        model=model,
        routing=routing,
        text_tokens=text_tokens,
        token_json=token_json,
        finish_reason=finish_reason,
        prompt_tokens=answers.prompt_tokens(messages),
        tool_calls=tool_calls_for(body, fault) if use_tools else None,
        fault=fault,
        first_token_delay=config.first_token_delay,
        interval=config.token_interval,
        send_done=config.send_done,
        usage_chunk=_include_usage(body),
        citations=grounding.get("citations"),
        citations_variant=grounding.get("citations_variant", "chunk"),
        reasoning=tuple(reasoning_tokens(prompt)) if thinks else (),
        reasoning_field=thinks or "reasoning_content",
    )


def _scripted_answer(
    body: dict[str, Any], prompt: str, fault: Fault | None
) -> tuple[str, ...] | None:
    """The tokens of an answer not made up from the prompt, if this request gets one."""
    if fault is not None and fault.kind == "answer":
        # A scripted answer (tests of what a client does with given model output).
        return tuple(answers.tokenize(fault.text))
    if (after_tools := tool_answer(body)) is not None:
        return tuple(answers.tokenize(after_tools))
    if (structured := json_answer(body, prompt)) is not None:
        return tuple(json_fragments(structured))
    return None


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _decode(raw: bytes) -> tuple[Any, str | None]:
    try:
        return msgspec.json.decode(raw), None
    except msgspec.DecodeError as exc:
        return None, str(exc)


def _body_errors(
    raw: bytes, body: Any, decode_error: str | None, grounded: bool, require_model: bool
) -> list[dict[str, Any]]:
    if not raw.strip():
        return [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    if decode_error is not None:
        found = _BYTE_POSITION.search(decode_error)
        return json_invalid(int(found.group(1)) if found else 0, decode_error)
    return validate_request(body, grounded=grounded, require_model=require_model)


def _interesting_headers(scope: Scope) -> tuple[str | None, str | None]:
    authorization = fault = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-sim-fault":
            fault = value.decode("utf-8", "replace")
    return authorization, fault
