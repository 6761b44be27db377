"""The client a command talks through: settings from the environment and the options, then
the configured API, or an in-process simulator for ``--offline``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gloo_stream import config
from gloo_stream.cli.failures import ExitStatus, explain, fail
from gloo_stream.client import GlooClient
from gloo_stream.config import GlooSettings
from gloo_stream.errors import ConfigurationError, GlooError

__all__ = ["DEMO_TOKENS_PER_SECOND", "OFFLINE_TOKENS_PER_SECOND", "load_settings", "open_client"]

OFFLINE_TOKENS_PER_SECOND = 60.0
DEMO_TOKENS_PER_SECOND = 100.0  # visibly streams, yet the whole demo takes a couple of seconds


def load_settings(**overrides: Any) -> GlooSettings:
    """Settings from the environment and ``.env``, options winning; exit 2 when invalid."""
    try:
        return config.load_settings(GlooSettings, **overrides)
    except ConfigurationError as error:
        raise fail(ExitStatus.USAGE, [error.message]) from None


@contextmanager
def open_client(
    settings: GlooSettings,
    *,
    offline: bool,
    timeout: float | None,
    tokens_per_second: float = OFFLINE_TOKENS_PER_SECOND,
) -> Iterator[tuple[GlooClient, str]]:
    """A client for the configured API, or for an in-process simulator when ``offline``.

    Yields the client and its auth mode (used to word authentication errors).
    """
    timeouts: dict[str, Any] = {
        "timeout": timeout,
        "read_timeout": timeout,
        "first_byte_timeout": timeout,
    }
    if not offline:
        try:
            client = GlooClient(settings=settings, **timeouts)
        except GlooError as error:
            explanation = explain(error, auth_mode=settings.auth_mode)
            raise fail(explanation.status, explanation.lines) from None
        with client:
            yield client, settings.auth_mode
        return
    # Imported here: the simulator pulls in the ASGI stack, which online runs never need.
    from gloo_stream.simulator import SimulatorConfig, SimulatorServer

    config = SimulatorConfig(tokens_per_second=tokens_per_second)
    with (
        SimulatorServer(config=config, host="127.0.0.1", port=0) as sim,
        GlooClient(
            settings=settings, api_url=sim.api_url, api_key=config.api_keys[0], **timeouts
        ) as client,
    ):
        yield client, "api_key"
