"""One structured log line per request: JSON, no secrets, no message content by default.

The line holds ids, numbers and fixed codes only. The caller's identity is the hash
``ClientAuth`` computed (never a key), and prompts and answers appear only when the operator
turns on ``PROXY_LOG_CONTENT``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["RequestRecord", "logger"]

logger = logging.getLogger("gloo_stream.proxy")
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class RequestRecord:
    """What the log line says about one request; filled in as the request goes."""

    request_id: str
    route: str
    method: str
    client: str = "-"
    status: int = 0
    outcome: str = "ok"
    error_code: str | None = None
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    tokens: int | None = None
    chunks: int = 0
    bytes: int = 0
    attempts: int = 0
    upstream: str | None = None
    """Which upstream served the answer: primary or fallback (None: none was asked)."""
    model: str | None = None
    usage: dict[str, Any] | None = None
    """Tokens billed: input, output, and whether estimated (the upstream's count missing)."""
    continuations: list[dict[str, Any]] | None = None
    """The seams of a continued answer: n, reason, upstream, offset each."""
    content: dict[str, Any] | None = field(default=None)

    def emit(self) -> None:
        """Write the line (level INFO, WARNING for 5xx)."""
        data = {
            "event": "request",
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "outcome": self.outcome,
            "client": self.client,
            "duration_ms": round(self.duration_ms, 1),
        }
        if self.error_code is not None:
            data["error_code"] = self.error_code
        if self.upstream is not None:
            data["upstream"] = self.upstream
        if self.chunks or self.tokens is not None:
            data.update(
                ttft_ms=None if self.ttft_ms is None else round(self.ttft_ms, 1),
                tokens=self.tokens,
                chunks=self.chunks,
                bytes=self.bytes,
                attempts=self.attempts,
            )
        if self.continuations:
            data["continuations"] = len(self.continuations)
            data["seams"] = self.continuations
        if self.usage is not None:
            data["model"] = self.model
            data["usage"] = self.usage
        if self.content is not None:
            data["content"] = self.content
        level = logging.WARNING if self.status >= 500 else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, _encoder.encode(data).decode(), extra={"proxy": data})
