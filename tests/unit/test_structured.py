"""Structured output: response_format, the JSON answer as it grows, and the parse at its end."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from gloo_stream.accumulate import OutputParseError, StreamResult
from gloo_stream.errors import InvalidRequestError
from gloo_stream.events import CallComplete, CallDelta, CallTracker, TextDelta
from gloo_stream.structured import PartialJson, ResponseFormat, json_text, with_parsed
from gloo_stream.wire import decode_chunk


class Verse(BaseModel):
    book: str
    chapter: int


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


def test_a_pydantic_model_is_sent_as_its_json_schema() -> None:
    fmt = ResponseFormat(Verse)
    assert fmt.body["type"] == "json_schema"
    assert fmt.body["json_schema"]["name"] == "Verse"
    assert fmt.body["json_schema"]["schema"]["required"] == ["book", "chapter"]
    assert ResponseFormat({"type": "json_object"}).body == {"type": "json_object"}
    with pytest.raises(InvalidRequestError, match="response_format"):
        ResponseFormat("json")


def test_parsed_is_the_model_or_a_clear_error() -> None:
    fmt = ResponseFormat(Verse)
    good = with_parsed(StreamResult(text='{"book": "John", "chapter": 3}'), fmt)
    assert good.parsed == Verse(book="John", chapter=3)
    cut = with_parsed(StreamResult(text='{"book": "Jo'), fmt)
    with pytest.raises(OutputParseError, match=r"not valid JSON.*cut off"):
        _ = cut.parsed
    wrong = with_parsed(StreamResult(text='{"book": "John", "chapter": "three"}'), fmt)
    with pytest.raises(OutputParseError, match="does not match Verse: chapter"):
        _ = wrong.parsed
    assert wrong.to_dict()["parse_error"].startswith("the answer does not match Verse")
    assert good.to_dict()["parsed_value"] == {"book": "John", "chapter": 3}


def test_a_fenced_json_answer_is_read() -> None:
    assert json_text('```json\n{"a": 1}\n```') == '{"a": 1}'
    fmt = ResponseFormat({"type": "json_object"})
    assert with_parsed(StreamResult(text='```json\n{"a": 1}\n```'), fmt).parsed == {"a": 1}


def grow(text: str, cuts: list[int]) -> list[Any]:
    reader = PartialJson()
    seen = []
    points = sorted({c % (len(text) + 1) for c in cuts} | {len(text)})
    start = 0
    for point in points:
        changed, value = reader.feed(text[start:point])
        start = point
        if changed:
            seen.append(value)
    return seen


@given(value=JSON, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_partial_json_ends_with_the_whole_value_and_never_repeats(
    value: Any, cuts: list[int]
) -> None:
    text = json.dumps(value, ensure_ascii=False)
    seen = grow(text, cuts)
    assert seen[-1] == value
    assert all(a != b for a, b in itertools.pairwise(seen))


def test_partial_json_grows_strings_and_numbers() -> None:
    pieces = ['{"ti', 'tle": "Gr', 'ace", "n', '": 12', "3", "}"]
    reader = PartialJson()
    values = [reader.feed(p) for p in pieces]
    assert values[1] == (True, {"title": "Gr"})
    assert values[2] == (True, {"title": "Grace"})
    assert values[3] == (True, {"title": "Grace", "n": 12})
    assert values[4] == (True, {"title": "Grace", "n": 123})
    assert values[5] == (False, None)  # closing the object changed nothing


def test_call_tracker_names_every_delta_and_completes_each_call() -> None:
    def chunk(delta: dict[str, Any]) -> Any:
        return decode_chunk(json.dumps({"choices": [{"index": 0, "delta": delta}]}))

    tracker = CallTracker()
    first = tracker.events(
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]})
    )
    second = tracker.events(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    text = tracker.events(chunk({"content": "hi"}))
    assert first == [CallDelta(0, "c", "f", "")]
    assert second == [CallDelta(0, "c", "f", "{}")]
    assert second[0].to_dict() == {
        "type": "tool_call",
        "index": 0,
        "id": "c",
        "name": "f",
        "arguments_delta": "{}",
    }
    assert text == [TextDelta("hi")]
    from gloo_stream.accumulate import ToolCall

    [done] = CallTracker.completed(
        StreamResult(tool_calls=[ToolCall(index=0, id="c", name="f", arguments='{"a":')])
    )
    assert isinstance(done, CallComplete)
    as_dict = done.to_dict()
    assert as_dict["valid"] is False and "not valid JSON" in as_dict["error"]
