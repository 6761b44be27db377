"""The continuation core: when a cut answer is continued, what is asked, and the seam's splice."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gloo_stream.accumulate import StreamResult, ToolCall
from gloo_stream.continuation import (
    MAX_OVERLAP,
    MIN_OVERLAP,
    NO_TEXT,
    AnswerParts,
    ChunkSplicer,
    Seam,
    SeamSplicer,
    continuation_body,
    not_continued_because,
    seam_reason,
    splice,
)
from gloo_stream.errors import (
    ContentFilterError,
    MalformedChunkError,
    StreamDisconnectedError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.wire import Usage, decode_chunk

TEXT = st.text(alphabet="abcdefgh ,.\n", min_size=0, max_size=120)


def cut(kind: type, text: str = "Some text", **partial: object) -> object:
    return kind("cut", partial=StreamResult(text=text, interrupted=True, **partial))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (StreamDisconnectedError, "disconnected"),
        (StreamTimeoutError, "timeout"),
        (TruncatedStreamError, "truncated"),
        (UpstreamStreamError, "upstream_error"),
    ],
)
def test_the_four_cut_styles_are_continued_after_text(kind: type, reason: str) -> None:
    error = cut(kind)
    assert seam_reason(error) == reason  # type: ignore[arg-type]
    assert not_continued_because(error, "Some text") is None  # type: ignore[arg-type]
    assert not_continued_because(error, "") == NO_TEXT  # type: ignore[arg-type]


def test_a_content_filter_a_tool_call_and_a_bad_chunk_are_never_continued() -> None:
    assert "content_filter" in not_continued_because(cut(ContentFilterError), "x")  # type: ignore[arg-type,operator]
    tool = cut(StreamDisconnectedError, tool_calls=[ToolCall(index=0, name="f")])
    assert "tool call" in not_continued_because(tool, "x")  # type: ignore[arg-type,operator]
    assert not_continued_because(cut(MalformedChunkError), "x") is not None  # type: ignore[arg-type]


def test_the_continuation_request_is_the_same_body_plus_the_text_and_the_instruction() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    out = continuation_body(body, "Half an ans", "Go on.")
    assert out["model"] == "m" and out["stream"] is True
    assert out["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Half an ans"},
        {"role": "user", "content": "Go on."},
    ]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]  # not changed in place
    prefill = continuation_body(body, "Half", "")
    assert prefill["messages"][-1] == {"role": "assistant", "content": "Half"}


def test_a_repeat_of_the_last_words_is_removed_once() -> None:
    old = "Streaming shows each token as soon as it"
    assert splice(old, " as soon as it exists.") == old + " exists."


def test_a_short_legit_repeat_is_kept() -> None:
    assert splice("She sat on the", " the mat.") == "She sat on the the mat."


def test_a_repeat_starting_inside_a_word_is_not_a_repeat() -> None:
    # "ormation about" is a suffix of old and a prefix of new, but starts mid-word.
    assert splice("information about", "ormation about x") == "information aboutormation about x"


@given(TEXT, TEXT, st.lists(st.integers(1, 20), max_size=30))
def test_streaming_gives_the_same_text_however_the_new_text_arrives(
    old: str, new: str, cuts: list[int]
) -> None:
    splicer = SeamSplicer(old)
    shown, at = [], 0
    for size in cuts:
        shown.append(splicer.feed(new[at : at + size]))
        at += size
    shown.append(splicer.feed(new[at:]))
    shown.append(splicer.flush())
    assert old + "".join(shown) == splice(old, new)


@given(TEXT, TEXT)
def test_the_splice_only_ever_removes_a_real_bounded_repeat(old: str, new: str) -> None:
    out = splice(old, new)
    assert out.startswith(old)
    removed = len(old) + len(new) - len(out)
    assert out[len(old) :] == new[removed:]
    assert removed == 0 or (MIN_OVERLAP <= removed <= MAX_OVERLAP and old.endswith(new[:removed]))


@given(
    st.lists(st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=8), min_size=2, max_size=30),
    st.integers(1, 6),
    TEXT,
)
def test_the_model_repeating_its_last_words_comes_out_whole(
    words: list[str], repeat_words: int, rest: str
) -> None:
    old = " ".join(words)
    repeat = " " + " ".join(words[-repeat_words:])
    assume(MIN_OVERLAP <= len(repeat) <= MAX_OVERLAP and len(repeat) < len(old))
    assume(old.find(repeat) == len(old) - len(repeat))  # the repeat is the only such run
    assert splice(old, repeat + rest) == old + rest


def test_nothing_is_held_once_it_cannot_be_a_repeat() -> None:
    splicer = SeamSplicer("the answer goes on and on")
    assert splicer.feed(" goes") == ""  # could be " goes on and on": still deciding
    assert splicer.feed(" up") == " goes up"  # no suffix of old starts like that
    assert not splicer.deciding and splicer.removed == 0


def raw(content: str | None, finish: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, object] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    return msgspec.json.encode(
        {"id": "c2", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    )


def test_the_chunk_splicer_trims_the_repeat_drops_the_opener_and_marks_the_seam() -> None:
    seam = Seam(n=1, offset=24, reason="disconnected", upstream="fallback")
    splicer = ChunkSplicer("the answer goes on and on", seam)
    chunks = [
        decode_chunk(raw("", role=True)),
        decode_chunk(raw(" goes on")),
        decode_chunk(raw(" and on")),
    ]
    assert splicer.take(chunks) == []  # all of it may still be a repeat
    out = splicer.take([decode_chunk(raw(" and then")), decode_chunk(raw(" more"))])
    assert [c.content for c in out] == [" and then", " more"]
    assert out[0].gloo_continuation == seam.to_dict()
    assert out[0].to_dict()["gloo_continuation"]["upstream"] == "fallback"
    assert out[1].gloo_continuation is None
    tail = decode_chunk(raw(None, finish="stop"))
    assert splicer.take([tail]) == [tail]  # decided: passed through untouched
    assert "".join(splicer.shown) == " and then more"


def test_a_continuation_that_only_finishes_still_marks_its_seam() -> None:
    seam = Seam(n=2, offset=5, reason="timeout", upstream="primary")
    splicer = ChunkSplicer("Hello", seam)
    assert splicer.take([decode_chunk(raw("", role=True))]) == []
    out = splicer.flush() + splicer.take([decode_chunk(raw(None, finish="stop"))])
    assert len(out) == 1 and out[0].finish_reason == "stop"
    assert out[0].gloo_continuation == seam.to_dict()


def test_the_parts_fold_into_one_result_billing_every_prompt() -> None:
    body = {"messages": [{"role": "user", "content": "one two three four"}]}
    first = StreamResult(text="Hello wor", token_count=2, interrupted=True, id="a", model="m1")
    parts = AnswerParts(first, body)
    seam = parts.seam("disconnected", "fallback", continuation_body(body, "Hello wor", "Go on"))
    assert seam == Seam(n=1, offset=9, reason="disconnected", upstream="fallback")
    last = StreamResult(
        text="ld!", token_count=2, finish_reason="stop", usage=Usage(30, 2, 32), model="m2"
    )
    parts.part_ended(last, ["ld!"])
    whole = parts.result(last, attempts=2)
    assert whole.text == "Hello world!" and whole.complete and whole.outcome == "continued"
    assert whole.id == "a" and whole.model == "m1"  # the first part's metadata
    assert whole.continuations == 1 and whole.seams == [seam] and whole.attempts == 2
    assert whole.usage is not None and whole.usage.prompt_tokens is not None
    assert whole.usage.prompt_tokens > 30  # the cut part's prompt is billed too (estimated)
    assert whole.usage.completion_tokens == 2 + 2
    assert whole.to_dict()["seams"] == [seam.to_dict()]


@pytest.mark.parametrize(
    ("result", "word"),
    [
        (StreamResult(finish_reason="stop"), "complete"),
        (StreamResult(finish_reason="stop", continuations=1), "continued"),
        (StreamResult(interrupted=True, error="disconnected"), "cut"),
        (
            StreamResult(interrupted=True, error="content_filter", finish_reason="content_filter"),
            "filtered",
        ),
        (StreamResult(interrupted=True, error="cancelled"), "cancelled"),
        (StreamResult(finish_reason="length"), "length"),
    ],
)
def test_one_outcome_word(result: StreamResult, word: str) -> None:
    assert result.outcome == word


def reasoning_raw(thought: str) -> bytes:
    return msgspec.json.encode(
        {"id": "c2", "choices": [{"index": 0, "delta": {"reasoning_content": thought}}]}
    )


def test_a_continued_reasoning_answer_keeps_every_parts_reasoning() -> None:
    body = {"messages": [{"role": "user", "content": "why?"}]}
    first = StreamResult(
        text="Because", reasoning="Think one. ", reasoning_token_count=2, interrupted=True
    )
    parts = AnswerParts(first, body)
    parts.seam("disconnected", "primary", continuation_body(body, "Because", ""))
    middle = StreamResult(text=" the", reasoning="Think two. ", reasoning_token_count=1)
    parts.part_ended(middle, [" the"])
    parts.seam("timeout", "fallback", continuation_body(body, "Because the", ""))
    last = StreamResult(
        text=" sky.", reasoning="Think three.", reasoning_token_count=3, finish_reason="stop"
    )
    parts.part_ended(last, [" sky."])
    whole = parts.result(last, attempts=3)
    assert whole.text == "Because the sky."
    assert whole.reasoning == "Think one. Think two. Think three."
    assert whole.reasoning_token_count == 6
    # A part still going (the caller left early) brings its reasoning so far too.
    going = StreamResult(text=" blue", reasoning=" More.", reasoning_token_count=1)
    early = parts.result(going, attempts=3, shown=[" blue"])
    assert early.reasoning == "Think one. Think two. Think three. More."


def test_the_chunk_splicer_hands_on_reasoning_while_it_decides_the_seam() -> None:
    seam = Seam(n=1, offset=25, reason="disconnected", upstream="primary")
    splicer = ChunkSplicer("the answer goes on and on", seam)
    thought = decode_chunk(reasoning_raw("Let me go on."))
    assert splicer.take([decode_chunk(raw("", role=True)), thought]) == []
    out = splicer.take([decode_chunk(raw(" and then"))])
    assert [c.reasoning for c in out] == ["Let me go on.", ""]
    assert [c.content for c in out] == ["", " and then"]
    assert out[0].gloo_continuation == seam.to_dict()  # the seam is marked where it starts
    assert out[1].gloo_continuation is None
