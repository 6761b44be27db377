"""edge/server.py: the loud warning for a public bind without keys."""

from __future__ import annotations

import pytest

from gloo_stream.proxy.edge.server import is_loopback, warn_if_exposed
from kit import clean_proxy_settings


def test_non_loopback_bind_without_keys_warns_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert warn_if_exposed(clean_proxy_settings(proxy_host="0.0.0.0")) is True
    assert "PROXY_API_KEYS" in capsys.readouterr().err
    assert warn_if_exposed(clean_proxy_settings(proxy_host="0.0.0.0", proxy_api_keys="k")) is False
    assert warn_if_exposed(clean_proxy_settings(proxy_host="127.0.0.1")) is False
