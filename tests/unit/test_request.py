"""Building and validating request bodies, shared by the client and the proxy."""

from __future__ import annotations

from typing import Any

import pytest

from gloo_stream.errors import InvalidRequestError
from gloo_stream.request import build_chat_request


def test_prompt_becomes_a_user_message_with_auto_routing() -> None:
    assert build_chat_request("hi") == {
        "messages": [{"role": "user", "content": "hi"}],
        "auto_routing": True,
        "stream": True,
    }


@pytest.mark.parametrize(
    "routing",
    [{"model": "gloo-openai-gpt-5-mini"}, {"model_family": "anthropic"}, {"auto_routing": True}],
)
def test_given_routing_is_not_overridden(routing: dict[str, Any]) -> None:
    body = build_chat_request("hi", **routing)
    assert "auto_routing" not in body or body["auto_routing"] is True
    for key, value in routing.items():
        assert body[key] == value
    if "auto_routing" not in routing:
        assert "auto_routing" not in body


def test_documented_family_with_auto_routing_false_is_accepted() -> None:
    body = build_chat_request("hi", model_family="anthropic", auto_routing=False)
    assert body["auto_routing"] is False
    assert body["model_family"] == "anthropic"


def test_params_pass_through_and_none_is_dropped() -> None:
    body = build_chat_request(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0.2,
        max_tokens=50,
        tradition="catholic",
        tool_choice="auto",
        tools=[],
        model=None,
        custom_extra={"a": 1},
        stream=False,
    )
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert body["tradition"] == "catholic"
    assert body["custom_extra"] == {"a": 1}
    assert body["stream"] is False
    assert "model" not in body


@pytest.mark.parametrize(
    ("args", "params", "fragment"),
    [
        ("", {}, "prompt is empty"),
        ([], {}, "non-empty list"),
        ([{"role": "wizard", "content": "x"}], {}, "role must be one of"),
        (["hello"], {}, "must be an object"),
        ([{"role": "user", "content": 5}], {}, "content must be a string"),
        ([{"role": "user"}], {}, "content is missing"),
        ("hi", {"temperature": 3}, "temperature"),
        ("hi", {"temperature": True}, "temperature"),
        ("hi", {"temperature": float("nan")}, "temperature"),
        ("hi", {"max_tokens": 0}, "max_tokens"),
        ("hi", {"max_tokens": 2.5}, "max_tokens"),
        ("hi", {"model_family": "meta"}, "model_family must be one of"),
        ("hi", {"tradition": "other"}, "tradition must be one of"),
        ("hi", {"tool_choice": "sometimes"}, "tool_choice"),
        ("hi", {"tools": "all"}, "tools must be a list"),
        ("hi", {"auto_routing": "yes"}, "auto_routing"),
        ("hi", {"model": ""}, "model must be"),
    ],
)
def test_invalid_input_is_refused_with_a_specific_message(
    args: Any, params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidRequestError, match=fragment) as caught:
        build_chat_request(args, **params)
    assert caught.value.field is not None
