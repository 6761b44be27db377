"""Token budgets counted in this process: admission, debit, the window's end, the 429."""

from __future__ import annotations

import msgspec
from prometheus_client import CollectorRegistry

from gloo_stream.accumulate import StreamResult
from gloo_stream.proxy.observe.usage_metrics import ModelLabels, UsageMetrics
from gloo_stream.proxy.policy.accounting import Answer, UsageAccountant
from gloo_stream.proxy.policy.limits.budget import TokenBudgets
from gloo_stream.proxy.policy.limits.memory import MemoryBudgetStore
from gloo_stream.usage import TokenBudgetRule
from gloo_stream.wire import Usage

RULE = TokenBudgetRule(100, 3600, "hour")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_budget_admits_until_spent_then_refuses_until_the_window_ends() -> None:
    clock = Clock(7200.0 + 600)  # ten minutes into an hour
    budgets = TokenBudgets(RULE, MemoryBudgetStore(clock))
    first = await budgets.admit("key:a")
    assert (first.allowed, first.remaining) == (True, 100)
    assert (await budgets.debit("key:a", 60)).remaining == 40
    assert (await budgets.admit("key:a")).allowed
    overrun = await budgets.debit("key:a", 70)  # an answer may overrun what was left
    assert (overrun.allowed, overrun.remaining) == (False, 0)
    refused = await budgets.admit("key:a")
    assert not refused.allowed
    assert refused.resets_in == 3000.0
    failure = budgets.refusal(refused)
    assert failure.status == 429
    assert failure.code == "token_budget_exhausted"
    assert failure.retry_after == 3000.0
    assert (b"retry-after", b"3000") in failure.headers()
    assert "100/hour tokens" in msgspec.json.decode(failure.body())["error"]["message"]
    assert (await budgets.admit("key:b")).remaining == 100  # per client
    clock.now = 10800.0  # the next hour
    renewed = await budgets.admit("key:a")
    assert (renewed.allowed, renewed.remaining) == (True, 100)


async def test_reading_a_budget_keeps_no_state_for_clients_that_spent_nothing() -> None:
    store = MemoryBudgetStore(Clock(0.0))
    for n in range(50):
        await store.count(f"ip:10.0.0.{n}", RULE, 0)
    assert store._used == {}


async def test_remaining_is_reported_to_the_metric_for_keyed_clients() -> None:
    metrics = UsageMetrics(CollectorRegistry())
    budgets = TokenBudgets(RULE, MemoryBudgetStore(Clock(0.0)), on_remaining=metrics.set_remaining)
    await budgets.debit("key:a", 30)
    await budgets.debit("ip:127.0.0.1", 30)
    registry = metrics.budget_remaining._metrics  # type: ignore[attr-defined]
    assert [key for key in registry] == [("key:a",)]
    assert metrics.budget_remaining.labels("key:a")._value.get() == 70  # type: ignore[attr-defined]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_the_accountant_counts_exact_and_estimated_usage_and_debits_the_budget() -> None:
    registry = CollectorRegistry()
    metrics = UsageMetrics(registry)
    budgets = TokenBudgets(RULE, MemoryBudgetStore(Clock(0.0)))
    accountant = UsageAccountant(metrics, budgets, ModelLabels(["m1"]))
    body = {"messages": [{"role": "user", "content": "x" * 40}], "model": "m1"}
    whole = StreamResult(
        text="hello", token_count=5, usage=Usage(8, 5, 13), model="m1-2025", ttft_ms=100.0
    )
    whole.duration_ms = 500.0
    usage = await accountant.settle(Answer("key:a", body, whole, 0.5))
    assert usage is not None and not usage.estimated
    cut = StreamResult(text="y" * 12, token_count=3, interrupted=True, model="m1-2025")
    estimated = await accountant.settle(Answer("key:a", body, cut, 0.2))
    assert estimated is not None and estimated.estimated
    assert (estimated.input_tokens, estimated.output_tokens) == (10, 3)
    labels = {"client": "key:a", "model": "m1-2025"}
    assert sample(registry, "gloo_proxy_tokens_total", **labels, type="input", estimated="false")
    assert sample(registry, "gloo_proxy_tokens_total", **labels, type="output", estimated="true")
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "gloo",
        "gen_ai_request_model": "m1",
        "gen_ai_response_model": "m1-2025",
    }
    # Only the upstream's own count goes into the conventions' histogram.
    token_sum = "gen_ai_client_token_usage_sum"
    assert sample(registry, token_sum, **genai, gen_ai_token_type="output") == 5
    assert sample(registry, "gen_ai_server_time_to_first_token_count", **genai) == 1
    assert sample(registry, "gen_ai_server_time_per_output_token_sum", **genai) == 0.1
    assert (await budgets.admit("key:a")).remaining == 100 - 13 - 13


async def test_a_request_the_upstream_refused_records_nothing() -> None:
    # Its model name was the caller's to invent: no series, and nothing billed.
    registry = CollectorRegistry()
    accountant = UsageAccountant(UsageMetrics(registry))
    answer = Answer("ip:1.2.3.4", {"messages": []}, None, 0.3, error_type="RateLimitError")
    assert await accountant.settle(answer) is None
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "gloo",
        "gen_ai_request_model": "auto",
        "gen_ai_response_model": "",
        "error_type": "RateLimitError",
    }
    assert sample(registry, "gen_ai_client_operation_duration_count", **labels) is None
    assert registry.get_sample_value("gloo_proxy_tokens_total") is None
