"""Server-Sent Events: an incremental sans-IO decoder and an encoder (WHATWG HTML, 9.2).

``SSEDecoder`` takes bytes exactly as they come off the socket, in reads of any size, and
returns the events they complete; it never does I/O and never raises on bad input.  The
output depends only on the bytes, never on how they were split into reads.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_comment", "encode_event"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_LF = 10


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
        self._pending: list[bytes | memoryview] = []
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
        return self._feed(data, True)

    def feed_data(self, data: bytes | bytearray | memoryview) -> list[bytes | ServerSentEvent]:
        """Like ``feed``, for a caller that decodes the event data itself (as JSON, say).

        When a read's lines are a run of one-line ``data: X`` events and nothing else (a
        token stream's usual read), each of its events comes as ``X``, the bytes exactly as
        sent: no text decoding (invalid UTF-8 is not replaced, as ``feed`` would) and no
        event object; its type is "message", its id and retry those set before the run.
        Every other event comes as a ``ServerSentEvent``, in stream order, so a caller must
        take either form for any event.
        """
        return self._feed(data, False)

    def _feed(self, data: bytes | bytearray | memoryview, decoded: bool) -> list[Any]:
        """Take a read's whole lines (the rest waits for the next read) and interpret them."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close(); use a new decoder")
        if type(data) is not bytes:
            # A caller's bytearray may be reused for the next read; keep our own copy.
            data = bytes(data)
        if self._at_start:
            data = self._strip_bom(data)
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == _LF:
                data = data[1:]  # the second half of a CRLF whose CR ended the previous read
        if not data:
            return []
        # Line ends are ASCII, so they never sit inside a multi-byte character: everything
        # up to the last one is whole lines that decode the same however reads were split.
        # (A CR in the read is in those lines: a CR is itself a line end.)
        # (Each bytes.find costs about as much as a short line's whole decoding, so the
        # usual read, which ends with its LF, skips one.)
        cr = data.rfind(b"\r")
        end = max(cr, len(data) - 1 if data[-1] == _LF else data.rfind(b"\n"))
        if end < 0:
            self._pending.append(data)
            return []
        whole = end + 1 == len(data)
        if self._pending:
            # One copy: the read's lines go into the join as a view, not a slice.
            self._pending.append(data if whole else memoryview(data)[: end + 1])
            block = b"".join(self._pending)
            self._pending = []
        else:
            block = data if whole else data[: end + 1]
        if not whole:
            self._pending.append(data[end + 1 :])
        elif cr == end:
            self._skip_lf = True
        if cr >= 0:
            # bytes.splitlines breaks at exactly CRLF, LF and CR (str.splitlines would also
            # break at U+2028, U+0085, VT, FF...).
            return self._interpret([line.decode("utf-8", "replace") for line in block.splitlines()])
        return self._lf_block(block, decoded)

    def _lf_block(self, block: bytes, decoded: bool) -> list[Any]:
        """The events of whole lines ended by LF: a run of one-line data events in bulk."""
        events: list[Any] = []
        if self._data or self._event_type:
            # An event begun in an earlier read: finish it line by line, to its blank line.
            blank = 1 if block[0] == _LF else block.find(b"\n\n") + 2
            if blank == 1 and block[0] != _LF:
                return self._interpret(_lf_lines(block))
            events = self._interpret(_lf_lines(block[:blank]))
            block = block[blank:]
            if not block:
                return events
        # A token stream is "data: X", "", "data: Y", "", ...: find that shape with a few
        # C-level passes and skip the per-line dispatch that dominates the general path.
        if block[:6] != b"data: ":
            last = -1
        elif len(block) > 7 and block[-2] == _LF and block[-1] == _LF:
            last = len(block) - 2  # the read ends with a blank line: no search needed
        else:
            last = block.rfind(b"\n\n")
        run = _data_run(block[6:last]) if last > 0 else None
        if run is None:
            events += self._interpret(_lf_lines(block))
            return events
        if decoded and len(run) == 1:
            text = run[0].decode("utf-8", "replace")
            events.append(ServerSentEvent(text, "message", self._id_buffer, self._retry))
        elif decoded:
            event_id, retry = self._id_buffer, self._retry
            events += [
                ServerSentEvent(v.decode("utf-8", "replace"), "message", event_id, retry)
                for v in run
            ]
        else:
            events += run
        self._last_event_id = self._id_buffer
        if last + 2 < len(block):
            # Lines after the run's last blank line: the start of the next event.
            events += self._interpret(_lf_lines(block[last + 2 :]))
        return events

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


def _lf_lines(block: bytes) -> list[str]:
    """The lines of a block with LF line ends only (it ends in one), as text."""
    lines = block.decode("utf-8", "replace").split("\n")
    del lines[-1]  # the empty string after the final line end
    return lines


def _data_run(run: bytes) -> list[bytes] | None:
    """The data of ``X\\n\\ndata: Y\\n\\n...data: Z`` (a run after its first ``data: ``), or None.

    Split at every ``\\n\\ndata: ``: when no piece holds a line feed, every line of the run
    was either blank or ``data: `` and a one-line value, alternately, so each piece is one
    event's data. Two C-level passes (split, then a memchr over the joined pieces) instead
    of a Python step per line.
    """
    if run.find(b"\n") < 0:
        return [run]  # one event (a live stream's usual read): no split needed
    values = run.split(b"\n\ndata: ")
    if b"".join(values).find(b"\n") >= 0:
        return None
    return values


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
