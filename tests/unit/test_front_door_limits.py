"""The front door's limits: from settings, fitted to the open-files limit, carried to workers."""

from __future__ import annotations

import logging
import pickle

import pytest
from pydantic import ValidationError

from gloo_stream.proxy.edge.front_door import FrontDoorProtocol
from gloo_stream.proxy.edge.front_door_limits import (
    FrontDoorConfig,
    FrontDoorLimits,
    affordable_connections,
    raise_open_files_limit,
)
from gloo_stream.proxy.edge.server import uvicorn_config
from kit import clean_proxy_settings


def test_the_defaults() -> None:
    limits = FrontDoorLimits.from_settings(clean_proxy_settings())
    assert limits == FrontDoorLimits()
    assert (limits.max_header_bytes, limits.max_headers) == (32 * 1024, 100)
    assert (limits.header_timeout, limits.body_timeout, limits.max_connections) == (10, 30, 10_000)


def test_each_limit_comes_from_its_setting() -> None:
    limits = FrontDoorLimits.from_settings(
        clean_proxy_settings(
            proxy_max_header_bytes=8192,
            proxy_max_headers=20,
            proxy_header_timeout=2.5,
            proxy_body_timeout=7,
            proxy_max_connections=300,
        ),
        open_files=1_000_000,
    )
    assert limits == FrontDoorLimits(8192, 20, 2.5, 7.0, 300)


def test_two_descriptors_per_connection_after_the_reserve_and_the_rest() -> None:
    assert affordable_connections(20_000) == (20_000 - 256 - 64) // 2
    assert affordable_connections(1024) == 352
    assert affordable_connections(10) == 1


def test_the_default_cap_is_lowered_quietly_to_the_descriptors_there_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "gloo_stream.proxy"):
        limits = FrontDoorLimits.from_settings(clean_proxy_settings(), open_files=1024)
    assert limits.max_connections == 352
    assert not caplog.records


def test_an_explicit_cap_too_high_is_lowered_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "gloo_stream.proxy"):
        limits = FrontDoorLimits.from_settings(
            clean_proxy_settings(proxy_max_connections=5000), open_files=1024
        )
    assert limits.max_connections == 352
    assert "PROXY_MAX_CONNECTIONS=5000" in caplog.text and "ulimit -n" in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("proxy_max_header_bytes", 100),
        ("proxy_max_headers", 0),
        ("proxy_header_timeout", 0),
        ("proxy_body_timeout", -1),
        ("proxy_keep_alive_timeout", 0),
        ("proxy_max_connections", 0),
    ],
)
def test_nonsense_limits_are_refused_naming_the_setting(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        clean_proxy_settings(**{name: value})


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    resource = pytest.importorskip("resource")
    soft = raise_open_files_limit()
    now, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == now
    assert hard == resource.RLIM_INFINITY or now == hard


def test_the_config_carries_the_limits_to_workers_and_the_protocol() -> None:
    config = uvicorn_config(
        "gloo_stream.proxy.edge.server:app_from_env",
        clean_proxy_settings(proxy_max_headers=42, proxy_keep_alive_timeout=3),
        factory=True,
    )
    assert isinstance(config, FrontDoorConfig)
    assert config.http is FrontDoorProtocol
    assert config.timeout_keep_alive == 3
    copy = pickle.loads(pickle.dumps(config))  # what uvicorn hands each spawned worker
    assert copy.front_door == config.front_door
    assert copy.front_door.max_headers == 42
