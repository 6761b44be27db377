"""``UsageAccountant``: what each answer used, into metrics, the log line and the budget.

Called once per request that reached the upstream, when it ends however it ends: whole,
failed mid-answer, or cut short because the caller left (then only what had arrived is
counted, and marked estimated). Requests refused before the upstream cost nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gloo_stream import genai
from gloo_stream.accumulate import StreamResult
from gloo_stream.proxy.observe.usage_metrics import UsageMetrics, client_label
from gloo_stream.proxy.policy.limits.budget import TokenBudgets
from gloo_stream.usage import BilledUsage, billed_usage

__all__ = ["Answer", "UsageAccountant", "ask_for_usage"]

logger = logging.getLogger("gloo_stream.proxy")


def ask_for_usage(body: dict[str, Any], *, always: bool) -> bool:
    """Ask the upstream for the usage chunk (``always``: on every request, to bill it).

    True when the caller asked for it too, so it is passed on; a caller that did not ask
    never sees it (OpenAI's clients do not expect a chunk without choices unasked).
    """
    options = body.get("stream_options")
    asked = isinstance(options, Mapping) and options.get("include_usage") is True
    if always or asked:
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream_options", None)
    return asked


@dataclass(slots=True)
class Answer:
    """What one request to the upstream came to, as the accountant needs it."""

    client: str
    body: Mapping[str, Any]
    result: StreamResult | None
    """The whole answer, or the partial one (what arrived) when it ended early."""
    duration_s: float
    """From sending the request upstream to the answer's end."""
    error_type: str | None = None


class UsageAccountant:
    """Counts each answer's tokens per client and model, and debits the token budget."""

    def __init__(self, metrics: UsageMetrics, budgets: TokenBudgets | None = None) -> None:
        self.metrics = metrics
        self.budgets = budgets

    async def settle(self, answer: Answer) -> BilledUsage | None:
        """Count ``answer`` (None when nothing came back to count) and debit its tokens."""
        result = answer.result
        labels = self._labels(answer)
        self.metrics.operation_duration.labels(*labels, answer.error_type or "").observe(
            answer.duration_s
        )
        if result is None:
            return None
        messages = answer.body.get("messages")
        usage = billed_usage(result, messages if isinstance(messages, list) else [])
        self._count(answer, result, usage, labels)
        if self.budgets is not None and usage.total_tokens:
            try:
                await self.budgets.debit(answer.client, usage.total_tokens)
            except Exception:  # the answer was sent: a failed debit must not fail it
                logger.warning("could not debit %s tokens from a budget", usage.total_tokens)
        return usage

    def _labels(self, answer: Answer) -> tuple[str, str, str, str]:
        result = answer.result
        response_model = result.model if result is not None and result.model else ""
        return (
            genai.OPERATION,
            genai.PROVIDER,
            genai.requested_model(answer.body),
            response_model[:200],
        )

    def _count(
        self,
        answer: Answer,
        result: StreamResult,
        usage: BilledUsage,
        labels: tuple[str, str, str, str],
    ) -> None:
        metrics = self.metrics
        client = client_label(answer.client)
        model = labels[3] or labels[2]
        estimated = "true" if usage.estimated else "false"
        metrics.tokens.labels(client, model, "input", estimated).inc(usage.input_tokens)
        metrics.tokens.labels(client, model, "output", estimated).inc(usage.output_tokens)
        reported = result.usage
        if reported is not None:
            if reported.prompt_tokens is not None:
                metrics.token_usage.labels(*labels, "input").observe(reported.prompt_tokens)
            if reported.completion_tokens is not None:
                metrics.token_usage.labels(*labels, "output").observe(reported.completion_tokens)
        if result.ttft_ms is None:
            return
        metrics.time_to_first_token.labels(*labels).observe(result.ttft_ms / 1000)
        if usage.output_tokens > 1:
            generating = (result.duration_ms - result.ttft_ms) / 1000
            per_token = max(0.0, generating) / (usage.output_tokens - 1)
            metrics.time_per_output_token.labels(*labels).observe(per_token)
