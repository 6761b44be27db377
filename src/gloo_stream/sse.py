"""Server-Sent Events: an incremental sans-IO decoder and an encoder (WHATWG HTML, 9.2).

``SSEDecoder`` takes bytes exactly as they come off the socket, in reads of any size, and
returns the events they complete; it never does I/O and never raises on bad input.  The
output depends only on the bytes, never on how they were split into reads.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_comment", "encode_event"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_LF = 10
# Fewer lines than this go straight to the general loop: below about six events a read,
# checking for the bulk shape costs more than it saves (measured).
_BULK_MIN_LINES = 12


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event: its type, data, the last event id and the reconnection time.

    A frozen, gc-free struct because a stream produces one per token: it is built in about
    a tenth of a microsecond, compares by value and has a readable repr.
    """

    data: str = ""
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder: ``feed(bytes)`` in, ``ServerSentEvent``\\ s out.

    Follows the HTML Living Standard's "parsing an event stream" and "interpreting an event
    stream" exactly: CRLF, LF and CR line ends (a CRLF split across reads is one line end),
    one leading BOM dropped, invalid UTF-8 replaced with U+FFFD, an unfinished event at the
    end of the stream discarded.  Cost is linear in the input however it is split.
    """

    __slots__ = (
        "_at_start",
        "_closed",
        "_data",
        "_event_type",
        "_head",
        "_id_buffer",
        "_last_event_id",
        "_pending",
        "_retry",
        "_skip_lf",
    )

    def __init__(self) -> None:
        """Start a decoder at the beginning of a stream."""
        # Parser state: bytes of the unfinished line (never containing CR or LF), whether
        # the last read ended in CR (so a leading LF in the next read finishes a CRLF), and
        # the first bytes of the stream while they could still be a split BOM.
        self._pending: list[bytes] = []
        self._skip_lf = False
        self._at_start = True
        self._head = b""
        self._closed = False
        # Interpretation state, named as in the spec.
        self._data: list[str] = []
        self._event_type = ""
        self._id_buffer = ""
        self._last_event_id = ""
        self._retry: int | None = None

    @property
    def retry(self) -> int | None:
        """The reconnection time in milliseconds last set by the stream, None until set."""
        return self._retry

    @property
    def last_event_id(self) -> str:
        """The last event id string (set at each blank line); "" until the stream sets one."""
        return self._last_event_id

    def feed(self, data: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Consume the next read from the stream; return the events it completes, in order."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close(); use a new decoder")
        if type(data) is not bytes:
            # A caller's bytearray may be reused for the next read; keep our own copy.
            data = bytes(data)
        if self._at_start:
            data = self._strip_bom(data)
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == _LF:
                # The second half of a CRLF whose CR ended the previous read.
                data = data[1:]
                if not data:
                    return []
        # Line ends are ASCII, so they never sit inside a multi-byte character: everything
        # up to the last one is whole lines that decode the same however reads were split.
        cr = data.rfind(b"\r")
        end = max(cr, data.rfind(b"\n"))
        if end < 0:
            self._pending.append(data)
            return []
        block = data[: end + 1] if end + 1 < len(data) else data
        if self._pending:
            self._pending.append(block)
            block = b"".join(self._pending)
            self._pending = []
        if end + 1 < len(data):
            self._pending.append(data[end + 1 :])
        elif cr == end:
            self._skip_lf = True
        if cr < 0:
            # LF only (the usual case): decoding the block in one call is the fastest way.
            lines = block.decode("utf-8", "replace").split("\n")
            del lines[-1]  # the empty string after the final line end
        else:
            # bytes.splitlines breaks at exactly CRLF, LF and CR (str.splitlines would also
            # break at U+2028, U+0085, VT, FF...), and twice as fast as two str.replace calls.
            lines = [line.decode("utf-8", "replace") for line in block.splitlines()]
        if len(lines) < _BULK_MIN_LINES:
            # A read of an event or two: checking for the bulk shape would cost more than it saves.
            return self._interpret(lines)
        return self._interpret_bulk(lines)

    def close(self) -> list[ServerSentEvent]:
        """End the stream: an unfinished event is discarded, so this returns [] (spec)."""
        self._closed = True
        self._pending = []
        self._head = b""
        self._data = []
        self._event_type = ""
        return []

    def _strip_bom(self, data: bytes) -> bytes:
        """Drop one UTF-8 BOM at the very start of the stream, even if split across reads."""
        head = self._head + data if self._head else data
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head  # may still become a BOM: decide on the next read
            return b""
        self._at_start = False
        self._head = b""
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _interpret_bulk(self, lines: list[str]) -> list[ServerSentEvent]:
        """Interpret many whole lines, building runs of one-line ``data: `` events in bulk."""
        events: list[ServerSentEvent] = []
        if self._data or self._event_type:
            # Finish the event begun in an earlier read on the general path first.
            try:
                first_blank = lines.index("") + 1
            except ValueError:
                return self._interpret(lines)
            events = self._interpret(lines[:first_blank])
            lines = lines[first_blank:]
        # A token stream is "data: X", "", "data: Y", "", ...: check that shape with C-level
        # list operations, then build every event in one comprehension, skipping the
        # per-line dispatch that dominates the general path.
        pairs = len(lines) // 2
        values = lines[0 : 2 * pairs : 2]
        # The strings with a given prefix are contiguous in sorted order, so when the
        # smallest and the largest start with "data: " every one of them does.
        if (
            values
            and not any(lines[1 : 2 * pairs : 2])
            and min(values)[:6] == "data: "
            and max(values)[:6] == "data: "
        ):
            event_id, retry = self._id_buffer, self._retry
            events += [ServerSentEvent(v[6:], "message", event_id, retry) for v in values]
            self._last_event_id = event_id
            if len(lines) % 2:
                events += self._interpret(lines[-1:])
            return events
        events += self._interpret(lines)
        return events

    def _interpret(self, lines: list[str]) -> list[ServerSentEvent]:
        """Apply complete lines to the interpretation state; return the dispatched events."""
        events: list[ServerSentEvent] = []
        data = self._data
        event_type = self._event_type
        id_buffer = self._id_buffer
        last_event_id = self._last_event_id
        retry = self._retry
        for line in lines:
            # Checked in order of frequency: a token stream is "data: ..." and blank lines.
            if line[:6] == "data: ":
                data.append(line[6:])
            elif not line:
                last_event_id = id_buffer
                if data:
                    text = data[0] if len(data) == 1 else "\n".join(data)
                    events.append(ServerSentEvent(text, event_type or "message", id_buffer, retry))
                    data = []
                event_type = ""
            elif line[0] != ":":  # a leading colon marks a comment
                name, _, value = line.partition(":")
                if value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event_type = value
                elif name == "id":
                    if "\0" not in value:
                        id_buffer = value
                elif name == "retry":
                    retry = _parse_retry(value, retry)
        self._data = data
        self._event_type = event_type
        self._id_buffer = id_buffer
        self._last_event_id = last_event_id
        self._retry = retry
        return events


def _parse_retry(value: str, current: int | None) -> int | None:
    """The new reconnection time if ``value`` is ASCII digits only, else ``current`` (spec)."""
    # str.isdigit alone accepts digits like "²" or "٣"; the spec wants ASCII 0-9 only.
    if not (value.isascii() and value.isdigit()):
        return current
    try:
        return int(value.lstrip("0") or "0")
    except ValueError:
        # Longer than int()'s digit limit (thousands of digits): ignored, as browsers
        # ignore a reconnection time that overflows their integer type.
        return current


def encode_event(
    data: str | bytes | None = None,
    *,
    event: str | None = None,
    id: str | None = None,  # shadows the builtin: it is the field's name in the spec
    retry: int | None = None,
) -> bytes:
    """Encode one event as wire bytes; multi-line ``data`` becomes one ``data:`` line per line."""
    # The token-stream case (one single-line, data-only event per chunk) in one step.
    if (
        event is None
        and id is None
        and retry is None
        and isinstance(data, str)
        and "\r" not in data
        and "\n" not in data
    ):
        return b"data: " + data.encode("utf-8") + b"\n\n"
    parts: list[str] = []
    if event is not None:
        _check_single_line("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_single_line("id", id)
        if "\0" in id:
            raise ValueError("an SSE id must not contain NUL (clients ignore such an id)")
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
    """Reject a value with a line break: it would end the field early and corrupt the stream."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"an SSE {name} must be a single line (it contains a line break)")
