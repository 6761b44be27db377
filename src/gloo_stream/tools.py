"""Tools as Python functions: their JSON schema, and the tool loop's decisions (sans-IO).

``tools=`` takes OpenAI's dict tools (sent as given; their calls are returned, never run)
and Python functions, sync or async. A function's schema comes from its signature through
pydantic: ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``, ``Literal``,
``Optional``, ``Enum``, pydantic models; ``Annotated[T, "what it is"]`` or
``Annotated[T, Field(description=...)]`` describe a parameter; the docstring's first
paragraph describes the function. The same pydantic model checks the model's arguments
before the function runs, so it receives real ``Enum`` members and model instances.

The loop itself is written once here as ``ToolLoop``; the twins (``client.tool_loop``) only
stream each round's answer and run the functions it asks for: after each answer, ``ToolLoop``
says whether to run calls (and which), or to stop; given what ran, it builds the next body.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import pydantic
from pydantic.fields import FieldInfo

from gloo_stream.accumulate import StreamResult, ToolCall, ToolResult
from gloo_stream.errors import GlooError, InvalidRequestError

__all__ = [
    "DECLINED",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "Approve",
    "FunctionTool",
    "RunCalls",
    "Stop",
    "ToolLoop",
    "ToolRoundsExceededError",
    "ToolSet",
    "function_tool",
    "prepare",
    "result_content",
    "runs_tools",
    "tool_result",
]

DEFAULT_MAX_TOOL_ROUNDS = 5
DECLINED = "The user declined to run this tool call."


class ToolRoundsExceededError(GlooError):
    """The model still asked for tools after ``max_tool_rounds`` rounds; ``partial`` is kept."""

    error_code = "tool_rounds_exceeded"
    advice = "Raise max_tool_rounds, or ask for an answer that needs fewer tool calls."

    def __init__(self, message: str, *, partial: StreamResult) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A Python function offered to the model: its name, description and argument model."""

    name: str
    description: str
    arguments_model: type[pydantic.BaseModel]
    function: Callable[..., Any]

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` (awaited in the async twin; run to completion in the sync)."""
        return inspect.iscoroutinefunction(self.function)

    @property
    def parameters(self) -> dict[str, Any]:
        """The arguments' JSON schema (an object; titles dropped, as OpenAI's own are)."""
        schema: dict[str, Any] = _without_titles(self.arguments_model.model_json_schema())
        return schema

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI function tool sent in the request's ``tools``."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def arguments(self, call: ToolCall) -> dict[str, Any]:
        """The call's arguments checked and converted for the function (keyword arguments).

        Raises ``ValueError`` saying what is wrong (not JSON, a missing or wrong argument).
        """
        if call.arguments_error is not None:
            raise ValueError(call.arguments_error)
        decoded = call.parsed_arguments()
        if not isinstance(decoded, dict):
            raise ValueError(f"the arguments must be a JSON object, got {call.arguments!r}")
        try:
            checked = self.arguments_model.model_validate(decoded)
        except pydantic.ValidationError as exc:
            raise ValueError(_validation_words(exc)) from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}


def function_tool(function: Callable[..., Any]) -> FunctionTool:
    """The tool for ``function``, its schema read from its signature and docstring.

    Raises ``InvalidRequestError`` for a function that cannot be described (a ``*args``, a
    parameter whose type pydantic cannot put in a schema).
    """
    name = getattr(function, "__name__", "")
    if not name.isidentifier():
        raise InvalidRequestError(f"tool {function!r} has no usable name", field="tools")
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        signature = inspect.signature(function)
    except (NameError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"tool {name}: cannot read its signature ({exc})", field="tools"
        ) from None
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise InvalidRequestError(
                f"tool {name}: *{parameter.name} cannot be described to the model; "
                "give each parameter a name and a type",
                field="tools",
            )
        annotation = _described(hints.get(parameter.name, Any))
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    try:
        model = pydantic.create_model(
            f"{name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()  # fails now, not on the first request, if it cannot
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, TypeError) as exc:
        raise InvalidRequestError(f"tool {name}: {exc}".split("\n")[0], field="tools") from None
    return FunctionTool(name, _first_paragraph(function.__doc__), model, function)


def _described(annotation: Any) -> Any:
    """``Annotated[T, "words"]``: the words become the parameter's description."""
    if typing.get_origin(annotation) is not Annotated:
        return annotation
    base, *extras = typing.get_args(annotation)
    words = [e for e in extras if isinstance(e, str)]
    kept = [e for e in extras if not isinstance(e, str)]
    if words and not any(isinstance(e, FieldInfo) and e.description for e in kept):
        kept.append(pydantic.Field(description=" ".join(words)))
    return Annotated[(base, *kept)] if kept else base


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    return " ".join(text.split("\n\n")[0].split())


def _without_titles(schema: Any) -> Any:
    # pydantic titles every property ("City"); they cost tokens and tell the model nothing.
    # Only the schema keyword goes: a property *named* title is a key of "properties", kept.
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            kept[key] = {name: _without_titles(spec) for name, spec in value.items()}
        elif not (key == "title" and isinstance(value, str)):
            kept[key] = _without_titles(value)
    return kept


def _validation_words(exc: pydantic.ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(problems)


def result_content(value: Any) -> str:
    """What the model is told a function returned: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


class ToolSet:
    """The ``tools=`` of one call: what is sent, and the functions that can be run."""

    def __init__(self, tools: Sequence[Any]) -> None:
        if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
            raise InvalidRequestError(
                "tools must be a list of functions or OpenAI function tools", field="tools"
            )
        self.specs: list[Any] = []
        self.functions: dict[str, FunctionTool] = {}
        for tool in tools:
            if isinstance(tool, FunctionTool) or callable(tool):
                made = tool if isinstance(tool, FunctionTool) else function_tool(tool)
                if made.name in self.functions:
                    raise InvalidRequestError(f"two tools are named {made.name}", field="tools")
                self.functions[made.name] = made
                self.specs.append(made.to_dict())
            else:
                self.specs.append(tool)  # a dict tool: checked by the request's rules

    @property
    def runnable(self) -> bool:
        """True when any tool is a Python function (the loop runs; else calls are returned)."""
        return bool(self.functions)


def runs_tools(tools: Any) -> bool:
    """Does this ``tools=`` value hold a Python function (so the tool loop is needed)?"""
    return isinstance(tools, Sequence) and any(
        isinstance(t, FunctionTool) or callable(t) for t in tools
    )


@dataclass(frozen=True, slots=True)
class RunCalls:
    """Run these calls (each with its tool), then ask again."""

    calls: list[tuple[ToolCall, FunctionTool]]


@dataclass(frozen=True, slots=True)
class Stop:
    """The loop is over: ``result`` is the answer to return (tool results included)."""

    result: StreamResult


@dataclass(slots=True)
class ToolLoop:
    """The tool loop's state and rules; the twins do the I/O (stream, run) it asks for.

    ``after_answer(result)`` says what to do with one round's answer; after ``RunCalls``,
    ``next_body(results)`` is the body of the next round. Each call runs at most once: a
    round's calls are run only when the answer ended with ``finish_reason: tool_calls`` and
    every argument string is whole JSON.
    """

    body: dict[str, Any]
    toolset: ToolSet
    max_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    rounds: int = 0
    results: list[ToolResult] = field(default_factory=list)
    _pending: list[ToolCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, int):
            raise InvalidRequestError(
                f"max_tool_rounds must be a whole number, got {self.max_rounds!r}",
                field="max_tool_rounds",
            )
        if self.max_rounds < 1:
            raise InvalidRequestError(
                f"max_tool_rounds must be at least 1, got {self.max_rounds}",
                field="max_tool_rounds",
            )

    def finished(self, result: StreamResult) -> StreamResult:
        """``result`` (the last round's) with every round's tool results."""
        return replace(result, tool_results=list(self.results))

    def after_answer(self, result: StreamResult) -> RunCalls | Stop:
        """What to do once a round's answer has ended (without raising)."""
        calls = result.tool_calls
        if not calls:
            return Stop(self.finished(result))
        if result.finish_reason != "tool_calls":
            reason = result.finish_reason or "no finish reason"
            return Stop(self._not_run(result, f"the answer ended ({reason}) mid tool call"))
        broken = [c for c in calls if c.arguments_error is not None]
        if broken:
            words = "; ".join(f"{c.name or c.index}: {c.arguments_error}" for c in broken)
            return Stop(self._not_run(result, f"tool call arguments are not valid JSON ({words})"))
        unknown = [c.name for c in calls if c.name not in self.toolset.functions]
        if unknown:
            # A dict tool (or a name nobody offered): the caller runs it, as without the loop.
            return Stop(self.finished(result))
        if self.rounds >= self.max_rounds:
            partial = self.finished(result)
            raise ToolRoundsExceededError(
                f"the model still asked for tools after {self.max_rounds} rounds "
                f"(max_tool_rounds={self.max_rounds}); the calls were not run",
                partial=partial,
            )
        self.rounds += 1
        self._pending = list(calls)
        return RunCalls([(c, self.toolset.functions[c.name]) for c in calls])

    def _not_run(self, result: StreamResult, why: str) -> StreamResult:
        return replace(self.finished(result), error=f"{why}; the calls were not run")

    def next_body(self, results: Sequence[ToolResult]) -> dict[str, Any]:
        """The next round's body: the assistant's calls, then one ``tool`` message each."""
        self.results.extend(results)
        calls = self._pending
        self._pending = []
        assistant = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id or f"call_{call.index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in calls
            ],
        }
        replies = [{"role": "tool", "tool_call_id": r.id, "content": r.content} for r in results]
        messages = [*self.body["messages"], assistant, *replies]
        self.body = {**self.body, "messages": messages}
        return self.body


def tool_result(
    call: ToolCall,
    arguments: Mapping[str, Any] | None,
    *,
    value: Any = None,
    error: BaseException | str | None = None,
) -> ToolResult:
    """What one call's run came to (``error``: it raised, was refused, or was declined)."""
    call_id = call.id or f"call_{call.index}"
    args = dict(arguments) if arguments is not None else {}
    if error is not None:
        words = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        content = words if words == DECLINED else f"Error: {words}"
        return ToolResult(id=call_id, name=call.name, arguments=args, error=words, content=content)
    return ToolResult(
        id=call_id, name=call.name, arguments=args, result=value, content=result_content(value)
    )


Approve = Callable[[ToolCall], bool]


def prepare(
    call: ToolCall, tool: FunctionTool, approve: Approve | None
) -> dict[str, Any] | ToolResult:
    """The call's keyword arguments to run it with, or the result that it is not run
    (arguments that do not fit the function, or ``approve`` said no)."""
    try:
        arguments = tool.arguments(call)
    except ValueError as exc:
        return tool_result(call, None, error=str(exc))
    if approve is not None and not approve(call):
        return tool_result(call, arguments, error=DECLINED)
    return arguments
