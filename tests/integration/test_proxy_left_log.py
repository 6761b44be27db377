"""The log line of a caller who left counts what was relayed (issue 22 item 9)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for
from kit import wait_until


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.proxy  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "proxy", {}).get("event") == "request"
    ]


def test_a_caller_who_left_is_logged_with_its_tokens_and_first_token_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gloo_stream.proxy")
    body = {"messages": [{"role": "user", "content": "a long answer please"}]}
    with (
        SimulatorServer(SimulatorConfig(tokens_per_second=50, first_token_delay=0.01)) as sim,
        ProxyServer(settings_for(sim)) as proxy,
    ):
        got = b""
        with (
            httpx.Client(timeout=10) as client,
            client.stream("POST", f"{proxy.url}/api/stream", json=body) as response,
        ):
            assert response.status_code == 200
            for piece in response.iter_raw():
                got += piece
                if got.count(b"\n\n") >= 5:
                    break  # leave mid-answer
        wait_until(lambda: log_lines(caplog), "the request's log line")
    (line,) = log_lines(caplog)
    assert line["outcome"] == "disconnect"
    assert line["chunks"] >= 5
    # Each relayed chunk but the opening role-only one carried a token.
    assert line["tokens"] is not None and line["chunks"] - 1 <= line["tokens"] <= line["chunks"]
    assert line["ttft_ms"] is not None and line["ttft_ms"] > 0
