"""Bad settings reach a library user as ``ConfigurationError`` naming the variable (issue 22)."""

from __future__ import annotations

import pytest

from gloo_stream import AsyncGlooClient, ConfigurationError, GlooClient, GlooError
from gloo_stream.compat import stream_completion


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # no .env of the checkout


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("GLOO_READ_TIMEOUT", "abc", "GLOO_READ_TIMEOUT: Input should be a valid number"),
        ("GLOO_READ_TIMEOUT", "-1", "GLOO_READ_TIMEOUT: Input should be greater than 0"),
        ("GLOO_API_URL", "not-a-url", "GLOO_API_URL: must be an http:// or https:// URL"),
        ("GLOO_MAX_RETRIES", "many", "GLOO_MAX_RETRIES: Input should be a valid integer"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_echoing_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    for make in (GlooClient, AsyncGlooClient):
        with pytest.raises(ConfigurationError) as caught:
            make()
        assert isinstance(caught.value, GlooError)
        assert words in caught.value.message
        assert caught.value.message.count(repr(value)) == 1  # echoed once, not twice
        assert "pydantic" not in caught.value.message


def test_the_tutorial_functions_raise_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOO_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match=r"GLOO_CONNECT_TIMEOUT.*'soon'"):
        stream_completion("hi", "token")


def test_a_secret_is_named_but_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    from gloo_stream.config import load_settings
    from gloo_stream.proxy.settings import ProxySettings

    monkeypatch.setenv("PROXY_REDIS_URL", "http://user:hunter2@redis.example")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ProxySettings)
    assert "PROXY_REDIS_URL" in caught.value.message
    assert "hunter2" not in caught.value.message
