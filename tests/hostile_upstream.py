"""A hostile upstream on a loopback port: raw asyncio, one behaviour per requested model.

The request's ``model`` picks what the server does (the proxy passes it on as given):

- ``echo-key``: a valid stream whose content echoes the bearer key it was sent, one or two
  characters per chunk (so the key is split across reads and chunks), and again whole in
  an extra field of the first chunk; then usage.
- ``echo-key-meta``: the bearer key as the answer's ``id`` and ``model``, then an error event
  whose ``name`` is the key.
- ``huge-line``: a 200 ``text/event-stream`` whose first line is ``HUGE_LINE`` bytes long.
- ``endless-event``: one event's ``data:`` lines forever, never its blank line.
- ``gzip-bomb``: ``Content-Encoding: gzip`` (asked for or not), expanding to ``BOMB`` bytes.
- ``html``: a 200 ``text/html`` page.
- ``refuse...`` or a name over 1,000 characters: 404, as for a model that does not exist.
- ``slow-head``: the response head only after ``SLOW_HEAD`` seconds, then a normal stream.
- anything else: a normal short stream (``"hi"``), with usage, and the model echoed back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from typing import Any

__all__ = ["HostileUpstream"]

HUGE_LINE = 20 * 1024 * 1024
BOMB = 200 * 1024 * 1024
SLOW_HEAD = 3.0
API_KEY = "sk-hostile-upstream-key-0123456789abcdef"


def _bomb() -> bytes:
    # 200 MiB of one never-ending line, compressed to about 200 KB, made once.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b"a" * (1024 * 1024)
    parts = [compressor.compress(b"data: ")]
    parts += [compressor.compress(block) for _ in range(BOMB // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def _chunk(model: str, content: str | None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": extra.pop("id", "c1"),
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": extra.pop("finish", None)}],
        **extra,
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class HostileUpstream:
    """The server, in its own thread and loop; ``url`` is its completions URL."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._bomb = _bomb()
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.closed = 0
        """Responses whose connection the proxy closed before the server finished."""

    @property
    def url(self) -> str:
        """The chat completions URL to give the proxy as ``GLOO_API_URL``."""
        return f"http://127.0.0.1:{self.port}/ai/v2/chat/completions"

    def settings(self) -> dict[str, Any]:
        """Proxy settings pointing at this server with its API key."""
        return {
            "gloo_api_url": self.url,
            "gloo_api_key": API_KEY,
            "gloo_client_id": None,
            "gloo_client_secret": None,
            "proxy_shutdown_grace": 0.0,
        }

    def __enter__(self) -> HostileUpstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
            self.requests.append({"headers": headers, "body": body})
            await self._answer(writer, body, headers)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed += 1
        finally:
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        model = str(body.get("model") or "")
        sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
        if model == "html":
            page = b"<html><body>hello</body></html>"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n%s"
                % (len(page), page)
            )
            await writer.drain()
            return
        if model.startswith("refuse") or len(model) > 1000:
            page = b'{"detail":"model not found"}'
            writer.write(
                b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(page), page)
            )
            await writer.drain()
            return
        if model == "gzip-bomb":
            writer.write((sse + "content-encoding: gzip\r\n\r\n").encode())
            for at in range(0, len(self._bomb), 16384):
                writer.write(self._bomb[at : at + 16384])
                await writer.drain()
            return
        if model == "slow-head":
            await asyncio.sleep(SLOW_HEAD)
        writer.write((sse + "\r\n").encode())
        if model == "huge-line":
            writer.write(b"data: ")
            block = b"a" * 65536
            for _ in range(HUGE_LINE // len(block)):
                writer.write(block)
                await writer.drain()
            writer.write(b"\n\n")
        elif model == "endless-event":
            while True:
                writer.write(b"data: " + b"b" * 1000 + b"\n")
                await writer.drain()
                await asyncio.sleep(0)
        elif model == "echo-key":
            key = headers.get("authorization", "").partition(" ")[2]
            writer.write(_chunk(model, "Your key: ", leaked=key))
            for at in range(0, len(key), 2):
                writer.write(_chunk(model, key[at : at + 2]))
                await writer.drain()
            writer.write(_chunk(model, "."))
            writer.write(_chunk(model, None, finish="stop"))
            writer.write(_usage(model, 10, 5))
        elif model == "echo-key-meta":
            key = headers.get("authorization", "").partition(" ")[2]
            writer.write(_chunk(key, "ok", id=key))
            error = {"error": {"name": key, "message": f"failed for {key}"}}
            writer.write(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
        else:
            writer.write(_chunk(model, "hi"))
            writer.write(_chunk(model, None, finish="stop"))
            writer.write(_usage(model, _prompt_tokens(body), 1))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


def _usage(model: str, prompt: int, completion: int) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _prompt_tokens(body: dict[str, Any]) -> int:
    # What a real upstream would count: about four characters a token.
    return sum(len(str(m.get("content") or "")) for m in body.get("messages") or []) // 4 + 1
