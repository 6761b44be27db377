"""GLOO_MODEL / GLOO_MODEL_FAMILY / GLOO_TRADITION: the default for calls that name no routing.

One rule (``request.with_defaults``), read from the settings, used by the clients, the
compat functions and the proxy; the proxy's allow-lists judge the default like a caller's.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from gloo_stream.cli.failures import ExitStatus, explain, explain_settings
from gloo_stream.errors import (
    MISSING_MODEL_HINT,
    BadRequestError,
    error_from_response,
    names_missing_model,
)
from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.routes.body_admission import upstream_body
from gloo_stream.proxy.routes.openai_dialect import models_body, translate_request
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.request import build_chat_request, with_defaults
from kit import clean_proxy_settings, clean_settings

MESSAGES = [{"role": "user", "content": "hi"}]
FASTAPI_MISSING_MODEL = (
    b'{"detail":[{"type":"missing","loc":["body","model"],"msg":"Field required","input":null}]}'
)


def proxy(**values: Any) -> ProxySettings:
    """Proxy settings without the default max_tokens cap, so a body shows only the defaults."""
    return clean_proxy_settings(proxy_max_tokens=None, **values)


# -- the rule --------------------------------------------------------------------------------


def test_without_defaults_gloo_auto_routes() -> None:
    assert clean_settings().request_defaults == {}
    body = build_chat_request("hi", defaults={})
    assert body["auto_routing"] is True
    assert "model" not in body


def test_default_model_replaces_auto_routing_for_a_call_naming_none() -> None:
    body = build_chat_request("hi", defaults={"model": "llama3"})
    assert body == {"messages": MESSAGES, "model": "llama3", "stream": True}


@pytest.mark.parametrize(
    "routing",
    [
        {"model": "gloo-openai-gpt-5-mini"},
        {"model_family": "anthropic"},
        {"auto_routing": True},
        {"model_family": "google", "auto_routing": False},
    ],
)
def test_the_callers_own_routing_always_wins(routing: dict[str, Any]) -> None:
    body = build_chat_request("hi", defaults={"model": "llama3"}, **routing)
    assert "llama3" not in body.values()
    for name, value in routing.items():
        assert body[name] == value


def test_auto_routing_false_alone_names_no_routing_so_the_default_applies() -> None:
    body = build_chat_request("hi", defaults={"model": "llama3"}, auto_routing=False)
    assert body["model"] == "llama3"


def test_a_none_value_is_not_a_choice() -> None:
    assert with_defaults({"model": None, "temperature": 1}, {"model": "m"}) == {
        "temperature": 1,
        "model": "m",
    }


def test_an_empty_model_is_refused_not_silently_replaced() -> None:
    with pytest.raises(ValueError, match="model must be a model name"):
        build_chat_request("hi", defaults={"model": "llama3"}, model="")


def test_default_tradition_applies_whatever_the_routing_unless_the_call_gives_one() -> None:
    defaults = {"tradition": "catholic"}
    assert build_chat_request("hi", defaults=defaults)["tradition"] == "catholic"
    routed = build_chat_request("hi", defaults=defaults, model_family="openai")
    assert routed["tradition"] == "catholic"
    assert routed["model_family"] == "openai"
    own = build_chat_request("hi", defaults=defaults, tradition="mainline")
    assert own["tradition"] == "mainline"
    assert build_chat_request("hi", defaults=defaults)["auto_routing"] is True  # not routing


def test_default_family_routes_when_no_model_is_set() -> None:
    body = build_chat_request(
        "hi", defaults=clean_settings(gloo_model_family="anthropic").request_defaults
    )
    assert body["model_family"] == "anthropic"
    assert "auto_routing" not in body


# -- the settings ------------------------------------------------------------------------------


def test_settings_read_the_environment_and_treat_blank_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GLOO_MODEL", "  llama3.1:8b ")
    monkeypatch.setenv("GLOO_TRADITION", "evangelical")
    monkeypatch.setenv("GLOO_MODEL_FAMILY", "")
    assert clean_settings().request_defaults == {"model": "llama3.1:8b", "tradition": "evangelical"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gloo_model_family": "klingon"}, "must be one of anthropic, google, open source, openai"),
        ({"gloo_tradition": "jedi"}, "must be one of catholic, evangelical"),
        ({"gloo_model": "m", "gloo_model_family": "openai"}, "GLOO_MODEL or GLOO_MODEL_FAMILY"),
    ],
)
def test_bad_defaults_are_refused_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        clean_settings(**values)
    explained = explain_settings(caught.value)
    assert explained.status is ExitStatus.USAGE
    assert message in explained.lines[0]
    assert "Value error" not in explained.lines[0]


def test_the_proxy_refuses_a_default_its_allow_lists_forbid() -> None:
    with pytest.raises(ValidationError, match="GLOO_MODEL 'z' is not in PROXY_ALLOWED_MODELS"):
        proxy(gloo_model="z", proxy_allowed_models="a,b")
    with pytest.raises(ValidationError, match="not in PROXY_ALLOWED_FAMILIES"):
        proxy(gloo_model_family="google", proxy_allowed_families="openai")
    assert proxy(gloo_model="a", proxy_allowed_models="a,b").gloo_model == "a"


# -- the proxy -------------------------------------------------------------------------------


def test_proxy_applies_the_default_only_when_the_caller_names_no_routing() -> None:
    s = proxy(gloo_model="a", proxy_allowed_models="a,b", gloo_tradition="mainline")
    assert upstream_body({"messages": MESSAGES}, s) == {
        "messages": MESSAGES,
        "model": "a",
        "tradition": "mainline",
        "stream": True,
    }
    assert upstream_body({"messages": MESSAGES, "model": "b"}, s)["model"] == "b"
    family = upstream_body({"messages": MESSAGES, "model_family": "openai"}, s)
    assert "model" not in family
    with pytest.raises(RequestRefused) as caught:  # the allow-list still holds for callers
        upstream_body({"messages": MESSAGES, "model": "c"}, s)
    assert caught.value.failure.param == "model"


def test_allow_list_judges_the_default_too_when_settings_skip_validation() -> None:
    # model_construct skips the start-up check: the per-request check must still hold.
    s = ProxySettings.model_construct(
        gloo_model="z", proxy_allowed_models="a", proxy_max_tokens=None
    )
    with pytest.raises(RequestRefused) as caught:
        upstream_body({"messages": MESSAGES}, s)
    assert caught.value.failure.code == "model_not_allowed"


def test_v1_auto_means_auto_routing_and_default_means_the_proxys_default() -> None:
    s = proxy(gloo_model="llama3")
    auto, _ = translate_request({"model": "auto", "messages": MESSAGES}, s)
    assert auto["auto_routing"] is True
    assert "model" not in auto
    default, _ = translate_request({"model": "default", "messages": MESSAGES}, s)
    assert default["model"] == "llama3"
    assert "auto_routing" not in default
    unset, _ = translate_request({"model": "default", "messages": MESSAGES}, proxy())
    assert unset["auto_routing"] is True


def test_v1_models_lists_the_default_model_after_auto() -> None:
    listed = msgspec.json.decode(models_body(proxy(gloo_model="b", proxy_allowed_models="a,b")))
    assert [m["id"] for m in listed["data"]] == ["auto", "b", "a"]
    plain = msgspec.json.decode(models_body(proxy()))
    assert [m["id"] for m in plain["data"]] == ["auto"]


# -- the hint on a 422 that names a missing model ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, FASTAPI_MISSING_MODEL),
        (400, b'{"error":{"message":"model is required","type":"api_error"}}'),
        (400, b'{"error":{"message":"you must provide a model parameter"}}'),
    ],
)
def test_a_missing_model_answer_gets_the_hint(status: int, body: bytes) -> None:
    error = error_from_response(status, body, {}, now=0)
    assert isinstance(error, BadRequestError)
    assert error.missing_model is True
    assert error.message.startswith(f"API error ({status}): ")  # the tutorial's wording stays
    assert error.message.endswith(f"({MISSING_MODEL_HINT})")
    lines = explain(error).lines
    assert "GLOO_MODEL" in lines[1]
    assert "--model" in lines[1]
    assert MISSING_MODEL_HINT not in lines[0]


@pytest.mark.parametrize(
    "body",
    [
        '{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required"}]}',
        '{"detail":[{"type":"literal_error","loc":["body","model_family"],"msg":"bad"}]}',
        '{"error":"model_family is required"}',
        '{"error":"model gpt-x not found"}',
        "",
    ],
)
def test_other_validation_answers_get_no_model_hint(body: str) -> None:
    error = error_from_response(422, body, {}, now=0)
    assert isinstance(error, BadRequestError)
    assert error.missing_model is False
    assert not names_missing_model(error.detail, body)
    assert "GLOO_MODEL" not in error.message
    assert explain(error).lines[1] == "The server refused the request's fields."
