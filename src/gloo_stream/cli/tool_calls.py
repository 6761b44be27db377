"""Tool calls on the terminal: what is shown while they stream, the tools of ``--tools PATH``,
and the question asked before running one.

``CallsShown`` keeps the calls of an answer as text lines (a call's arguments growing, then
pretty-printed once whole, or flagged when they are not valid JSON; then what the function
returned), which every view draws its own way.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gloo_stream.accumulate import ToolCall
from gloo_stream.events import AnswerEvent, CallComplete, CallDelta, ToolRan

__all__ = [
    "CallsShown",
    "ToolFileError",
    "complete_call_lines",
    "load_tools",
    "one_line_arguments",
    "pretty_arguments",
    "result_line",
]

_RESULT_SHOWN = 200  # characters of a tool's result shown on the terminal


def pretty_arguments(call: ToolCall) -> str:
    """The arguments indented for reading, or the raw text when they are not JSON."""
    if call.arguments_error is not None:
        return call.arguments
    return json.dumps(call.parsed_arguments(), indent=2, ensure_ascii=False)


def one_line_arguments(call: ToolCall) -> str:
    """The arguments on one line (``{"city": "Paris"}``), or the raw text when not JSON."""
    if call.arguments_error is not None:
        return call.arguments
    return json.dumps(call.parsed_arguments(), ensure_ascii=False)


class CallsShown:
    """The tool activity of one answer as lines: ``⚙`` calls, ``↳`` results."""

    def __init__(self) -> None:
        self._growing: dict[int, tuple[str, str]] = {}  # index -> (name, arguments so far)
        self.lines: list[str] = []  # settled lines (whole calls, results)

    def add(self, event: AnswerEvent) -> bool:
        """Take one event; True when what is shown changed."""
        if isinstance(event, CallDelta):
            name, so_far = self._growing.get(event.index, (event.name, ""))
            self._growing[event.index] = (name or event.name, so_far + event.arguments_delta)
            return True
        if isinstance(event, CallComplete):
            self._growing.pop(event.call.index, None)
            self.lines.extend(complete_call_lines(event.call))
            return True
        if isinstance(event, ToolRan):
            self.lines.append(result_line(event))
            return True
        return False

    def growing_lines(self) -> list[str]:
        """The calls still streaming: name and arguments so far."""
        return [f"⚙ {name}({args}…" for _, (name, args) in sorted(self._growing.items())]

    def text(self) -> str:
        """Everything to show, settled lines first."""
        return "\n".join([*self.lines, *self.growing_lines()])

    def clear(self) -> None:
        """Forget what was shown (it was printed for good)."""
        self._growing.clear()
        self.lines.clear()


def complete_call_lines(call: ToolCall) -> list[str]:
    """A whole call: its name, then its arguments pretty-printed (or flagged as not JSON)."""
    if call.arguments_error is not None:
        return [f"✗ {call.name}: {call.arguments_error}; not run"]
    return [
        f"✓ {call.name}, arguments complete:",
        *("  " + line for line in pretty_arguments(call).splitlines()),
    ]


def result_line(event: ToolRan) -> str:
    """What a function returned (or why it did not), shortened."""
    result = event.result
    if result.error is not None:
        return f"↳ {result.name} failed: {result.error}"[:_RESULT_SHOWN]
    shown = result.content if len(result.content) <= _RESULT_SHOWN else result.content[:199] + "…"
    return f"↳ {result.name} → {shown}"


class ToolFileError(Exception):
    """A ``--tools`` file that cannot be loaded, or offers no function."""


def load_tools(path: Path) -> list[Callable[..., Any]]:
    """The public functions defined in the Python file at ``path`` (sync or async)."""
    if not path.is_file():
        raise ToolFileError(f"{path}: no such file; --tools takes a Python file of functions")
    name = f"gloo_stream_tools_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ToolFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the functions' type hints through it
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ToolFileError(f"{path}: loading it failed: {type(exc).__name__}: {exc}") from None
    functions: list[Callable[..., Any]] = [
        value
        for key, value in vars(module).items()
        if not key.startswith("_") and inspect.isfunction(value) and value.__module__ == name
    ]
    if not functions:
        raise ToolFileError(f"{path}: defines no public function (a def not starting with _)")
    return functions
