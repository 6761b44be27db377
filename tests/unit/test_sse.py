"""SSEDecoder against the WHATWG rules for parsing and interpreting an event stream, one rule
per test, plus the encoder.

Every decoding test runs twice: once with the whole stream in one read and once a byte at a
time, because the decoder's output must not depend on how the bytes were split.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gloo_stream.sse import ServerSentEvent, SSEDecoder, encode_comment, encode_event

Decode = Callable[[bytes], list[ServerSentEvent]]


def decode_whole(stream: bytes) -> list[ServerSentEvent]:
    """Decode a stream fed in one read, then closed."""
    decoder = SSEDecoder()
    return decoder.feed(stream) + decoder.close()


def decode_bytewise(stream: bytes) -> list[ServerSentEvent]:
    """Decode a stream fed one byte per read, then closed."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(len(stream)):
        events += decoder.feed(stream[i : i + 1])
    return events + decoder.close()


def decode_data_lane(stream: bytes) -> list[ServerSentEvent]:
    """Decode with ``feed`` and ``feed_data`` side by side in 7-byte reads; check they agree."""
    by_event, by_data = SSEDecoder(), SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(0, len(stream), 7):
        read = stream[i : i + 7]
        expected, items = by_event.feed(read), by_data.feed_data(read)
        assert len(items) == len(expected)
        for item, event in zip(items, expected, strict=True):
            if type(item) is bytes:
                # A data-lane event: its data as sent, type "message", the run's id.
                assert event == sse(item.decode("utf-8", "replace"), id=event.id, retry=event.retry)
                assert event.id == by_data.last_event_id
            else:
                assert item == event
        events += expected
    assert by_data.retry == by_event.retry
    return events + by_event.close()


@pytest.fixture(
    params=[decode_whole, decode_bytewise, decode_data_lane], ids=["whole", "bytewise", "data"]
)
def decode(request: pytest.FixtureRequest) -> Decode:
    """Each way of splitting the stream into reads."""
    fn: Decode = request.param
    return fn


def sse(
    data: str, event: str = "message", id: str = "", retry: int | None = None
) -> ServerSentEvent:
    """An expected event, with the spec's defaults."""
    return ServerSentEvent(data=data, event=event, id=id, retry=retry)


# --- the spec's own examples (HTML Living Standard 9.2.6) ---------------------------------


def test_spec_example_multiline_data_yhoo(decode: Decode) -> None:
    assert decode(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [sse("YHOO\n+2\n10")]


def test_spec_example_comment_and_ids(decode: Decode) -> None:
    stream = (
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    assert decode(stream) == [
        sse("first event", id="1"),
        sse("second event", id=""),
        sse(" third event", id=""),
    ]


def test_spec_example_empty_data_and_discarded_last_block(decode: Decode) -> None:
    assert decode(b"data\n\ndata\ndata\n\ndata:") == [sse(""), sse("\n")]


def test_spec_example_space_after_colon_is_optional(decode: Decode) -> None:
    assert decode(b"data:test\n\ndata: test\n\n") == [sse("test"), sse("test")]


def test_spec_example_event_types(decode: Decode) -> None:
    stream = (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
    )
    assert decode(stream) == [
        sse("73857293", event="add"),
        sse("2153", event="remove"),
        sse("113411", event="add"),
    ]


# --- line ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_each_line_end(decode: Decode, eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(stream) == [sse("a\nb"), sse("c")]


def test_mixed_line_ends(decode: Decode) -> None:
    assert decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [sse("a\nb\nc")]


def test_lf_cr_is_two_line_ends(decode: Decode) -> None:
    # "\n\r" is LF then CR: two line ends, so a blank line that dispatches.
    assert decode(b"data: a\n\r") == [sse("a")]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # If the LF were a second line end it would be a blank line and dispatch "a" here.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [sse("a\nb")]


def test_cr_then_empty_reads_then_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [sse("a")]


def test_cr_blank_line_dispatches_without_waiting_for_more_bytes() -> None:
    assert SSEDecoder().feed(b"data: a\r\r") == [sse("a")]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_only_cr_and_lf_end_lines(decode: Decode, char: str) -> None:
    assert decode(f"data: a{char}b\n\n".encode()) == [sse(f"a{char}b")]


# --- byte order mark ----------------------------------------------------------------------


def test_bom_at_start_is_dropped(decode: Decode) -> None:
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == [sse("x")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_bom_split_across_reads_is_dropped(cut: int) -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == [sse("x")]


def test_bom_first_byte_alone_then_rest() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb\xbfdata: x\n\n") == [sse("x")]


def test_only_one_bom_is_dropped(decode: Decode) -> None:
    # The second BOM makes the first line's field name "\ufeffdata": an unknown field.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [sse("y")]


def test_bom_after_start_is_data(decode: Decode) -> None:
    assert decode(b"data: x\n\ndata: \xef\xbb\xbfy\n\n") == [sse("x"), sse("\ufeffy")]


def test_bom_prefix_that_is_not_a_bom_is_kept(decode: Decode) -> None:
    # EF BB then a non-BF byte: not a BOM, so it is part of the first line (an unknown field).
    assert decode(b"\xef\xbb\n\ndata: x\n\n") == [sse("x")]


# --- fields -------------------------------------------------------------------------------


def test_comment_lines_are_ignored(decode: Decode) -> None:
    assert decode(b":hello\ndata: a\n: data: b\ndata: c\n:\n\n") == [sse("a\nc")]


def test_only_one_space_after_colon_is_stripped(decode: Decode) -> None:
    assert decode(b"data:   x  \n\n") == [sse("  x  ")]


def test_split_at_first_colon_only(decode: Decode) -> None:
    assert decode(b"data: a: b:c\n\n") == [sse("a: b:c")]


def test_line_without_colon_is_field_with_empty_value(decode: Decode) -> None:
    assert decode(b"data\ndata\n\n") == [sse("\n")]


def test_field_names_are_case_sensitive(decode: Decode) -> None:
    assert decode(b"Data: a\nDATA: b\ndata : c\n\n") == []


def test_unknown_fields_are_ignored(decode: Decode) -> None:
    assert decode(b"foo: bar\ndata: x\nbaz\n\n") == [sse("x")]


def test_one_trailing_newline_is_removed_from_data(decode: Decode) -> None:
    assert decode(b"data: a\ndata:\n\n") == [sse("a\n")]


def test_empty_event_type_means_message(decode: Decode) -> None:
    assert decode(b"event:\ndata: x\n\n") == [sse("x")]


def test_last_event_field_wins(decode: Decode) -> None:
    assert decode(b"event: a\nevent: b\ndata: x\n\n") == [sse("x", event="b")]


# --- id -----------------------------------------------------------------------------------


def test_id_persists_across_events(decode: Decode) -> None:
    assert decode(b"id: 7\ndata: a\n\ndata: b\n\n") == [sse("a", id="7"), sse("b", id="7")]


def test_id_with_nul_is_ignored(decode: Decode) -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert decode(stream) == [sse("a", id="1"), sse("b", id="1")]


def test_empty_id_resets_last_event_id(decode: Decode) -> None:
    assert decode(b"id: 1\ndata: a\n\nid:\ndata: b\n\n") == [sse("a", id="1"), sse("b", id="")]


def test_id_only_block_sets_last_event_id_without_an_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 5\n\n") == []
    assert decoder.last_event_id == "5"
    assert decoder.feed(b"data: x\n\n") == [sse("x", id="5")]


def test_last_event_id_is_set_at_the_blank_line_not_before() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\ndata: a\n\nid: 2\n")
    assert decoder.last_event_id == "1"
    decoder.feed(b"\n")
    assert decoder.last_event_id == "2"


def test_last_event_id_starts_empty() -> None:
    assert SSEDecoder().last_event_id == ""


# --- retry --------------------------------------------------------------------------------


def test_retry_sets_reconnection_time_immediately() -> None:
    decoder = SSEDecoder()
    assert decoder.retry is None
    assert decoder.feed(b"retry: 1500\n") == []
    assert decoder.retry == 1500
    assert decoder.feed(b"data: x\n\n") == [sse("x", retry=1500)]


def test_retry_persists_across_events(decode: Decode) -> None:
    stream = b"retry: 10\ndata: a\n\ndata: b\n\nretry: 20\ndata: c\n\n"
    assert decode(stream) == [sse("a", retry=10), sse("b", retry=10), sse("c", retry=20)]


@pytest.mark.parametrize(
    "value",
    [b"10a", b"-1", b"1.5", b"", b" 10", b"+10", b"1e3", b"\xd9\xa3", b"\xc2\xb2", b"0x10"],
    ids=repr,
)
def test_retry_that_is_not_ascii_digits_is_ignored(decode: Decode, value: bytes) -> None:
    stream = b"retry: 7\n\nretry: " + value + b"\ndata: x\n\n"
    assert decode(stream) == [sse("x", retry=7)]


def test_retry_with_leading_zeros(decode: Decode) -> None:
    assert decode(b"retry: 0010\ndata: x\n\n") == [sse("x", retry=10)]


def test_retry_zero(decode: Decode) -> None:
    assert decode(b"retry:0\ndata: x\n\n") == [sse("x", retry=0)]


def test_retry_too_long_for_int_is_ignored_without_raising() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 5\nretry: " + b"9" * 10_000 + b"\ndata: x\n\n")
    assert decoder.retry == 5


def test_retry_with_many_leading_zeros_is_still_a_number() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: " + b"0" * 10_000 + b"42\n")
    assert decoder.retry == 42


def test_retry_only_block_is_not_an_event(decode: Decode) -> None:
    assert decode(b"retry: 100\n\n") == []


# --- dispatch -----------------------------------------------------------------------------


def test_event_only_block_is_not_an_event_and_does_not_leak(decode: Decode) -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [sse("x")]


def test_blank_lines_without_data_dispatch_nothing(decode: Decode) -> None:
    assert decode(b"\n\n\r\n\r\r\ndata: x\n\n\n\n") == [sse("x")]


def test_unfinished_event_is_discarded_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [sse("a")]
    assert decoder.close() == []


def test_unterminated_line_is_discarded_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [sse("a")]
    assert decoder.close() == []


def test_event_split_across_reads_at_every_point() -> None:
    stream = b"event: e\nid: 1\nretry: 3\ndata: a\ndata: b\n\n"
    for cut in range(len(stream) + 1):
        decoder = SSEDecoder()
        events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert events == [sse("a\nb", event="e", id="1", retry=3)], cut


def test_many_events_in_one_read(decode: Decode) -> None:
    stream = b"".join(b"data: %d\n\n" % i for i in range(100))
    assert decode(stream) == [sse(str(i)) for i in range(100)]


@pytest.mark.parametrize(
    ("irregular", "expected", "id_after"),
    [
        (b"data: a\ndata: b\n\n", [sse("a\nb")], ""),
        (b"data: a\ndata: b\ndata: c\n\n", [sse("a\nb\nc")], ""),
        (b"id: 1\ndata: a\n\n", [sse("a", id="1")], "1"),
        (b"event: e\ndata: a\n\n", [sse("a", event="e")], ""),
        (b"retry: 9\ndata: a\n\n", [sse("a", retry=9)], ""),
        (b": c\ndata: a\n\n", [sse("a")], ""),
        (b"data:a\n\n\n", [sse("a")], ""),
        (b"datum: a\n\n", [], ""),
    ],
    ids=[
        "two-lines",
        "three-lines",
        "id",
        "event",
        "retry",
        "comment",
        "extra-blank",
        "unknown-field",
    ],
)
def test_one_irregular_event_among_many_regular_ones(
    decode: Decode, irregular: bytes, expected: list[ServerSentEvent], id_after: str
) -> None:
    # Reads full of "data: X\n\n" events are decoded in bulk; one odd event must not fool it.
    before = b"".join(b"data: b%d\n\n" % i for i in range(10))
    after = b"".join(b"data: a%d\n\n" % i for i in range(10))
    retry_after = next((e.retry for e in expected if e.retry is not None), None)
    assert decode(before + irregular + after) == [
        *(sse(f"b{i}") for i in range(10)),
        *expected,
        *(sse(f"a{i}", id=id_after, retry=retry_after) for i in range(10)),
    ]


def test_id_and_retry_from_an_earlier_read_apply_to_a_bulk_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nretry: 5\n\n") == []
    events = decoder.feed(b"".join(b"data: %d\n\n" % i for i in range(20)))
    assert events == [sse(str(i), id="7", retry=5) for i in range(20)]
    assert decoder.last_event_id == "7"


def test_data_lane_hands_over_a_token_run_as_the_bytes_sent() -> None:
    decoder = SSEDecoder()
    stream = b'data: {"a":1}\n\ndata: caf\xc3\xa9\n\ndata: \xff\n\ndata: \n\n'
    assert decoder.feed_data(stream) == [b'{"a":1}', b"caf\xc3\xa9", b"\xff", b""]


def test_data_lane_hands_over_other_events_as_events() -> None:
    decoder = SSEDecoder()
    stream = b"data: a\n\nevent: e\ndata: b\n\n: ping\n\nid: 3\ndata: d\n\n"
    assert decoder.feed_data(stream) == [sse("a"), sse("b", event="e"), sse("d", id="3")]
    assert decoder.feed_data(b"data: x\n") == []
    # The event begun in the last read ends on the general path, the run after it in bulk.
    assert decoder.feed_data(b"\ndata: y\n\ndata: z\n\n") == [sse("x", id="3"), b"y", b"z"]
    assert decoder.last_event_id == "3"


def test_event_started_in_one_read_finished_in_the_next_then_more_events() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: e\ndata: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c\n\n") == [sse("a", event="e"), sse("b"), sse("c")]


# --- text decoding ------------------------------------------------------------------------


def test_invalid_utf8_becomes_replacement_character(decode: Decode) -> None:
    assert decode(b"data: a\xffb\xc3\n\n") == [sse("a\ufffdb\ufffd")]


def test_invalid_utf8_in_field_name_makes_an_unknown_field(decode: Decode) -> None:
    assert decode(b"da\xffta: x\ndata: y\n\n") == [sse("y")]


def test_multibyte_character_split_across_reads_decodes_intact() -> None:
    stream = "data: h\u00e9llo \u20ac \U0001f600\n\n".encode()
    for cut in range(len(stream) + 1):
        decoder = SSEDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == [
            sse("h\u00e9llo \u20ac \U0001f600")
        ], cut


def test_truncated_multibyte_character_before_line_end(decode: Decode) -> None:
    assert decode(b"data: \xe2\x82\ndata: \xf0\x9f\x98\n\n") == [sse("\ufffd\n\ufffd")]


def test_nul_in_data_is_kept(decode: Decode) -> None:
    assert decode(b"data: a\x00b\n\n") == [sse("a\x00b")]


# --- the decoder's lifecycle and inputs ---------------------------------------------------


def test_feed_after_close_raises() -> None:
    decoder = SSEDecoder()
    decoder.close()
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(b"data: x\n\n")


def test_empty_feed_returns_nothing() -> None:
    assert SSEDecoder().feed(b"") == []


def test_bytearray_input_is_copied_before_the_caller_reuses_it() -> None:
    decoder = SSEDecoder()
    buffer = bytearray(b"data: abc")
    assert decoder.feed(buffer) == []
    buffer[:] = b"XXXXXXXXX"
    assert decoder.feed(b"\n\n") == [sse("abc")]


def test_event_defaults_repr_and_equality() -> None:
    event = ServerSentEvent(data="x")
    assert (event.event, event.data, event.id, event.retry) == ("message", "x", "", None)
    assert event == ServerSentEvent("x", "message", "", None)
    assert event != ServerSentEvent("x", "other")
    assert repr(event) == "ServerSentEvent(data='x', event='message', id='', retry=None)"
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


# --- encoder ------------------------------------------------------------------------------


def test_encode_data_only() -> None:
    assert encode_event("hello") == b"data: hello\n\n"


def test_encode_all_fields_in_order() -> None:
    encoded = encode_event("x", event="e", id="7", retry=1000)
    assert encoded == b"event: e\nid: 7\nretry: 1000\ndata: x\n\n"


def test_encode_bytes_data() -> None:
    assert encode_event(b"caf\xc3\xa9") == "data: caf\u00e9\n\n".encode()


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb"], ids=["LF", "CRLF", "CR"])
def test_encode_multiline_data_one_field_per_line(text: str) -> None:
    assert encode_event(text) == b"data: a\ndata: b\n\n"
    assert decode_whole(encode_event(text)) == [sse("a\nb")]


def test_encode_trailing_newline_survives_decoding() -> None:
    assert decode_whole(encode_event("a\n")) == [sse("a\n")]


def test_encode_empty_data_is_an_event() -> None:
    assert encode_event("") == b"data: \n\n"
    assert decode_whole(encode_event("")) == [sse("")]


def test_encode_without_data_is_not_an_event() -> None:
    assert encode_event(event="e", id="1") == b"event: e\nid: 1\n\n"
    assert decode_whole(encode_event(event="e", id="1")) == []


def test_encode_leading_space_in_data_is_kept() -> None:
    assert decode_whole(encode_event(" x")) == [sse(" x")]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb"], ids=["LF", "CR", "CRLF"])
def test_encode_rejects_line_break_in_event_and_id(value: str) -> None:
    with pytest.raises(ValueError, match="single line"):
        encode_event("x", event=value)
    with pytest.raises(ValueError, match="single line"):
        encode_event("x", id=value)


def test_encode_rejects_nul_in_id() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_event("x", id="a\0b")


def test_encode_rejects_negative_retry() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        encode_event("x", retry=-1)


def test_encode_comment() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    assert decode_whole(encode_comment("keep-alive") + encode_event("x")) == [sse("x")]


def test_encode_comment_rejects_line_break() -> None:
    with pytest.raises(ValueError, match="single line"):
        encode_comment("a\nb")
