"""Function tools: schemas from signatures, argument checks, and the tool loop's decisions."""

from __future__ import annotations

import enum
import keyword
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from gloo_stream.accumulate import StreamResult, ToolCall
from gloo_stream.errors import InvalidRequestError
from gloo_stream.tools import (
    DECLINED,
    RunCalls,
    Stop,
    ToolLoop,
    ToolRoundsExceededError,
    ToolSet,
    function_tool,
    prepare,
    result_content,
    tool_result,
)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str | None = None


def get_weather(
    city: Annotated[str, "The city, e.g. Paris"],
    unit: Unit = Unit.CELSIUS,
    days: Annotated[int, Field(description="How many days", ge=1)] = 1,
) -> str:
    """The weather forecast for a city.

    Longer notes that the model does not need.
    """
    return f"{city} {unit.value} {days}"


def everything(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    items: list[str],
    mapping: dict[str, int],
    mode: Literal["fast", "slow"],
    maybe: str | None,
    place: Place,
) -> None:
    """All the kinds."""


def test_schema_from_signature_types_and_descriptions() -> None:
    spec = function_tool(get_weather).to_dict()
    assert spec["type"] == "function"
    function = spec["function"]
    assert function["name"] == "get_weather"
    assert function["description"] == "The weather forecast for a city."
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert parameters["required"] == ["city"]
    props = parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city, e.g. Paris"}
    assert props["days"]["description"] == "How many days"
    assert props["days"]["minimum"] == 1
    assert props["days"]["default"] == 1
    assert parameters["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]
    assert "title" not in parameters and "title" not in props["city"]


def test_schema_covers_every_kind() -> None:
    props = function_tool(everything).parameters["properties"]
    assert props["text"]["type"] == "string"
    assert props["count"]["type"] == "integer"
    assert props["ratio"]["type"] == "number"
    assert props["flag"]["type"] == "boolean"
    assert props["items"] == {"type": "array", "items": {"type": "string"}}
    assert props["mapping"]["type"] == "object"
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert {"type": "null"} in props["maybe"]["anyOf"]
    assert props["place"] == {"$ref": "#/$defs/Place"}
    place = function_tool(everything).parameters["$defs"]["Place"]
    assert place["required"] == ["city"]


def test_a_property_named_title_is_kept() -> None:
    def note(title: str) -> str:
        return title

    assert "title" in function_tool(note).parameters["properties"]


def test_arguments_are_checked_and_converted() -> None:
    tool = function_tool(get_weather)
    call = ToolCall(
        index=0, id="c1", name="get_weather", arguments='{"city":"Oslo","unit":"fahrenheit"}'
    )
    assert tool.arguments(call) == {"city": "Oslo", "unit": Unit.FAHRENHEIT, "days": 1}
    with pytest.raises(ValueError, match="days"):
        tool.arguments(ToolCall(index=0, name="get_weather", arguments='{"city":"x","days":0}'))
    with pytest.raises(ValueError, match="city"):
        tool.arguments(ToolCall(index=0, name="get_weather", arguments="{}"))
    with pytest.raises(ValueError, match="not valid JSON"):
        tool.arguments(ToolCall(index=0, name="get_weather", arguments='{"city": "Os'))
    models = function_tool(everything).arguments(
        ToolCall(
            index=0,
            name="everything",
            arguments='{"text":"t","count":1,"ratio":0.5,"flag":true,"items":[],"mapping":{},'
            '"mode":"fast","maybe":null,"place":{"city":"Rome"}}',
        )
    )
    assert models["place"] == Place(city="Rome")


def test_functions_that_cannot_be_described_are_refused_clearly() -> None:
    def star(*args: int) -> None:
        """No."""

    with pytest.raises(InvalidRequestError, match=r"\*args"):
        function_tool(star)
    with pytest.raises(InvalidRequestError, match="two tools are named get_weather"):
        ToolSet([get_weather, get_weather])


@given(
    names=st.lists(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
            lambda n: not keyword.iskeyword(n) and not n.startswith("model_")
        ),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    kinds=st.lists(st.sampled_from([str, int, float, bool]), min_size=5, max_size=5),
    defaults=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_any_signature_gives_its_parameters_and_required_ones(
    names: list[str], kinds: list[type], defaults: list[bool]
) -> None:
    # Defaults only after the required ones, as Python requires.
    order = sorted(range(len(names)), key=lambda i: defaults[i])
    params = [names[i] for i in order]
    has_default = {names[i]: defaults[i] for i in order}
    annotations = {name: kinds[i] for i, name in enumerate(params)}
    source = ", ".join(f"{n}=None" if has_default[n] else n for n in params)
    scope: dict[str, Any] = {}
    exec(f"def f({source}):\n    '''Made up.'''\n", scope)
    scope["f"].__annotations__ = annotations
    schema = function_tool(scope["f"]).parameters
    assert list(schema["properties"]) == params
    assert schema.get("required", []) == [n for n in params if not has_default[n]]
    kind_names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    for name in params:
        assert schema["properties"][name]["type"] == kind_names[annotations[name]]


def test_result_content() -> None:
    assert result_content("plain") == "plain"
    assert result_content({"a": 1, "b": "é"}) == '{"a": 1, "b": "é"}'
    assert result_content(Place(city="Rome")) == '{"city":"Rome","country":null}'


# -- the loop's decisions --------------------------------------------------------------------


def call(
    arguments: str = '{"city":"Paris"}', name: str = "get_weather", index: int = 0
) -> ToolCall:
    return ToolCall(index=index, id=f"call_{index}", name=name, arguments=arguments)


def answer(*calls: ToolCall, finish: str | None = "tool_calls") -> StreamResult:
    return StreamResult(text="", finish_reason=finish, tool_calls=list(calls))


def loop(max_rounds: int = 5) -> ToolLoop:
    body = {"messages": [{"role": "user", "content": "weather?"}], "stream": True}
    return ToolLoop(body, ToolSet([get_weather]), max_rounds)


def test_a_whole_call_is_run_and_the_next_body_carries_call_and_result() -> None:
    tl = loop()
    decision = tl.after_answer(answer(call()))
    assert isinstance(decision, RunCalls)
    [(the_call, tool)] = decision.calls
    assert tool.name == "get_weather"
    outcome = tool_result(the_call, {"city": "Paris"}, value="sunny")
    body = tl.next_body([outcome])
    assert body["messages"][-2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert body["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}
    final = tl.after_answer(StreamResult(text="It is sunny.", finish_reason="stop"))
    assert isinstance(final, Stop)
    assert final.result.text == "It is sunny."
    assert [r.content for r in final.result.tool_results] == ["sunny"]


@pytest.mark.parametrize("finish", ["length", None, "stop"])
def test_a_call_without_finish_reason_tool_calls_is_never_run(finish: str | None) -> None:
    decision = loop().after_answer(answer(call(), finish=finish))
    assert isinstance(decision, Stop)
    assert decision.result.error is not None
    assert "not run" in decision.result.error


def test_a_call_with_invalid_json_arguments_is_reported_not_run() -> None:
    broken = call('{"city": "Par')
    assert broken.arguments_error is not None
    decision = loop().after_answer(answer(broken))
    assert isinstance(decision, Stop)
    assert "not valid JSON" in (decision.result.error or "")


def test_calls_to_dict_tools_are_returned_not_run() -> None:
    decision = loop().after_answer(answer(call(name="lookup")))
    assert isinstance(decision, Stop)
    assert decision.result.error is None
    assert decision.result.tool_calls[0].name == "lookup"


def test_max_tool_rounds_ends_with_the_partial_answer() -> None:
    tl = loop(max_rounds=1)
    first = tl.after_answer(answer(call()))
    assert isinstance(first, RunCalls)
    tl.next_body([tool_result(first.calls[0][0], {"city": "Paris"}, value="sunny")])
    with pytest.raises(ToolRoundsExceededError, match="max_tool_rounds=1") as caught:
        tl.after_answer(answer(call()))
    assert [r.content for r in caught.value.partial.tool_results] == ["sunny"]


@pytest.mark.parametrize("bad", [0, -1, True, "3"])
def test_max_tool_rounds_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match="max_tool_rounds"):
        loop(max_rounds=bad)


def test_prepare_reports_bad_arguments_and_declined_calls() -> None:
    tool = function_tool(get_weather)
    bad = prepare(call("{}"), tool, None)
    assert not isinstance(bad, dict)
    assert bad.error is not None and "city" in bad.error
    assert bad.content.startswith("Error: invalid arguments")
    declined = prepare(call(), tool, lambda c: False)
    assert not isinstance(declined, dict)
    assert declined.error == DECLINED == declined.content
    assert prepare(call(), tool, lambda c: True) == {
        "city": "Paris",
        "unit": Unit.CELSIUS,
        "days": 1,
    }


def test_an_exception_is_told_to_the_model_by_type_and_words() -> None:
    outcome = tool_result(call(), {"city": "Paris"}, error=KeyError("no such city"))
    assert outcome.error == "KeyError: 'no such city'"
    assert outcome.content == "Error: KeyError: 'no such city'"
