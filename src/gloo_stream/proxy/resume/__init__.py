"""Resumable answers: a caller who loses its connection gets the rest of the same answer.

See ``streams`` for the flow, ``memory`` and ``redis_streams`` for where events wait.
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
