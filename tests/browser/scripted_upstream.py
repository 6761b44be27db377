"""A test-only upstream that streams exactly the SSE lines a test gives it, behind the real proxy.

The simulator writes well-formed answers; the page must also draw what the simulator does not
send (yet): a citations event, reasoning deltas, tool-call deltas, a continuation's
``gloo_continuation`` field. ``ScriptedUpstream`` serves ``POST /ai/v2/chat/completions`` on a
loopback port, answering each request with the next queued script (a list of raw SSE frames,
with pauses between them given as numbers of seconds), and records each request's body.

    with ScriptedUpstream() as upstream, ProxyServer(proxy_settings_for(upstream)) as proxy:
        upstream.queue([chunk(content="Hi"), finish("stop"), DONE])
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.serving import ThreadedServer, bind_tcp
from gloo_stream.testing import ProxyServer

DONE = "data: [DONE]\n\n"
API_KEY = "scripted-upstream-key"

Script = list[str | float]


def chunk(content: str | None = None, **fields: Any) -> str:
    """One ``chat.completion.chunk`` SSE frame; ``delta`` fields via ``content`` or ``delta=``,
    top-level extras (``citations``, ``gloo_continuation``) as keyword arguments."""
    delta = dict(fields.pop("delta", {}))
    if content is not None:
        delta["content"] = content
    finish_reason = fields.pop("finish_reason", None)
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": fields.pop("model", "scripted-model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **fields,
    }
    return f"data: {json.dumps(body)}\n\n"


def finish(reason: str = "stop") -> str:
    """The chunk that ends an answer."""
    return chunk(finish_reason=reason)


class ScriptedUpstream:
    """The scripted upstream on a free loopback port, served from a background thread."""

    def __init__(self) -> None:
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._runner: ThreadedServer | None = None

    @property
    def api_url(self) -> str:
        """The completions endpoint, as ``GLOO_API_URL`` wants it."""
        return f"http://127.0.0.1:{self.port}/ai/v2/chat/completions"

    def queue(self, *scripts: Script) -> None:
        """Answer the next requests with these scripts, in order."""
        with self._lock:
            self._scripts.extend(scripts)

    def reset(self) -> None:
        """Forget queued scripts and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            script = self._scripts.popleft() if self._scripts else None
        if script is None:
            message = "the scripted upstream has no script queued for this request"
            return JSONResponse({"error": {"message": message}}, status_code=500)
        return StreamingResponse(_play(script), media_type="text/event-stream")

    def start(self) -> ScriptedUpstream:
        """Serve, and return once connections are accepted."""
        route = Route("/ai/v2/chat/completions", self._completions, methods=["POST"])
        app = Starlette(routes=[route])
        sock = bind_tcp("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=0)
        self._runner = ThreadedServer(uvicorn.Server(config), sock, name=f"scripted-{self.port}")
        self._runner.start()
        return self

    def stop(self) -> None:
        """Stop serving (open streams are dropped)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(5.0)

    def __enter__(self) -> ScriptedUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _play(script: Script) -> AsyncIterator[bytes]:
    for step in script:
        if isinstance(step, str):
            yield step.encode()
        else:
            await asyncio.sleep(step)


def proxy_settings_for(upstream: ScriptedUpstream, **overrides: Any) -> ProxySettings:
    """Proxy settings that send every answer to ``upstream`` with an API key, no retries."""
    values: dict[str, Any] = {
        "gloo_api_url": upstream.api_url,
        "gloo_api_key": SecretStr(API_KEY),
        "gloo_client_id": None,
        "gloo_client_secret": None,
        "gloo_max_retries": 0,
        "proxy_rate_limit": "",
        "proxy_shutdown_grace": 0.0,
        **overrides,
    }
    return ProxySettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class ScriptedStack:
    """The proxy in front of a scripted upstream (which serves the page)."""

    upstream: ScriptedUpstream
    proxy: ProxyServer

    @property
    def url(self) -> str:
        """The chat page."""
        return self.proxy.url + "/"
