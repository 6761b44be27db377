"""What every resume buffer offers, and the ids streams are known by.

A buffer keeps each resumable answer's events, already framed as the caller got them
(``id: N`` first), numbered 1, 2, 3... It is written by the replica that holds the
upstream and read by any replica a caller resumes on. ``append`` and ``finish`` are plain
calls on the hot path (one per relayed event): a buffer that talks to a store queues
them and writes in batches. Everything a reader awaits is a method of its own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "STREAM_ID",
    "BufferUnavailable",
    "EventBuffer",
    "ResumeGap",
    "StreamGone",
    "StreamInfo",
    "StreamLost",
    "new_stream_id",
]

# 24 random bytes: 192 bits, 32 URL-safe characters; an id cannot be guessed.
_ID_BYTES = 24
STREAM_ID = re.compile(r"[A-Za-z0-9_-]{32}")


def new_stream_id() -> str:
    """A fresh stream id (192 random bits)."""
    return secrets.token_urlsafe(_ID_BYTES)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the owner of a stream may learn about it."""

    route: str
    """The route that started it (``/api/stream`` or ``/v1/chat/completions``)."""
    finished: bool
    """True once its last event is in the buffer."""
    last: int
    """The number of the last event buffered when it was looked up (0: none yet)."""


class StreamGone(Exception):  # noqa: N818 - names the condition
    """The stream is unknown, expired, cancelled, or another caller's."""


class ResumeGap(Exception):  # noqa: N818 - names the condition
    """Events after the one asked for are no longer kept (the answer outgrew the buffer)."""


class BufferUnavailable(Exception):  # noqa: N818 - names the condition
    """The store behind the buffer did not answer (the stream may well exist)."""


class StreamLost(Exception):  # noqa: N818 - names the condition
    """The replica generating the answer went away before its end: it will never end."""


class EventBuffer(Protocol):
    """Where resumable answers' events wait for a caller to come back."""

    shared: bool
    """True when other replicas read the same buffer (so one of them can carry a reader on)."""

    async def create(self, stream_id: str, owner: str, route: str) -> bool:
        """Make room for a new stream; False when the store cannot be reached."""
        ...

    def append(self, stream_id: str, number: int, frame: bytes) -> None:
        """Keep event ``number`` (1-based, one more than the last)."""
        ...

    def finish(self, stream_id: str, number: int | None, frame: bytes) -> None:
        """The last event (``number`` None and ``frame`` empty when there is none): the
        stream ends, and stays resumable for the window from now."""
        ...

    async def find(self, stream_id: str, owner: str) -> StreamInfo | None:
        """The stream, if it exists and ``owner`` started it; None otherwise.

        Raises ``BufferUnavailable`` when that cannot be known now.
        """
        ...

    def follow(
        self, stream_id: str, after: int, *, idle: float
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Every event after ``after``, then each new one as it comes, to the end.

        Yields ``(number of the piece's last event, framed bytes)``: several events may
        come in one piece, and ``(cursor, b"")`` after ``idle`` seconds without any (so the
        reader can say it is still there). Raises ``StreamGone``, ``ResumeGap`` or
        ``StreamLost``.
        """
        ...

    async def hold(self, stream_id: str) -> None:
        """Someone is reading the stream, or just left: keep it for the window from now."""
        ...

    async def unattended(self, stream_ids: Iterable[str]) -> set[str]:
        """Those of ``stream_ids`` nobody has held within the window."""
        ...

    async def cancel(self, stream_id: str) -> None:
        """Forget the stream for its callers (it is 404 from now) and tell its producer."""
        ...

    async def cancelled(self, stream_ids: Iterable[str]) -> set[str]:
        """Those of ``stream_ids`` that were cancelled (a check behind ``on_cancel``)."""
        ...

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(stream_id)`` when a stream this process produces is cancelled
        from elsewhere (another replica took the ``DELETE``)."""
        ...

    async def keep_alive(self, stream_ids: Iterable[str]) -> None:
        """The streams this process produces are still being generated; also the moment to
        forget expired ones (called once per tick)."""
        ...

    async def aclose(self) -> None:
        """Write what is queued and release the store."""
        ...
