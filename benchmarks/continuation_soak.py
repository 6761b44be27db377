"""Soak: 1,000 answers through the proxy from an upstream that cuts 30% of them (issue 24).

The simulator (its own process) cuts each answer with probability 0.3, once, at a random
token, in a random style: Signal A (``finish_reason: "error"``), a dropped connection, a
stall, an end without a finish. Its continuations repeat the last 16+ characters, as models
do, so the seam's overlap removal is exercised on every seam. The proxy (idle timeout
``STALL_TIMEOUT``, so a stall is noticed quickly) continues each cut answer inside the same
response. Each answer's text, read by an ``/v1`` streaming caller, is compared with the
uninterrupted answer (``expected_answer``): identical or not, and if not, how many
characters were duplicated or lost (a character-level diff).

A seam's time is the gap the caller sees between the last chunk before the seam and the
first chunk after it (the one carrying ``gloo_continuation``). For a stall, that gap also
holds the idle timeout that noticed it; it is reported apart, with the timeout subtracted.
The upstream's own time to first token (request to first content chunk, direct to the
simulator) is measured alongside: a seam costs one upstream TTFT plus the proxy's own time.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import statistics
import time
from collections import Counter
from typing import Any

import httpx
from pydantic import SecretStr

from benchmarks.simproc import simulator_process
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.simulator.answers import expected_answer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer

ANSWERS = 1000
CONCURRENCY = 32
CUT_FRACTION = 0.3
STALL_TIMEOUT = 0.5  # the proxy's idle (read) timeout: a stalled upstream is noticed after it
FIRST_TOKEN_DELAY = 0.02  # the simulated upstream's time to first token (s)
TOKENS_PER_SECOND = 100
TTFT_SAMPLES = 60
_FIRST_TEXT = re.compile(rb'"content":"[^"]')


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Soak question number {i}: explain streaming"}]


async def _one(http: httpx.AsyncClient, url: str, i: int) -> dict[str, Any]:
    """Read one answer; its text, its seams and each seam's gap (ms)."""
    body = {"model": "auto", "messages": _messages(i), "stream": True}
    decoder = SSEDecoder()
    text: list[str] = []
    seams: list[dict[str, Any]] = []
    last_at: float | None = None
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        async for piece in response.aiter_raw():
            now = time.perf_counter()
            for event in decoder.feed(piece):
                if not event.data or event.data == "[DONE]":
                    continue
                chunk = json.loads(event.data)
                if "error" in chunk and not chunk.get("choices"):
                    seams.append({"error": chunk["error"]})
                    continue
                mark = chunk.get("gloo_continuation")
                if mark is not None and last_at is not None:
                    seams.append({**mark, "gap_ms": (now - last_at) * 1000})
                choices = chunk.get("choices") or []
                content = (choices[0].get("delta") or {}).get("content") if choices else None
                if content:
                    text.append(content)
                    last_at = now
    return {"text": "".join(text), "seams": seams}


async def _soak(url: str) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = httpx.Timeout(60.0)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:

        async def guarded(i: int) -> dict[str, Any]:
            async with limit:
                return await _one(http, url, i)

        return await asyncio.gather(*(guarded(i) for i in range(ANSWERS)))


def _upstream_ttft(api_url: str) -> list[float]:
    """Request to first content chunk, straight to the simulator (ms)."""
    out: list[float] = []
    headers = {"Authorization": "Bearer sim-key"}
    with httpx.Client(timeout=10, headers=headers) as http:
        for i in range(TTFT_SAMPLES):
            body = {"messages": _messages(ANSWERS + i), "stream": True, "auto_routing": True}
            started = time.perf_counter()
            with http.stream("POST", api_url, json=body) as response:
                for piece in response.iter_raw():
                    if _FIRST_TEXT.search(piece):  # not the role opener's empty content
                        out.append((time.perf_counter() - started) * 1000)
                        break
    return out


def _damage(expected: str, got: str) -> tuple[int, int]:
    """(characters duplicated/added, characters lost) between the two texts."""
    added = lost = 0
    matcher = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lost += a1 - a0
        if tag in ("replace", "insert"):
            added += b1 - b0
    return added, lost


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run() -> dict[str, Any]:
    """Soak the proxy; the counts, the damage, the seams' times and the upstream's TTFT."""
    config = {
        "tokens_per_second": TOKENS_PER_SECOND,
        "first_token_delay": FIRST_TOKEN_DELAY,
        "cut_fraction": CUT_FRACTION,
        "cut_stall": 5.0,
        "continue_repeat_chars": 16,
    }
    with simulator_process(**config) as sim_url:
        api_url = f"{sim_url}/ai/v2/chat/completions"
        ttft = _upstream_ttft(api_url)
        settings = ProxySettings(
            _env_file=None,  # type: ignore[call-arg]
            gloo_api_url=api_url,
            gloo_api_key=SecretStr("sim-key"),
            gloo_read_timeout=STALL_TIMEOUT,
            proxy_shutdown_grace=0.0,
            proxy_max_streams_per_client=0,  # every caller here is 127.0.0.1
            proxy_rate_limit="",
        )
        started = time.perf_counter()
        with ProxyServer(settings) as proxy:
            answers = asyncio.run(_soak(proxy.url))
        wall = time.perf_counter() - started
    whole = duplicated = lost = errors = 0
    error_samples: list[str] = []
    gaps: dict[str, list[float]] = {}
    reasons: Counter[str] = Counter()
    for i, answer in enumerate(answers):
        expected = "".join(expected_answer(_messages(i)))
        if answer["text"] == expected:
            whole += 1
        else:
            added, gone = _damage(expected, answer["text"])
            duplicated += added
            lost += gone
        for seam in answer["seams"]:
            if "error" in seam:
                errors += 1
                if len(error_samples) < 5:
                    error_samples.append(json.dumps(seam["error"])[:200])
                continue
            reasons[seam["reason"]] += 1
            gaps.setdefault(seam["reason"], []).append(seam["gap_ms"])
    stall_gaps = [gap - STALL_TIMEOUT * 1000 for gap in gaps.get("timeout", [])]
    other = [g for reason, values in gaps.items() if reason != "timeout" for g in values]
    return {
        "answers": ANSWERS,
        "concurrency": CONCURRENCY,
        "wall_s": wall,
        "whole_and_identical": whole,
        "continued": sum(1 for a in answers if any("reason" in s for s in a["seams"])),
        "seams_by_reason": dict(reasons),
        "error_events": errors,
        "error_samples": error_samples,
        "chars_duplicated": duplicated,
        "chars_lost": lost,
        "upstream_ttft_p50_ms": _pct(ttft, 0.5),
        "upstream_ttft_p99_ms": _pct(ttft, 0.99),
        "seam_p50_ms": _pct(other, 0.5),
        "seam_p99_ms": _pct(other, 0.99),
        "stall_seam_after_timeout_p50_ms": _pct(stall_gaps, 0.5),
        "stall_seam_after_timeout_p99_ms": _pct(stall_gaps, 0.99),
        "stall_timeout_ms": STALL_TIMEOUT * 1000,
        "seam_median_by_reason_ms": {r: statistics.median(v) for r, v in gaps.items()},
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def report(results: dict[str, Any]) -> str:
    """The Markdown section."""
    by_reason = ", ".join(
        f"{reason} {count}" for reason, count in sorted(results["seams_by_reason"].items())
    )
    medians = results["seam_median_by_reason_ms"]
    per_reason = ", ".join(f"{r} {v:.0f} ms" for r, v in sorted(medians.items()))
    return (
        "## Continuation soak: cut answers come out whole\n\n"
        f"{results['answers']} answers through the proxy (`/v1/chat/completions`, streamed, "
        f"{results['concurrency']} at a time) from a simulator that cuts 30% of them once at a "
        "random token in a random style (Signal A, drop, stall, end without finish), its "
        "continuations repeating their last 16+ characters. The proxy's idle timeout is "
        f"{results['stall_timeout_ms']:.0f} ms. Run: `python -m benchmarks continuation_soak` "
        f"({results['wall_s']:.0f} s).\n\n"
        "| measured | value | target |\n|---|---|---|\n"
        f"| answers whole and identical to the uninterrupted answer | "
        f"{results['whole_and_identical']} of {results['answers']} | all |\n"
        f"| answers continued (seams: {by_reason}) | {results['continued']} | |\n"
        f"| error events seen by the caller | {results['error_events']} | 0 |\n"
        f"| characters duplicated / lost | {results['chars_duplicated']} / "
        f"{results['chars_lost']} | 0 / 0 |\n"
        f"| upstream time to first token, p50 / p99 | {_ms(results['upstream_ttft_p50_ms'])} / "
        f"{_ms(results['upstream_ttft_p99_ms'])} ms | |\n"
        f"| seam's gap (Signal A, drop, end without finish), p50 / p99 | "
        f"{_ms(results['seam_p50_ms'])} / {_ms(results['seam_p99_ms'])} ms | "
        "upstream TTFT + < 50 ms |\n"
        f"| stall seam's gap after the idle timeout, p50 / p99 | "
        f"{_ms(results['stall_seam_after_timeout_p50_ms'])} / "
        f"{_ms(results['stall_seam_after_timeout_p99_ms'])} ms | upstream TTFT + < 50 ms |\n\n"
        f"Median gap by reason (a stall's includes the idle timeout): {per_reason}. The gap is "
        "what the caller sees between the last chunk before the seam and the first after it, "
        "so besides the continuation's time to first token it holds the time the upstream "
        "takes to send the words it repeats (held back until the repeat is known, then "
        "dropped: 16+ characters, a few tokens at "
        f"{1000 / TOKENS_PER_SECOND:.0f} ms each at the simulator's pace).\n"
    )
