"""Property tests: SSEDecoder equals an obviously-correct reference, whatever the read sizes.

The reference below is a direct transcription of the spec, line by line over the whole
stream at once, with no buffering tricks and no fast paths.  The decoder must match it
exactly for arbitrary bytes and for streams built from an SSE-shaped alphabet, however the
stream is split into reads.
"""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gloo_stream.sse import ServerSentEvent, SSEDecoder, encode_event

BOM = b"\xef\xbb\xbf"


def reference_decode(stream: bytes) -> tuple[list[ServerSentEvent], int | None, str]:
    """The spec's algorithm, verbatim: events, final reconnection time, last event id."""
    if stream.startswith(BOM):
        stream = stream[len(BOM) :]
    # The last piece is not followed by a line end: an unfinished line, discarded.
    lines = re.split(rb"\r\n|\r|\n", stream)[:-1]
    events: list[ServerSentEvent] = []
    data_buffer, event_type, id_buffer, last_event_id = "", "", "", ""
    retry: int | None = None
    for raw in lines:
        line = raw.decode("utf-8", "replace")
        if line == "":
            last_event_id = id_buffer
            if data_buffer == "":
                event_type = ""
                continue
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            events.append(
                ServerSentEvent(data_buffer, event_type or "message", last_event_id, retry)
            )
            data_buffer, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data_buffer += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, retry, last_event_id


def decode_in_reads(reads: list[bytes]) -> tuple[list[ServerSentEvent], int | None, str]:
    """Decode with SSEDecoder, one feed per read: events, final retry, last event id."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for read in reads:
        events += decoder.feed(read)
    events += decoder.close()
    return events, decoder.retry, decoder.last_event_id


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    """The stream cut at the given offsets (sorted, clamped), possibly into empty reads."""
    points = sorted(min(c, len(stream)) for c in cuts)
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


SSE_ALPHABET = [
    b"data",
    b"data: ",
    b"data:",
    b":",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"id",
    b"id: ",
    b"event",
    b"event: ",
    b"retry",
    b"retry: ",
    b"0",
    b"7",
    b"42",
    b"-",
    b"x",
    b"\x00",
    "\u00e9".encode(),
    "\u20ac".encode(),
    "\U0001f600".encode(),
    "\u2028".encode(),
    "\u0085".encode(),
    b"\xff",
    b"\x80",
    b"\xe2\x82",
    b"\xf0\x9f",
    BOM,
    b"\xef",
    b"\xbb\xbf",
]

sse_streams = st.lists(st.sampled_from(SSE_ALPHABET), max_size=60).map(b"".join)
any_streams = st.one_of(st.binary(max_size=400), sse_streams)
cuts = st.lists(st.integers(min_value=0, max_value=500), max_size=12)


@settings(max_examples=400, deadline=None)
@given(stream=any_streams)
def test_one_read_matches_the_reference(stream: bytes) -> None:
    assert decode_in_reads([stream]) == reference_decode(stream)


@settings(max_examples=400, deadline=None)
@given(stream=any_streams, cut_points=cuts)
def test_any_split_matches_one_read(stream: bytes, cut_points: list[int]) -> None:
    assert decode_in_reads(split_at(stream, cut_points)) == decode_in_reads([stream])


@settings(max_examples=300, deadline=None)
@given(stream=sse_streams)
def test_bytewise_reads_match_the_reference(stream: bytes) -> None:
    reads = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_in_reads(reads) == reference_decode(stream)


# Irregular events: each must make the decoder drop a read from its bulk path (a run of
# "data: X\n\n" events) to the general one, wherever it sits in the run.
IRREGULAR_EVENTS = [
    "data:{}\n\n",
    "data: {}\n\n\n",
    "\n",
    "data: {}\ndata: {}\n\n",
    "id: 1\ndata: {}\n\n",
    "event: e\ndata: {}\n\n",
    "retry: 5\ndata: {}\n\n",
    ": c\ndata: {}\n\n",
    "data: {}\n: c\n\n",
    "datum: {}\n\n",
    "data: {}\r\n\r\n",
]
token_texts = st.lists(st.text(max_size=12), min_size=6, max_size=40)


@settings(max_examples=400, deadline=None)
@given(
    texts=token_texts,
    irregular=st.one_of(st.none(), st.sampled_from(IRREGULAR_EVENTS)),
    position=st.integers(min_value=0, max_value=40),
    prefix=st.sampled_from(["", "data: x\n", "event: e\n", ":c\n", "id: 9\n\n", "retry: 3\n"]),
    cut_points=cuts,
)
def test_token_streams_match_the_reference(
    texts: list[str], irregular: str | None, position: int, prefix: str, cut_points: list[int]
) -> None:
    """Runs of one-line data events (the decoder's bulk path), at most one irregular event."""
    lines = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    parts = [prefix, *(f"data: {line}\n\n" for line in lines)]
    if irregular is not None:
        parts.insert(1 + position % len(lines), irregular.format(lines[0], lines[-1]))
    stream = "".join(parts).encode()
    assert decode_in_reads([stream]) == reference_decode(stream)
    assert decode_in_reads(split_at(stream, cut_points)) == reference_decode(stream)


single_line = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
encoded_events = st.lists(
    st.tuples(
        st.text(),
        st.one_of(st.none(), single_line),
        st.one_of(st.none(), single_line.filter(lambda s: "\0" not in s)),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(events=encoded_events, cut_points=cuts)
def test_encode_then_decode_round_trips(
    events: list[tuple[str, str | None, str | None, int | None]], cut_points: list[int]
) -> None:
    stream = b"".join(
        encode_event(data, event=event, id=id_, retry=retry) for data, event, id_, retry in events
    )
    expected: list[ServerSentEvent] = []
    last_id: str = ""
    last_retry: int | None = None
    for data, event, id_, retry in events:
        last_id = last_id if id_ is None else id_
        last_retry = last_retry if retry is None else retry
        normalised = data.replace("\r\n", "\n").replace("\r", "\n")
        expected.append(ServerSentEvent(normalised, event or "message", last_id, last_retry))
    assert decode_in_reads(split_at(stream, cut_points))[0] == expected


def data_lane_agrees(reads: list[bytes]) -> None:
    """``feed_data`` and ``feed`` on the same reads: the same events, bytes for data-lane ones."""
    by_event, by_data = SSEDecoder(), SSEDecoder()
    for read in reads:
        events, items = by_event.feed(read), by_data.feed_data(read)
        assert len(items) == len(events)
        for item, event in zip(items, events, strict=True):
            if type(item) is bytes:
                text = item.decode("utf-8", "replace")
                assert event == ServerSentEvent(text, "message", by_data.last_event_id, event.retry)
            else:
                assert item == event
        assert by_data.last_event_id == by_event.last_event_id
        assert by_data.retry == by_event.retry


@settings(max_examples=400, deadline=None)
@given(stream=any_streams, cut_points=cuts)
def test_data_lane_matches_events(stream: bytes, cut_points: list[int]) -> None:
    data_lane_agrees(split_at(stream, cut_points))


@settings(max_examples=300, deadline=None)
@given(
    texts=token_texts,
    irregular=st.one_of(st.none(), st.sampled_from(IRREGULAR_EVENTS)),
    position=st.integers(min_value=0, max_value=40),
    cut_points=cuts,
)
def test_data_lane_matches_events_on_token_streams(
    texts: list[str], irregular: str | None, position: int, cut_points: list[int]
) -> None:
    lines = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    parts = [f"data: {line}\n\n" for line in lines]
    if irregular is not None:
        parts.insert(position % len(lines), irregular)
    stream = "".join(parts).encode()
    data_lane_agrees([stream])
    data_lane_agrees(split_at(stream, cut_points))
