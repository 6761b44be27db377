"""StreamingTransport against real loopback servers that script their bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from gloo_stream.client.transport import StreamingTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


class Server:
    """A loopback server; counts connections, runs ``handler`` for each."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[Server, str]]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[Server, str]:
        server = Server(handler)
        srv = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        return server, f"http://127.0.0.1:{port}/path?q=1"

    yield start
    for srv in servers:
        srv.close()


async def test_chunked_body_arrives_piece_by_piece(serve) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request.startswith(b"POST /path?q=1 HTTP/1.1\r\n")
        assert request.endswith(b"hello")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    _, url = await serve(handler)
    client = httpx.AsyncClient(transport=StreamingTransport())
    async with client, client.stream("POST", url, content=b"hello") as response:
        assert response.status_code == 200
        pieces = response.aiter_bytes()
        assert await anext(pieces) == b"first"  # before the rest was even written
        release.set()
        assert [p async for p in pieces] == [b"second"]


async def test_content_length_body_and_keep_alive_reuse(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-A: b\r\n\r\nbody")
            await writer.drain()
        await reader.read()

    server, url = await serve(handler)
    async with httpx.AsyncClient(transport=StreamingTransport()) as client:
        for _ in range(3):
            response = await client.get(url)
            assert response.content == b"body"
            assert response.headers["x-a"] == "b"
    assert server.connections == 1


async def test_body_delimited_by_close(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata: 1\n\n")
        await writer.drain()

    _, url = await serve(handler)
    async with httpx.AsyncClient(transport=StreamingTransport()) as client:
        response = await client.get(url)
        assert response.content == b"data: 1\n\n"


async def test_server_closing_mid_body_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    _, url = await serve(handler)
    client = httpx.AsyncClient(transport=StreamingTransport())
    async with client, client.stream("GET", url) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in response.aiter_bytes():
                pass


async def test_server_closing_before_head_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    _, url = await serve(handler)
    async with httpx.AsyncClient(transport=StreamingTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_silent_body_is_a_read_timeout_using_the_current_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await reader.read()

    _, url = await serve(handler)
    client = httpx.AsyncClient(transport=StreamingTransport(), timeout=30)
    async with client, client.stream("GET", url) as response:
        # As AsyncGlooClient does once the head has arrived: the idle limit applies now.
        response.request.extensions["timeout"]["read"] = 0.2
        pieces = response.aiter_bytes()
        assert await anext(pieces) == b"a"
        with pytest.raises(httpx.ReadTimeout):
            await anext(pieces)


async def test_silent_head_is_a_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    _, url = await serve(handler)
    async with httpx.AsyncClient(transport=StreamingTransport(), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url)


async def test_connection_refused_is_a_connect_error() -> None:
    async with httpx.AsyncClient(transport=StreamingTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")


async def test_cancellation_closes_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await reader.read()  # returns when the client closes

    server, url = await serve(handler)
    transport = StreamingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        got_first = asyncio.Event()

        async def consume() -> None:
            async with client.stream("GET", url) as response:
                async for _ in response.aiter_bytes():
                    got_first.set()

        task = asyncio.create_task(consume())
        await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 5)
        assert not transport._open


async def test_idle_connection_closed_by_server_is_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()  # then close: the client's idle connection goes stale

    server, url = await serve(handler)
    async with httpx.AsyncClient(transport=StreamingTransport()) as client:
        assert (await client.get(url)).content == b"ok"
        await asyncio.wait_for(server.closed.wait(), 5)
        await asyncio.sleep(0.05)
        assert (await client.get(url)).content == b"ok"
    assert server.connections == 2
