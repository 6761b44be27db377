"""The proxy's start-up lines: the URL to open, the upstream without credentials, the auth
mode, offline or not, the workers, and what the page's libraries are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gloo_stream.proxy.edge.startup import page_url, public_url, startup_lines
from gloo_stream.proxy.routes import page as static
from gloo_stream.proxy.settings import ProxySettings


def settings(**values: Any) -> ProxySettings:
    base: dict[str, Any] = {
        "gloo_api_key": SecretStr("gloo-secret-key"),
        "gloo_client_id": None,
        "gloo_client_secret": None,
        "proxy_api_keys": None,
        "proxy_node_modules": None,
        "proxy_redis_url": None,
        "proxy_host": "127.0.0.1",
    }
    return ProxySettings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://platform.ai.gloo.com/ai/v2/chat/completions", None),
        ("https://user:pa55@example.org:8443/v1/chat?api_key=k#frag", "https://example.org:8443/v1/chat"),
        ("http://[::1]:8080/x", None),
        ("http://token@127.0.0.1/x", "http://127.0.0.1/x"),
    ],
)  # fmt: skip
def test_public_url_drops_credentials(url: str, shown: str | None) -> None:
    assert public_url(url) == (shown or url)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:3001/"),
        ("0.0.0.0", "http://127.0.0.1:3001/"),
        ("::", "http://[::1]:3001/"),
        ("::1", "http://[::1]:3001/"),
        ("localhost", "http://localhost:3001/"),
        ("10.1.2.3", "http://10.1.2.3:3001/"),
    ],
)
def test_page_url_is_one_a_browser_on_this_machine_can_open(host: str, url: str) -> None:
    assert page_url(host, 3001) == url


def test_lines_say_where_what_and_how() -> None:
    url = "https://user:hunter2@gloo.example/ai/v2/chat/completions?key=abc"
    lines, warnings = startup_lines(settings(gloo_api_url=url), 41234, offline=False, workers=1)
    text = "\n".join(lines)
    assert lines[0] == "gloo-stream proxy: open http://127.0.0.1:41234/ (the chat page)"
    assert "upstream  https://gloo.example/ai/v2/chat/completions" in text
    assert "API key (GLOO_API_KEY)" in text
    assert "clients need no key" in text
    assert "offline   no" in text
    assert "workers   1" in text
    assert "marked 18." in text and "DOMPurify 3." in text and "shipped with the package" in text
    assert warnings == []
    for secret in ("hunter2", "user", "abc", "gloo-secret-key"):
        assert secret not in text


def test_lines_for_oauth_keys_workers_and_every_interface() -> None:
    lines, _ = startup_lines(
        settings(
            gloo_api_key=None,
            gloo_client_id="client-1",
            gloo_client_secret=SecretStr("s3cret"),
            proxy_api_keys=SecretStr("k1,k2,k3"),
            proxy_host="0.0.0.0",
        ),
        3001,
        offline=False,
        workers=4,
    )
    text = "\n".join(lines)
    assert "open http://127.0.0.1:3001/ (the chat page; listening on every interface" in text
    assert "OAuth2 client credentials" in text
    assert "clients must send one of 3 keys" in text
    assert "workers   4 (limits and metrics per process" in text
    for secret in ("s3cret", "k1", "k2"):
        assert secret not in text


def test_offline_and_no_credentials_are_named() -> None:
    offline, _ = startup_lines(settings(), 1, offline=True, workers=1)
    assert "offline   yes: the built-in simulator" in "\n".join(offline)
    nothing, _ = startup_lines(settings(gloo_api_key=None), 1, offline=False, workers=1)
    assert "none: completions answer 503" in "\n".join(nothing)


def test_missing_libraries_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static, "SHIPPED_DIR", tmp_path)
    lines, warnings = startup_lines(settings(), 1, offline=False, workers=1)
    assert lines[-1] == "  page      none: markdown is off"
    assert len(warnings) == 2
    assert all("reinstall gloo-stream" in w and "plain text" in w for w in warnings)
    lines, warnings = startup_lines(
        settings(proxy_node_modules=str(tmp_path)), 1, offline=False, workers=1
    )
    assert all("PROXY_NODE_MODULES" in w for w in warnings)
