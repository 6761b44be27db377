"""relay.py: StreamControl's heartbeats and disconnect watch."""

from __future__ import annotations

import asyncio
from typing import Any


def test_watcher_sends_heartbeats_only_when_idle_and_never_spins() -> None:
    from gloo_stream.proxy.relay import HEARTBEAT, StreamControl

    async def scenario() -> list[Any]:
        sent: list[Any] = []
        never = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await never.wait()
            return {}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["body"])

        control = StreamControl(heartbeat=0.05)
        control.watch_caller(receive, send)
        control.headers_sent = True
        control.last_send = asyncio.get_running_loop().time()
        control.sending = True  # a blocked send: no heartbeat, and no busy loop either
        await asyncio.sleep(0.2)
        assert sent == []
        control.sending = False
        await asyncio.sleep(0.2)
        control.finish()
        await asyncio.sleep(0)
        return sent

    sent = asyncio.run(scenario())
    assert len(sent) >= 2
    assert set(sent) == {HEARTBEAT}


def test_watcher_turns_a_disconnect_into_a_stop() -> None:
    from gloo_stream.proxy.relay import StreamControl

    async def scenario() -> str:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError("nothing is sent before the headers")

        control = StreamControl(heartbeat=10)
        control.watch_caller(receive, send)
        asyncio.get_running_loop().call_later(0.05, gone.set)
        try:
            await asyncio.sleep(5)  # the upstream "thinking"
        except asyncio.CancelledError:
            return control.stopped().reason
        finally:
            control.finish()
        return "not stopped"

    assert asyncio.run(scenario()) == "disconnect"
