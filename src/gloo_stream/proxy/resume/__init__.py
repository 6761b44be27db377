"""Resumable answers: a caller who loses its connection gets the rest of the same answer.

See ``streams`` for the flow, ``memory`` and ``redis_streams`` for where events wait.

Glossary: "resume" meant four things; each now has its own word.

- **kept answer** (``ResumableStreams.keep``, ``ResumableAnswer``): with
  ``PROXY_RESUME_WINDOW`` the proxy numbers an answer's events and keeps them in an
  **event buffer** (``EventBuffer``: ``MemoryBuffer``, ``RedisBuffer``) for the window.
  This package. The setting keeps its name.
- **reconnect** (``routes/reconnect.py``, ``ReconnectEndpoint``): a caller comes back to a
  kept answer, ``GET /api/stream/{id}`` with ``Last-Event-ID``; ``DELETE`` stops it.
- **replay**: the events a reconnecting caller missed, sent again from the buffer before
  it follows the rest live (``gloo_proxy_resume_replayed_events_total``; the metric names are
  public and keep "resume").
- **the client's resume**: the library (``gloo_stream.client``) asking again after a dropped
  connection. Not this package; the proxy never does it.

Retries and failover (a new upstream request after a failure) are none of these.
"""

from gloo_stream.proxy.resume.buffer import (
    STREAM_ID,
    BufferUnavailable,
    EventBuffer,
    ResumeGap,
    StreamGone,
    StreamInfo,
    StreamLost,
    new_stream_id,
)
from gloo_stream.proxy.resume.memory import MemoryBuffer
from gloo_stream.proxy.resume.metrics import ResumeMetrics
from gloo_stream.proxy.resume.streams import ResumableAnswer, ResumableStreams

__all__ = [
    "STREAM_ID",
    "BufferUnavailable",
    "EventBuffer",
    "MemoryBuffer",
    "ResumableAnswer",
    "ResumableStreams",
    "ResumeGap",
    "ResumeMetrics",
    "StreamGone",
    "StreamInfo",
    "StreamLost",
    "new_stream_id",
]
