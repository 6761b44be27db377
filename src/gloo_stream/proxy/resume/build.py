"""``resumable_streams``: the resume machinery a proxy's settings ask for, or None when off."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gloo_stream.proxy.resume.buffer import EventBuffer
from gloo_stream.proxy.resume.memory import MemoryBuffer
from gloo_stream.proxy.resume.metrics import ResumeMetrics
from gloo_stream.proxy.resume.streams import ResumableStreams
from gloo_stream.proxy.settings import ProxySettings

__all__ = ["resumable_streams"]


def resumable_streams(
    settings: ProxySettings, registry: CollectorRegistry
) -> ResumableStreams | None:
    """Resumable answers per ``PROXY_RESUME_WINDOW`` (None when 0): in Redis Streams with
    ``PROXY_REDIS_URL``, so any replica can resume them, else in this process."""
    window = settings.proxy_resume_window
    if window <= 0:
        return None
    buffer: EventBuffer
    if settings.proxy_redis_url is not None:
        buffer = _redis_buffer(settings)
    else:
        buffer = MemoryBuffer(window=window, max_bytes=settings.proxy_resume_buffer_bytes)
    return ResumableStreams(buffer, window=window, metrics=ResumeMetrics(registry))


def _redis_buffer(settings: ProxySettings) -> EventBuffer:
    from redis.asyncio import Redis  # redis only when used
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from gloo_stream.proxy.resume.redis_streams import RedisBuffer

    assert settings.proxy_redis_url is not None
    timeout = max(1.0, settings.proxy_redis_timeout)
    client = Redis.from_url(
        settings.proxy_redis_url.get_secret_value(),
        # A reader's XREAD blocks up to a heartbeat: the socket must wait longer than that.
        socket_timeout=settings.proxy_heartbeat_interval + 5.0,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    return RedisBuffer(
        client,
        window=settings.proxy_resume_window,
        max_bytes=settings.proxy_resume_buffer_bytes,
        prefix=settings.proxy_redis_prefix,
        timeout=timeout,
    )
