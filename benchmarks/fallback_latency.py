"""From a primary failure to the fallback's first token, through the library and the proxy.

The primary is a simulator answering 503 to everything; the fallback another simulator
(paced answers, no first-token delay). Measured per call: from the primary's last failure
(the moment the route moves to the fallback, ``on_retry`` with a 0 s wait) to the first
token, and the whole time to first token including the primary's retries (the default
policy: two retries, 0.5 s then 1 s backoff with jitter). With the breaker open, calls skip
the primary and only the fallback's time is left.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from pydantic import SecretStr

from gloo_stream import GlooClient
from gloo_stream.config import GlooSettings
from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

RUNS = 15
MESSAGES = [{"role": "user", "content": "Say something."}]


def _settings(fallback: SimulatorServer, **extra: Any) -> GlooSettings:
    return GlooSettings(
        _env_file=None,  # type: ignore[call-arg]
        gloo_fallback_api_url=fallback.api_url,
        gloo_fallback_api_key=SecretStr("fb-key"),
        gloo_fallback_model="small",
        **extra,
    )


def _one_call(client: GlooClient) -> tuple[float | None, float]:
    """(ms from the move to the fallback to the first token, ms to the first token)."""
    moved: list[float] = []
    first: list[float] = []
    started = time.perf_counter()

    def on_retry(error: Exception, delay: float) -> None:
        if delay == 0:
            moved.append(time.perf_counter())

    def on_token(text: str) -> None:
        if not first:
            first.append(time.perf_counter())

    client.complete(MESSAGES, on_token=on_token, on_retry=on_retry)
    since_move = (first[0] - moved[0]) * 1000 if moved else None
    return since_move, (first[0] - started) * 1000


def _library(primary: SimulatorServer, fallback: SimulatorServer) -> dict[str, float]:
    settings = _settings(fallback, gloo_breaker_failures=10_000)  # never opens
    moves, totals = [], []
    with GlooClient(api_url=primary.api_url, api_key="sim-key", settings=settings) as client:
        for _ in range(RUNS):
            primary.push_fault({"kind": "status", "status": 503, "times": 3})
            since_move, total = _one_call(client)
            assert since_move is not None
            moves.append(since_move)
            totals.append(total)
    opened = _settings(fallback, gloo_breaker_failures=1, gloo_breaker_seconds=600)
    skipped = []
    with GlooClient(api_url=primary.api_url, api_key="sim-key", settings=opened) as client:
        primary.push_fault({"kind": "status", "status": 503, "times": 3})
        _one_call(client)  # opens the breaker
        for _ in range(RUNS):
            skipped.append(_one_call(client)[1])
    return {
        "move_to_first_token_ms": statistics.median(moves),
        "ttft_with_retries_ms": statistics.median(totals),
        "ttft_breaker_open_ms": statistics.median(skipped),
    }


def _proxy(primary: SimulatorServer, fallback: SimulatorServer) -> float:
    """Median ms to the first byte of the answer through the proxy, primary failing 503."""
    settings = settings_for(
        primary,
        gloo_max_retries=0,
        gloo_fallback_api_url=fallback.api_url,
        gloo_fallback_api_key="fb-key",
        gloo_fallback_model="small",
        gloo_breaker_failures=10_000,
    )
    firsts: list[float] = []
    seen: list[int] = []
    with ProxyServer(settings) as proxy, httpx.Client(timeout=10) as http:
        for _ in range(RUNS):
            primary.push_fault({"kind": "status", "status": 503})
            started = time.perf_counter()
            with http.stream("POST", f"{proxy.url}/api/stream", json={"messages": MESSAGES}) as r:
                for piece in r.iter_raw():
                    if b'"content":"' in piece and len(firsts) < len(seen) + 1:
                        firsts.append((time.perf_counter() - started) * 1000)
                seen.append(1)
    return statistics.median(firsts)


def run() -> dict[str, Any]:
    """Measure in the library (defaults, then breaker open) and through the proxy."""
    pace = SimulatorConfig(tokens_per_second=50, first_token_delay=0, api_keys=("fb-key",))
    with SimulatorServer() as primary, SimulatorServer(pace) as fallback:
        results: dict[str, Any] = _library(primary, fallback)
        results["proxy_ttft_no_retries_ms"] = _proxy(primary, fallback)
    return results


def report(results: dict[str, Any]) -> str:
    """The Markdown section."""
    return (
        "## Fallback upstream: from a primary failure to the fallback's first token\n\n"
        f"Median of {RUNS} calls; the primary answers 503, the fallback is a paced simulator.\n\n"
        "| measured | ms |\n|---|---|\n"
        f"| library: primary's last failure to the fallback's first token | "
        f"{results['move_to_first_token_ms']:.1f} |\n"
        f"| library: time to first token, default retries on the primary first | "
        f"{results['ttft_with_retries_ms']:.0f} |\n"
        f"| library: time to first token, breaker open (primary skipped) | "
        f"{results['ttft_breaker_open_ms']:.1f} |\n"
        f"| proxy (GLOO_MAX_RETRIES=0): request to first token | "
        f"{results['proxy_ttft_no_retries_ms']:.1f} |\n"
    )


if __name__ == "__main__":
    print(report(run()))
