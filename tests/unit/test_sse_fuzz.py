"""Fuzzing SSEDecoder: random bytes in random read sizes never raise, and huge lines decode.

The decoder faces whatever an upstream or a proxy sends, so no input may crash it; and a
single multi-megabyte line read in small pieces must come out whole and exact.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gloo_stream.sse import ServerSentEvent, SSEDecoder

MIB = 1024 * 1024


def feed_in_reads(stream: bytes, read_size: int) -> tuple[SSEDecoder, list[ServerSentEvent]]:
    """Feed ``stream`` in reads of ``read_size`` bytes, then close; return decoder and events."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(stream), read_size):
        events += decoder.feed(stream[start : start + read_size])
    events += decoder.close()
    return decoder, events


def assert_well_typed(decoder: SSEDecoder, events: list[ServerSentEvent]) -> None:
    """Every event and the decoder's state have exactly the contract's types."""
    for event in events:
        assert type(event) is ServerSentEvent
        assert type(event.data) is str
        assert type(event.event) is str
        assert event.event != ""
        assert type(event.id) is str
        assert "\0" not in event.id
        assert event.retry is None or (type(event.retry) is int and event.retry >= 0)
    assert type(decoder.last_event_id) is str
    assert decoder.retry is None or type(decoder.retry) is int


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    reads=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from([b"\r", b"\n", b"\r\n", b"data: ", b"retry: 9", b"id: \x00", b"\xef"]),
        ),
        max_size=40,
    )
)
def test_random_reads_never_raise(reads: list[bytes]) -> None:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for read in reads:
        events += decoder.feed(read)
    events += decoder.close()
    assert_well_typed(decoder, events)


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=2000), read_size=st.integers(min_value=1, max_value=300))
def test_random_bytes_in_fixed_read_sizes_never_raise(stream: bytes, read_size: int) -> None:
    decoder, events = feed_in_reads(stream, read_size)
    assert_well_typed(decoder, events)
    assert feed_in_reads(stream, len(stream) or 1)[1] == events


def test_four_mib_data_line_in_one_kib_reads_decodes_exactly() -> None:
    # 21 bytes a unit, so 1 KiB read boundaries fall inside the 2- and 3-byte characters.
    unit = "0123456789abcdef\u00e9\u20ac"
    text = unit * (4 * MIB // len(unit.encode()))
    stream = b"data: " + text.encode() + b"\n\n"
    decoder, events = feed_in_reads(stream, 1024)
    assert events == [ServerSentEvent(text)]
    assert decoder.last_event_id == ""


def test_four_mib_line_with_crlf_split_across_reads() -> None:
    # Sized so the CR of the first CRLF is the last byte of a 1 KiB read and its LF the first
    # byte of the next: read wrongly, that LF would be a blank line dispatching early.
    payload = b"x" * (4 * MIB - len(b"data: ") - 1)
    stream = b"data: " + payload + b"\r\ndata: y\r\n\r\n"
    assert stream.index(b"\r") % 1024 == 1023
    _, events = feed_in_reads(stream, 1024)
    assert events == [ServerSentEvent(payload.decode() + "\ny")]


def test_many_megabytes_of_events_in_odd_read_sizes() -> None:
    one = b'data: {"choices":[{"delta":{"content":"Hi \xc3\xa9"}}]}\n\n'
    stream = one * 20_000
    _, events = feed_in_reads(stream, 1021)
    assert len(events) == 20_000
    assert all(e.data == '{"choices":[{"delta":{"content":"Hi \u00e9"}}]}' for e in events)
