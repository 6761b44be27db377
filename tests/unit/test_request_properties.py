"""Property tests: any JSON value in any declared field is accepted or refused naming it.

Never a ``TypeError`` (a list where a string belongs once hit ``value in frozenset``), and a
value of the wrong type is always refused, for the library's ``build_chat_request``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gloo_stream.errors import InvalidRequestError
from gloo_stream.request import RULES, build_chat_request

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats()
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = sorted(RULES)
ROLE = st.sampled_from(["system", "user", "assistant", "tool"]) | JSON
MESSAGE = st.fixed_dictionaries(
    {"role": ROLE},
    optional={"content": JSON, "name": JSON, "tool_call_id": JSON, "tool_calls": JSON},
)
MESSAGES = st.lists(MESSAGE | JSON, max_size=3) | JSON


def right_type(field: str, value: Any) -> bool:
    """Whether ``value`` is of the type ``field`` declares (not whether it is valid)."""
    if field in ("auto_routing", "stream", "parallel_tool_calls"):
        return isinstance(value, bool)
    if field in ("model", "model_family", "tradition"):
        return isinstance(value, str)
    if field == "temperature":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field == "max_tokens":
        return isinstance(value, int) and not isinstance(value, bool)
    if field == "tools":
        return isinstance(value, list)
    if field in ("stream_options", "response_format"):
        return isinstance(value, dict)
    if field in ("include_citations", "parallel_tool_calls"):
        return isinstance(value, bool)
    if field == "rag_publisher":
        return isinstance(value, str)
    if field == "sources_limit":
        return isinstance(value, int) and not isinstance(value, bool)
    assert field == "tool_choice"
    return isinstance(value, str | dict)


def build(field: str, value: Any) -> dict[str, Any] | InvalidRequestError:
    """The body built with ``field=value``, or the refusal (any other exception escapes)."""
    try:
        if field == "stream":
            return build_chat_request("hi", stream=value)
        if field == "messages":
            return build_chat_request(value)
        return build_chat_request("hi", **{field: value})
    except InvalidRequestError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_any_json_value_is_accepted_or_refused_naming_the_field(field: str, value: Any) -> None:
    body = build(field, value)
    if isinstance(body, InvalidRequestError):
        assert body.field == field
        assert field in body.message
    # auto_routing false with no model named is turned into Gloo's default, auto routing.
    elif value is not None and field != "auto_routing":
        assert body[field] == value or value != value  # NaN is never equal, even to itself


@settings(max_examples=250, deadline=None)
@given(data=st.data(), field=st.sampled_from(FIELDS))
def test_a_value_of_the_wrong_type_is_always_refused(data: st.DataObject, field: str) -> None:
    value = data.draw(JSON.filter(lambda v: v is not None and not right_type(field, v)))
    refused = build(field, value)
    assert isinstance(refused, InvalidRequestError), f"{field}={value!r} was accepted"
    assert refused.field == field


@settings(max_examples=300, deadline=None)
@given(messages=MESSAGES)
def test_any_messages_value_is_accepted_or_refused_naming_messages(messages: Any) -> None:
    body = build("messages", messages)
    if isinstance(body, InvalidRequestError):
        assert body.field == "messages"
        assert body.message.startswith(("messages", "the prompt"))
        return
    for message in body["messages"]:
        assert isinstance(message["role"], str)
        assert message.get("content") is None or isinstance(message["content"], str | list)


@given(value=JSON.filter(lambda v: not isinstance(v, str | list)))
def test_messages_of_the_wrong_type_are_refused(value: Any) -> None:
    refused = build("messages", value)
    assert isinstance(refused, InvalidRequestError), f"messages={value!r} was accepted"
    assert refused.field == "messages"
