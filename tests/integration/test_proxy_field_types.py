"""Property test against a real proxy on loopback: any JSON value in any field is never a 5xx.

Hypothesis sends arbitrary JSON in each declared field of ``/api/stream`` and
``/v1/chat/completions`` (allow-lists and caps on, so their checks see odd types too). The
answer is a 200 when the value is valid, else a 4xx JSON error naming the field; a value of
the wrong type is always a 400; and the proxy logs no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gloo_stream.request import RULES
from gloo_stream.simulator import SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

MESSAGES = [{"role": "user", "content": "hi"}]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
MESSAGE_VALUES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", "system"]) | JSON},
        optional={"content": JSON, "name": JSON, "tool_calls": JSON, "tool_call_id": JSON},
    )
    | JSON,
    max_size=2,
)
# Valid (or nearly: over the cap, not allowed) values, so answers that stream are drawn too.
LIKELY: dict[str, list[Any]] = {
    "auto_routing": [True, False],
    "stream": [True, False],
    "model": ["gloo-openai-gpt-5-mini", "auto", "gloo-google-gemini"],
    "model_family": ["openai", "anthropic", "google"],
    "tradition": ["catholic", "mainline"],
    "temperature": [0, 1.5, 2.5],
    "max_tokens": [1, 50, 51],
    "max_completion_tokens": [2, 51],
    "tools": [[], [{"type": "function", "function": {"name": "f", "parameters": {}}}]],
    "tool_choice": ["auto", "none", {"type": "function", "function": {"name": "f"}}],
    "messages": [MESSAGES, [{"role": "system", "content": "brief"}, *MESSAGES]],
    "n": [1],
    "user": ["someone"],
    "stream_options": [{"include_usage": True}],
    "rag_publisher": ["GlooGrounded", "Acme Press"],
    "sources_limit": [1, 3, 11],
    "include_citations": [True, False],
    "parallel_tool_calls": [True, False],
    "response_format": [
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
    ],
}
STREAM_FIELDS = sorted({*RULES, "messages"})
OPENAI_FIELDS = sorted({*STREAM_FIELDS, "max_completion_tokens", "n", "user", "stream_options"})


class Tracebacks(logging.Handler):
    """Every record logged with an exception, or at ERROR and above."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    loggers = [logging.getLogger(name) for name in ("", "gloo_stream.proxy", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer, tracebacks: Tracebacks) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator_session,
        proxy_rate_limit="",
        proxy_max_tokens=50,
        proxy_allowed_models="gloo-openai-gpt-5-mini",
        proxy_allowed_families="openai,anthropic",
        gloo_max_retries=0,
    )
    with ProxyServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def http(proxy: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        yield client


def wrong_type(field: str, value: Any) -> bool:
    """A value no rule of ``field`` could accept, whatever its content."""
    if field == "n":  # null means "not given" (issue 23), so one choice
        return value is not None and (value != 1 or isinstance(value, bool))
    if value is None:  # null means "not given", except where a value is required
        return field in ("messages", "stream")
    kinds: dict[str, tuple[type, ...]] = {
        "auto_routing": (bool,),
        "stream": (bool,),
        "model": (str,),
        "model_family": (str,),
        "tradition": (str,),
        "temperature": (int, float),
        "max_tokens": (int,),
        "max_completion_tokens": (int,),
        "tools": (list,),
        "tool_choice": (str, dict),
        "messages": (list,),
        "user": (str,),
        "stream_options": (dict,),
        "rag_publisher": (str,),
        "sources_limit": (int,),
        "include_citations": (bool,),
        "parallel_tool_calls": (bool,),
        "response_format": (dict,),
    }
    numeric = field in ("temperature", "max_tokens", "max_completion_tokens", "sources_limit")
    if numeric and isinstance(value, bool):
        return True
    return not isinstance(value, kinds[field])


def values(field: str) -> st.SearchStrategy[Any]:
    likely = st.sampled_from(LIKELY[field])
    return likely | MESSAGE_VALUES | JSON if field == "messages" else likely | JSON


def check_answer(response: httpx.Response, field: str, value: Any) -> None:
    status = response.status_code
    event(f"{status}")
    assert status == 200 or 400 <= status < 500, (field, value, status, response.text)
    if status == 200:
        assert not wrong_type(field, value), f"{field}={value!r} was accepted"
        return
    error = response.json()["error"]
    assert error["param"] == field, (field, value, error)
    assert error["message"]
    if wrong_type(field, value):
        assert status == 400


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    with http.stream("POST", path, json=body) as response:
        response.read()  # a valid value streams a whole answer: read it, close it
    return response


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), field=st.sampled_from(STREAM_FIELDS))
def test_api_stream_any_value_in_any_field(
    http: httpx.Client, tracebacks: Tracebacks, data: st.DataObject, field: str
) -> None:
    tracebacks.records.clear()
    value = data.draw(values(field), label="value")
    body = {"messages": MESSAGES, field: value}
    check_answer(post(http, "/api/stream", body), field, value)
    assert not tracebacks.records, tracebacks.records[0].getMessage()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), field=st.sampled_from(OPENAI_FIELDS))
def test_v1_any_value_in_any_field(
    http: httpx.Client, tracebacks: Tracebacks, data: st.DataObject, field: str
) -> None:
    tracebacks.records.clear()
    value = data.draw(values(field), label="value")
    body = {"model": "auto", "messages": MESSAGES, field: value}
    if field == "max_completion_tokens":
        body.pop("max_tokens", None)
    check_answer(post(http, "/v1/chat/completions", body), field, value)
    assert not tracebacks.records, tracebacks.records[0].getMessage()
