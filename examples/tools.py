"""Tools for ``gloo-stream chat --tools examples/tools.py``: every public function is offered.

Each function's parameters and docstring tell the model how to call it (README "Tool use").
"""

from __future__ import annotations

from typing import Annotated, Literal


def get_weather(
    city: Annotated[str, "The city, e.g. Paris"],
    unit: Literal["celsius", "fahrenheit"] = "celsius",
) -> str:
    """The current weather in a city (made up, deterministic: no network)."""
    celsius = 12 + sum(map(ord, city)) % 15
    degrees = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return f"{degrees}° {'C' if unit == 'celsius' else 'F'} and clear in {city}"


def word_count(text: Annotated[str, "The text to count the words of"]) -> int:
    """How many words a text has."""
    return len(text.split())
