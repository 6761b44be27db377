"""The flow protocol (``client._steps``) driven by hand: ``_answer.exchange`` asks, we answer.

No runner and no socket: each test plays the runner's part, which is the point of the
protocol (the course is decided once, in the flow; only the I/O differs between twins).
"""

from __future__ import annotations

import httpx
import pytest

from gloo_stream.client._answer import exchange
from gloo_stream.client._steps import Flow, ReadAndClose, SendRequest, next_step
from gloo_stream.errors import APIConnectionError, APITimeoutError, ServerError

URL = "http://127.0.0.1:9/v1/chat/completions"


def request() -> httpx.Request:
    return httpx.Request("POST", URL, extensions={"timeout": {"read": 30.0}})


def test_an_accepted_response_is_returned_with_the_idle_read_timeout() -> None:
    sent = request()
    flow = exchange(sent, None, read_timeout=7.5)
    step = next_step(flow, None)
    assert step == SendRequest(sent, None)
    response = httpx.Response(200, request=sent)
    with pytest.raises(StopIteration) as ended:
        flow.send(response)
    assert ended.value.value is response
    assert sent.extensions["timeout"]["read"] == 7.5  # from here on, idle between bytes


def test_an_error_status_asks_for_its_body_then_raises_the_typed_error() -> None:
    sent = request()
    flow = exchange(sent, None, read_timeout=7.5)
    next_step(flow, None)
    response = httpx.Response(503, request=sent)
    assert next_step(flow, response) == ReadAndClose(response)
    with pytest.raises(ServerError) as raised:
        next_step(flow, b'{"error": {"message": "overloaded"}}')
    assert raised.value.status_code == 503
    assert "overloaded" in str(raised.value)


def test_a_transport_failure_sent_back_is_raised_inside_the_flow_as_what_it_means() -> None:
    flow = exchange(request(), None, read_timeout=7.5)
    next_step(flow, None)
    with pytest.raises(APIConnectionError, match=r"Could not reach http://127\.0\.0\.1:9"):
        next_step(flow, httpx.ConnectError("refused"))


def test_a_timeout_sent_back_is_a_timeout_error() -> None:
    flow = exchange(request(), None, read_timeout=7.5)
    next_step(flow, None)
    with pytest.raises(APITimeoutError, match="Timed out waiting for"):
        next_step(flow, httpx.ConnectTimeout("slow"))


def test_a_finished_flow_has_no_next_step() -> None:
    def one_step() -> Flow[None]:
        yield SendRequest(request(), None)

    flow = one_step()
    assert isinstance(next_step(flow, None), SendRequest)
    assert next_step(flow, "the response") is None
