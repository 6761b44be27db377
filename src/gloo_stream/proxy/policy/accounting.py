"""``UsageAccountant``: what each answer used, into metrics, the log line and the budget.

Called once per request that reached the upstream, when it ends however it ends: whole,
failed mid-answer, or cut short because the caller left (then only what had arrived is
counted, and marked estimated; a caller gone before anything arrived still pays for the
prompt that went upstream). Requests refused, by the proxy or by the upstream, cost
nothing and record no metric (their model names are the caller's to invent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gloo_stream import genai
from gloo_stream.accumulate import StreamResult
from gloo_stream.proxy.observe.usage_metrics import ModelLabels, UsageMetrics, client_label
from gloo_stream.proxy.policy.limits.budget import Reservation, TokenBudgets
from gloo_stream.usage import BilledUsage, billed_usage, estimate_prompt_tokens

__all__ = ["Answer", "UsageAccountant", "ask_for_usage", "reservation_tokens"]

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


def reservation_tokens(
    asked: Mapping[str, Any], body: Mapping[str, Any], default_completion: int
) -> int:
    """What to reserve from a budget for ``body``: its prompt's estimate, plus the
    ``max_tokens`` the caller ``asked`` for, else ``default_completion``."""
    messages = body.get("messages")
    prompt = estimate_prompt_tokens(messages if isinstance(messages, list) else [])
    completion = default_completion
    for name in ("max_completion_tokens", "max_tokens"):
        value = asked.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            completion = value
            break
    return prompt + completion


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

    def __init__(
        self,
        metrics: UsageMetrics,
        budgets: TokenBudgets | None = None,
        models: ModelLabels | None = None,
    ) -> None:
        self.metrics = metrics
        self.budgets = budgets
        self.models = models if models is not None else ModelLabels()

    async def settle(
        self, answer: Answer | None, reservation: Reservation | None = None
    ) -> BilledUsage | None:
        """Count ``answer`` (None when nothing came back to count) and settle its tokens.

        ``answer`` None (the request never went upstream) gives ``reservation`` back.
        """
        result = answer.result if answer is not None else None
        usage: BilledUsage | None = None
        if answer is not None and result is not None:
            messages = answer.body.get("messages")
            usage = billed_usage(result, messages if isinstance(messages, list) else [])
            labels = self._labels(answer, result)
            self.metrics.operation_duration.labels(*labels, answer.error_type or "").observe(
                answer.duration_s
            )
            self._count(answer, result, usage, labels)
        await self._charge(answer, usage, reservation)
        return usage

    async def _charge(
        self, answer: Answer | None, usage: BilledUsage | None, reservation: Reservation | None
    ) -> None:
        if self.budgets is None or (answer is None and reservation is None):
            return
        if usage is not None:
            tokens = usage.total_tokens
        elif answer is not None and answer.error_type is None:
            # Gone before anything arrived: the whole prompt went upstream all the same.
            messages = answer.body.get("messages")
            tokens = estimate_prompt_tokens(messages if isinstance(messages, list) else [])
        else:
            tokens = 0  # refused by the upstream, or never sent: nothing to pay
        try:
            if reservation is not None:
                await self.budgets.settle(reservation, tokens)
            elif tokens and answer is not None:
                await self.budgets.debit(answer.client, tokens)
        except Exception:  # the answer was sent: a failed debit must not fail it
            logger.warning("could not settle %s tokens with a budget", tokens)

    def _labels(self, answer: Answer, result: StreamResult) -> tuple[str, str, str, str]:
        models = self.models
        answered = models.learn(result.model or "")  # first: a name just learnt is known
        return (
            genai.OPERATION,
            genai.PROVIDER,
            models.label(genai.requested_model(answer.body)),
            answered,
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
