"""The front door's limits, the open-files budget they must fit in, and the config carrying them.

``FrontDoorLimits`` is what ``FrontDoorProtocol`` enforces on each connection: header size and
count, the deadlines for a request's headers and body, and the cap on open connections.
``FrontDoorConfig`` is uvicorn's ``Config`` with those limits attached, so every protocol
instance finds them, in this process or (pickled) in each worker uvicorn spawns.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn

from gloo_stream.proxy.settings import ProxySettings

__all__ = [
    "HEALTH_RESERVE",
    "FrontDoorConfig",
    "FrontDoorLimits",
    "affordable_connections",
    "raise_open_files_limit",
]

logger = logging.getLogger("gloo_stream.proxy")

HEALTH_RESERVE = 64
"""Connections past the cap that are still read, so ``GET /health`` can be answered on them."""

# Descriptors for what is not a client connection: listening socket, Redis, log files, the
# offline simulator, the event loop's own. Generous: running short of them is the failure.
_OTHER_DESCRIPTORS = 256


@dataclass(frozen=True)
class FrontDoorLimits:
    """What one connection may hold before its request is whole, and how many may be open."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 10_000
    health_reserve: int = HEALTH_RESERVE

    @classmethod
    def from_settings(
        cls, settings: ProxySettings, *, open_files: int | None = None
    ) -> FrontDoorLimits:
        """The limits the settings ask for, the cap lowered to fit ``open_files`` descriptors."""
        cap = settings.proxy_max_connections
        if open_files is not None and cap > affordable_connections(open_files):
            affordable = affordable_connections(open_files)
            if "proxy_max_connections" in settings.model_fields_set:
                logger.warning(
                    "PROXY_MAX_CONNECTIONS=%d needs more file descriptors than the %d this "
                    "process may open: at most %d connections (raise `ulimit -n` for more)",
                    cap,
                    open_files,
                    affordable,
                )
            cap = affordable
        return cls(
            max_header_bytes=settings.proxy_max_header_bytes,
            max_headers=settings.proxy_max_headers,
            header_timeout=settings.proxy_header_timeout,
            body_timeout=settings.proxy_body_timeout,
            max_connections=cap,
        )


def affordable_connections(open_files: int) -> int:
    """Client connections that fit in ``open_files`` descriptors with room for everything else.

    Each client connection may hold an upstream connection too while it streams, so two
    descriptors per connection, after the health reserve and the process's other files.
    """
    return max(1, (open_files - _OTHER_DESCRIPTORS - HEALTH_RESERVE) // 2)


def raise_open_files_limit() -> int | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; the soft limit now (None: unbounded).

    Many systems start processes at a soft limit of 1,024 descriptors, far below what a
    proxy of thousands of connections needs, while the hard limit allows far more.
    """
    try:
        import resource
    except ImportError:  # not POSIX: no limit to raise or to know
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):  # a kernel may cap it lower
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


class FrontDoorConfig(uvicorn.Config):
    """uvicorn's ``Config`` carrying ``FrontDoorLimits`` to each connection's protocol."""

    def __init__(self, app: Any, *, front_door: FrontDoorLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.front_door = front_door
