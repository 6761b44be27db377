"""ProxySettings (gloo_stream.proxy.settings): defaults, environment, bad rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kit import clean_proxy_settings


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = clean_proxy_settings()
    assert s.proxy_port == 3001
    assert s.proxy_heartbeat_interval == 15.0
    monkeypatch.setenv("PROXY_HEARTBEAT_INTERVAL", "2.5")
    monkeypatch.setenv("PROXY_ALLOWED_MODELS", "a, b")
    monkeypatch.setenv("PROXY_RATE_LIMIT", "off")
    s = clean_proxy_settings()
    assert s.proxy_heartbeat_interval == 2.5
    assert s.allowed_models == {"a", "b"}
    assert s.proxy_rate_limit == ""


def test_settings_refuse_a_bad_rate_limit() -> None:
    with pytest.raises(ValidationError, match="60/minute"):
        clean_proxy_settings(proxy_rate_limit="lots")
