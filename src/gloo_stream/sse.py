"""Server-Sent Events: an incremental sans-IO decoder and an encoder (WHATWG HTML, 9.2)."""

from __future__ import annotations

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_event(
    data: str | bytes | None = None,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the field's name in the spec
    retry: int | None = None,
) -> bytes:
    """Encode one event as wire bytes; multi-line ``data`` becomes one ``data:`` line per line."""
    parts: list[str] = []
    if event is not None:
        _check_single_line("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_single_line("id", id)
        if "\0" in id:
            raise ValueError("an SSE id must not contain NUL")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if retry < 0:
            raise ValueError("an SSE retry must be a non-negative integer of milliseconds")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if "\r" not in text and "\n" not in text:
            parts.append(f"data: {text}\n")
        else:
            parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """Encode an SSE comment (ignored by every client; used as a keep-alive heartbeat)."""
    _check_single_line("comment", text)
    return f": {text}\n\n".encode() if text else b":\n\n"


def _check_single_line(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"an SSE {name} must be a single line (it contains a line break)")
