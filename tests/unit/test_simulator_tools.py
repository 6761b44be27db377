"""The simulator's tool calls and JSON answers, decided from the request body (sans-IO)."""

from __future__ import annotations

import json
from typing import Any

from gloo_stream.simulator.json_answers import json_answer, json_fragments
from gloo_stream.simulator.toolcalls import asked_tools, tool_answer, tool_calls_for, wants_tools


def tool(name: str, **properties: Any) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties}
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def body(prompt: str, *tools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "tools": list(tools), **extra}


WEATHER = tool("get_weather", city={"type": "string"})
COUNT = tool("word_count", text={"type": "string"})


def test_a_prompt_naming_tools_gets_one_call_each_in_parallel() -> None:
    request = body("get weather and word count please", WEATHER, COUNT)
    assert wants_tools(request)
    calls = tool_calls_for(request, None)
    assert [c["function"]["name"] for c in calls] == ["get_weather", "word_count"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert len({c["id"] for c in calls}) == 2


def test_weather_asks_the_weather_tool_and_other_prompts_ask_nothing() -> None:
    assert [t["function"]["name"] for t in asked_tools(body("Weather?", COUNT, WEATHER))] == [
        "get_weather"
    ]
    assert not wants_tools(body("Tell me a story", WEATHER))
    assert not wants_tools(body("weather", WEATHER, tool_choice="none"))
    assert wants_tools(body("Tell me a story", WEATHER, tool_choice="required"))


def test_after_tool_results_it_answers_with_them() -> None:
    request = body("weather in Paris?", WEATHER)
    request["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert not wants_tools(request)
    assert tool_answer(request) == "Thanks for waiting: get_weather said sunny."
    assert tool_answer(body("weather", WEATHER)) is None


def test_json_answers_follow_the_schema_and_stream_in_small_pieces() -> None:
    schema = {
        "type": "object",
        "properties": {
            "book": {"type": "string"},
            "chapter": {"type": "integer"},
            "mood": {"$ref": "#/$defs/Mood"},
            "verses": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["book", "chapter"],
        "$defs": {"Mood": {"enum": ["hopeful", "sad"]}},
    }
    request = {
        "response_format": {"type": "json_schema", "json_schema": {"name": "V", "schema": schema}}
    }
    text = json_answer(request, "a verse")
    assert text is not None
    value = json.loads(text)
    assert value == {
        "book": "book from the simulator, café",
        "chapter": 3,
        "mood": "hopeful",
        "verses": [3, 3],
    }
    pieces = json_fragments(text)
    assert "".join(pieces) == text
    assert max(len(p) for p in pieces) <= 4
    assert json.loads(json_answer({"response_format": {"type": "json_object"}}, "hi") or "") == {
        "answer": "hi",
        "confidence": 0.9,
        "tags": ["sim"],
    }
    assert json_answer({}, "hi") is None
