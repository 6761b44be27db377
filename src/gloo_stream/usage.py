"""What an answer used, in tokens you can bill: the upstream's count, else an estimate.

Sans-IO. The upstream's ``usage`` (the usage chunk that ``stream_options.include_usage``
asks for, or Gloo's usage on the finish chunk) is the truth and is taken as it is, an
explicit zero included. When it is missing (the caller left before it came, the upstream
failed mid-answer or never sends one), what arrived is counted instead and the count is
marked ``estimated``: about four characters a token, and at least one token per content
chunk. Token budgets use the same notation rule, so it lives here once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gloo_stream.accumulate import StreamResult

__all__ = [
    "BilledUsage",
    "TokenBudgetRule",
    "billed_usage",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "parse_token_budget",
]

_CHARS_PER_TOKEN = 4
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
_BUDGET = re.compile(r"\s*(\d[\d_]*)\s*/\s*([a-z]+?)s?\s*", re.IGNORECASE)
_OFF = frozenset({"", "0", "off", "none"})


@dataclass(frozen=True, slots=True)
class BilledUsage:
    """Tokens one answer used; ``estimated`` when the upstream did not report them all."""

    input_tokens: int
    output_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input and output together: what a token budget is debited."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        """The usage as the request's log line shows it."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "estimated": self.estimated,
        }


def estimate_text_tokens(text: str) -> int:
    """About how many tokens ``text`` is (four characters a token, rounded up)."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """About how many tokens the messages are: their text, tool calls and tool results."""
    chars = 0
    for message in messages:
        chars += _text_length(message.get("content"))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                function = call.get("function")
                if isinstance(function, Mapping):
                    chars += len(str(function.get("name") or ""))
                    chars += len(str(function.get("arguments") or ""))
    return math.ceil(chars / _CHARS_PER_TOKEN)


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, Sequence):  # content parts: [{"type": "text", "text": ...}]
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return 0


def billed_usage(result: StreamResult, messages: Sequence[Mapping[str, Any]]) -> BilledUsage:
    """The tokens to bill for ``result`` (a whole or a partial answer) to ``messages``.

    Each count the upstream gave is kept as given; each one missing is estimated, and then
    the whole usage is marked ``estimated``.
    """
    usage = result.usage
    prompt = usage.prompt_tokens if usage is not None else None
    completion = usage.completion_tokens if usage is not None else None
    total = usage.total_tokens if usage is not None else None
    if total is not None:  # some servers give the total and only one of the parts
        if prompt is None and completion is not None:
            prompt = max(0, total - completion)
        elif completion is None and prompt is not None:
            completion = max(0, total - prompt)
    estimated = prompt is None or completion is None
    if prompt is None:
        prompt = estimate_prompt_tokens(messages)
    if completion is None:
        completion = _estimate_answer_tokens(result)
    return BilledUsage(prompt, completion, estimated)


def _estimate_answer_tokens(result: StreamResult) -> int:
    chars = len(result.text)
    for call in result.tool_calls:
        chars += len(call.name) + len(call.arguments)
    return max(result.token_count, math.ceil(chars / _CHARS_PER_TOKEN))


@dataclass(frozen=True, slots=True)
class TokenBudgetRule:
    """``tokens`` per ``period_seconds``, counted in windows aligned to the epoch (UTC)."""

    tokens: int
    period_seconds: int
    period_name: str

    def __str__(self) -> str:
        return f"{self.tokens}/{self.period_name}"

    def window(self, now: float) -> tuple[int, float]:
        """The window ``now`` (Unix seconds) falls in, and the seconds until it ends."""
        index = int(now // self.period_seconds)
        return index, (index + 1) * self.period_seconds - now


def parse_token_budget(text: str) -> TokenBudgetRule | None:
    """``"200000/day"`` as a rule (``""``, ``"0"`` or ``"off"``: no budget).

    Raises ``ValueError`` naming the accepted shape when ``text`` is neither.
    """
    if text.strip().lower() in _OFF:
        return None
    match = _BUDGET.fullmatch(text)
    period = match.group(2).lower() if match else ""
    if match is None or period not in _PERIODS:
        raise ValueError(
            "must look like '200000/day': a number of tokens per second, minute, hour, day "
            f"or week (or 'off'), got {text[:60]!r}"
        )
    tokens = int(match.group(1).replace("_", ""))
    if tokens == 0:
        return None
    return TokenBudgetRule(tokens, _PERIODS[period], period)
