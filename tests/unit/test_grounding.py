"""Citation items and odd shapes: read what is there, keep everything, never fail a chunk."""

from __future__ import annotations

import msgspec

from gloo_stream.accumulate import StreamAccumulator
from gloo_stream.grounding import Citation, citations_event, is_grounded
from gloo_stream.wire import decode_chunk


def test_alternative_field_names_are_read_and_raw_is_whole() -> None:
    item = {"name": "T", "link": "https://x.test/a", "text": "S", "source": "P", "extra": [1]}
    citation = Citation.from_raw(item)
    assert (citation.title, citation.url, citation.snippet, citation.publisher) == (
        "T",
        "https://x.test/a",
        "S",
        "P",
    )
    assert citation.raw == item
    assert Citation.from_raw({"content": "C"}).snippet == "C"
    assert Citation.from_raw({}).title is None
    assert Citation.from_raw("just text") == Citation(snippet="just text")


def test_odd_types_never_make_a_chunk_undecodable() -> None:
    chunk = decode_chunk(
        b'{"choices":[{"delta":{"content":"a","reasoning":{"x":1}}}],'
        b'"citations":"not a list","sources_returned":"yes"}'
    )
    assert chunk.content == "a"
    assert chunk.reasoning == ""
    assert chunk.citation_items is None
    acc = StreamAccumulator(started_at=0.0)
    acc.add(chunk, 1.0)
    result = acc.result(2.0)
    assert result.citations == [] and result.sources_returned is None and result.text == "a"


def test_first_citations_win_and_reasoning_on_a_text_chunk_is_kept() -> None:
    acc = StreamAccumulator(started_at=0.0)
    acc.add(decode_chunk(b'{"citations":[{"title":"one"}],"sources_returned":true}'), 0.1)
    acc.add(decode_chunk(b'{"choices":[],"sources":[{"title":"two"}]}'), 0.2)
    # vLLM sends the last of the thinking and the first of the answer in one delta.
    acc.add(decode_chunk(b'{"choices":[{"delta":{"content":"Hi","reasoning_content":"hm"}}]}'), 0.3)
    result = acc.result(1.0)
    assert [c.title for c in result.citations] == ["one"]
    assert result.sources_returned is True
    assert (result.text, result.reasoning) == ("Hi", "hm")
    assert result.ttft_ms == result.reasoning_ttft_ms == 300.0
    assert result.to_dict()["citations"][0]["title"] == "one"


def test_contract_event_has_one_empty_choice() -> None:
    frame = citations_event([{"title": "t"}], None, chunk_id="c1", created=5, model="m")
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    data = msgspec.json.decode(frame[6:])
    assert data["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    ]
    assert (data["id"], data["created"], data["model"]) == ("c1", 5, "m")
    assert data["citations"] == [{"title": "t"}] and data["sources_returned"] is True


def test_what_counts_as_grounded() -> None:
    assert is_grounded({"rag_publisher": "P"})
    assert is_grounded({"sources_limit": 2})
    assert is_grounded({"include_citations": True})
    assert not is_grounded({"include_citations": False, "parallel_tool_calls": True})
