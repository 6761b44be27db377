"""The tutorial's functions ("Streaming AI Responses in Real Time"), over gloo-stream's core.

Same names, arguments and return shapes as the tutorial, so its checkpoints hold; underneath,
the spec-correct SSE decoder, typed errors, closed responses and a thread-safe token cache.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import httpx
import msgspec

from gloo_stream.client import GlooClient
from gloo_stream.client.auth import ClientCredentialsAuth
from gloo_stream.config import GlooSettings, load_settings
from gloo_stream.errors import MissingCredentialsError, error_from_response
from gloo_stream.request import build_chat_request
from gloo_stream.wire import ChatCompletionChunk, is_done

__all__ = [
    "ensure_valid_token",
    "extract_token_content",
    "get_access_token",
    "handle_stream_error",
    "make_streaming_request",
    "parse_sse_line",
    "render_stream_to_terminal",
    "stream_completion",
]

_lock = threading.Lock()
_auth: dict[tuple[str, str, str], ClientCredentialsAuth] = {}
_http: httpx.Client | None = None


def handle_stream_error(status_code: int, response_body: str = "") -> None:
    """Raise the error for a non-200 answer, with the tutorial's messages.

    401 -> ``AuthenticationError``, 403 -> ``PermissionDeniedError``, 429 -> ``RateLimitError``,
    anything else -> ``API error (<status>): <first 200 chars of body>``.
    """
    if status_code == 200:
        return
    raise error_from_response(status_code, response_body, {}, now=time.time())


def parse_sse_line(line: str | bytes) -> dict[str, Any] | str | None:
    """One SSE line: the parsed chunk dict, ``"[DONE]"``, or None (blank, non-data, malformed)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.rstrip("\r\n")
    if not line.startswith("data:"):
        return None
    data = line[6:] if line.startswith("data: ") else line[5:]
    if is_done(data):
        return "[DONE]"
    try:
        parsed = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def extract_token_content(chunk: Mapping[str, Any] | ChatCompletionChunk | None) -> str:
    """The text a chunk carries; always a string, "" when there is none."""
    if isinstance(chunk, ChatCompletionChunk):
        return chunk.content
    if not isinstance(chunk, Mapping):
        return ""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, Mapping) else None
    return content if isinstance(content, str) else ""


class StreamingResponse:
    """An open streaming answer; iterate ``iter_lines()``, and close it (or use ``with``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers = response.headers

    def iter_lines(self) -> Iterator[str]:
        """The body's lines as they arrive (UTF-8, any line ending); closes at the end."""
        try:
            yield from self._response.iter_lines()
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection."""
        self._response.close()

    def __enter__(self) -> StreamingResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._response.close()


def make_streaming_request(message: str, token: str) -> StreamingResponse:
    """POST one streaming completion with a bearer ``token``; raises on a non-200 answer."""
    settings = load_settings(GlooSettings)
    body = build_chat_request(message, defaults=settings.request_defaults)
    request = _client().build_request(
        "POST",
        settings.gloo_api_url,
        content=msgspec.json.encode(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        },
        timeout=httpx.Timeout(settings.gloo_connect_timeout, read=settings.gloo_read_timeout),
    )
    response = _client().send(request, stream=True)
    if response.status_code != 200:
        try:
            text = response.read().decode("utf-8", "replace")
        finally:
            response.close()
        handle_stream_error(response.status_code, text)
    return StreamingResponse(response)


def stream_completion(message: str, token: str) -> dict[str, Any]:
    """Stream one answer and return ``{"text", "token_count", "duration_ms", "finish_reason"}``.

    Also ``ttft_ms`` and ``interrupted``. A failure mid-stream raises a ``StreamError``
    whose ``partial`` keeps what arrived (the tutorial silently returned it as if whole).
    """
    with GlooClient(api_key=token, settings=load_settings(GlooSettings)) as client:
        result = client.complete(message)
    return _tutorial_dict(result.to_dict())


def render_stream_to_terminal(
    message: str, token: str, *, out: TextIO | None = None
) -> dict[str, Any]:
    """Print ``Prompt:``, ``Response:``, the tokens as they arrive, then ``[N tokens, ...]``."""
    stream = out or sys.stdout
    stream.write(f"Prompt: {message}\n\nResponse: ")
    stream.flush()

    def show(text: str) -> None:
        stream.write(text)
        stream.flush()

    with GlooClient(api_key=token, settings=load_settings(GlooSettings)) as client:
        result = client.complete(message, on_token=show)
    stream.write(f"\n\n[{result.token_count} tokens, finish_reason={result.finish_reason}]\n")
    stream.flush()
    return _tutorial_dict(result.to_dict())


def get_access_token() -> dict[str, Any]:
    """Fetch a new OAuth token: ``{"access_token", "expires_in", "token_type"}``."""
    auth = _oauth()
    auth.cache.invalidate()
    token = auth.get_token(_client())
    expires_in = max(0.0, auth.cache.expires_at - time.monotonic())
    return {"access_token": token, "expires_in": round(expires_in), "token_type": "Bearer"}


def ensure_valid_token() -> str:
    """A usable bearer token: the API key, or a cached OAuth token refreshed before expiry."""
    settings = load_settings(GlooSettings)
    if settings.gloo_api_key is not None:
        return settings.gloo_api_key.get_secret_value()
    return _oauth().get_token(_client())


def _tutorial_dict(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("text", "token_count", "duration_ms", "finish_reason", "ttft_ms", "interrupted")
    return {key: data[key] for key in keys}


def _client() -> httpx.Client:
    global _http
    with _lock:
        if _http is None:
            _http = httpx.Client()
        return _http


def _oauth() -> ClientCredentialsAuth:
    settings = load_settings(GlooSettings)
    if not (settings.gloo_client_id and settings.gloo_client_secret is not None):
        raise MissingCredentialsError(
            "OAuth needs GLOO_CLIENT_ID and GLOO_CLIENT_SECRET (in the environment or .env)"
        )
    secret = settings.gloo_client_secret.get_secret_value()
    key = (settings.gloo_client_id, secret, settings.gloo_token_url)
    with _lock:
        auth = _auth.get(key)
        if auth is None:
            auth = _auth[key] = ClientCredentialsAuth(
                settings.gloo_client_id,
                secret,
                settings.gloo_token_url,
                scope=settings.gloo_token_scope,
                style=settings.gloo_token_auth,
            )
        return auth
