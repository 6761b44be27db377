"""Decoding throughput: bytes of a Gloo-shaped stream to text deltas, side by side.

gloo-stream (SSEDecoder + msgspec chunk decoding) versus the OpenAI Python SDK's SSE decoder
+ ``json.loads`` and httpx-sse (+ ``json.loads``), on identical bytes fed in 16 KiB reads.
Also a single huge ``data:`` line fed in 1 KiB reads at 1, 4 and 16 MiB, to show linear cost.

Run: ``.venv/bin/python -m benchmarks.decode`` (prints JSON).
"""

from __future__ import annotations

import codecs
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from gloo_stream.sse import SSEDecoder
from gloo_stream.wire import decode_chunk

CHUNKS = 100_000
READ = 16 * 1024
REPEATS = 5
WORDS = ["Hello", " world", ",", " café", " naïve", " →", " 😀", " streaming", " tokens", "\n\n"]


def gloo_stream_bytes(n: int = CHUNKS) -> bytes:
    """A Gloo-shaped stream: role chunk, ``n`` content chunks, finish chunk; no [DONE]."""
    head = (
        '{"id":"gen-abc123","choices":[{"delta":{"content":%s,"role":"assistant",'
        '"tool_calls":null},"finish_reason":null,"index":0}],"created":1774527271,'
        '"model":"google/gemini-2.5-flash","object":"chat.completion.chunk",'
        '"provider":"Gloo AI","usage":null}'
    )
    parts = [b"data: " + (head % "null").encode() + b"\n\n"]
    for i in range(n):
        text = json.dumps(WORDS[i % len(WORDS)], ensure_ascii=False)
        parts.append(b"data: " + (head % text).encode() + b"\n\n")
    parts.append(
        b'data: {"id":"gen-abc123","choices":[{"delta":{},"finish_reason":"stop","index":0}],'
        b'"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}\n\n' % (n, n + 9)
    )
    return b"".join(parts)


def reads(data: bytes, size: int) -> Iterator[bytes]:
    """The stream as a socket would hand it over: fixed-size reads."""
    return (data[i : i + size] for i in range(0, len(data), size))


def ours(data: bytes, size: int) -> list[str]:
    """gloo-stream: SSEDecoder.feed + wire.decode_chunk + chunk.content."""
    decoder = SSEDecoder()
    out: list[str] = []
    append = out.append
    for block in reads(data, size):
        for event in decoder.feed(block):
            if event.data != "[DONE]":
                append(decode_chunk(event.data).content)
    decoder.close()
    return out


def openai_sdk(data: bytes, size: int) -> list[str]:
    """The OpenAI Python SDK's SSEDecoder.iter_bytes + sse.json(), as its Stream does."""
    from openai._streaming import SSEDecoder as OpenAIDecoder

    out: list[str] = []
    for sse in OpenAIDecoder().iter_bytes(reads(data, size)):
        if sse.data.startswith("[DONE]"):
            break
        chunk = sse.json()
        choices = chunk.get("choices") or [{}]
        out.append((choices[0].get("delta") or {}).get("content") or "")
    return out


def httpx_sse(data: bytes, size: int) -> list[str]:
    """httpx-sse: incremental UTF-8 text, SSELineDecoder, SSEDecoder, then json.loads."""
    from httpx_sse._decoders import SSEDecoder as HttpxDecoder
    from httpx_sse._decoders import SSELineDecoder

    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines, events = SSELineDecoder(), HttpxDecoder()
    out: list[str] = []
    for block in reads(data, size):
        for line in lines.decode(text_decoder.decode(block)):
            sse = events.decode(line.rstrip("\n"))
            if sse is not None and sse.data != "[DONE]":
                chunk = json.loads(sse.data)
                choices = chunk.get("choices") or [{}]
                out.append((choices[0].get("delta") or {}).get("content") or "")
    return out


def timed(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """Median wall time over ``repeats`` runs, with the GC paused as in a steady state."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
        gc.enable()
    return statistics.median(times), result


def throughput() -> dict[str, Any]:
    """Events per second for each decoder on the same 100,000-chunk stream."""
    data = gloo_stream_bytes()
    expected: list[str] | None = None
    rows: dict[str, Any] = {}
    for name, fn in (("gloo-stream", ours), ("openai-sdk", openai_sdk), ("httpx-sse", httpx_sse)):
        seconds, texts = timed(lambda fn=fn: fn(data, READ))  # type: ignore[misc]
        texts = [t for t in texts if t]
        if expected is None:
            expected = texts
        assert texts == expected, f"{name} decoded different text"
        events = CHUNKS + 2
        rows[name] = {"seconds": seconds, "events_per_second": events / seconds}
    base = rows["openai-sdk"]["events_per_second"]
    for row in rows.values():
        row["x_openai_sdk"] = row["events_per_second"] / base
    return {"stream_bytes": len(data), "events": CHUNKS + 2, "read_size": READ, "decoders": rows}


def one_huge_event(mib: int) -> float:
    """Seconds to decode one ``mib`` MiB data line fed in 1 KiB reads."""
    payload = b"data: " + b"x" * (mib * 1024 * 1024) + b"\n\n"

    def run() -> int:
        decoder = SSEDecoder()
        events = []
        for block in reads(payload, 1024):
            events.extend(decoder.feed(block))
        return len(events[0].data)

    seconds, length = timed(run, repeats=3)
    assert length == mib * 1024 * 1024
    return seconds


def linearity() -> dict[str, Any]:
    """1, 4 and 16 MiB: linear cost means seconds per MiB stays flat."""
    rows = {f"{mib} MiB": one_huge_event(mib) for mib in (1, 4, 16)}
    per_mib = {k: v / int(k.split()[0]) for k, v in rows.items()}
    return {"seconds": rows, "seconds_per_mib": per_mib}


def run() -> dict[str, Any]:
    """Every figure of this benchmark."""
    return {"throughput": throughput(), "huge_event_1k_reads": linearity()}


def report(results: dict[str, Any]) -> str:
    """The figures as a Markdown section for docs/PERFORMANCE.md."""
    t = results["throughput"]
    lines = [
        "## Decoding: bytes to text deltas",
        "",
        f"A Gloo-shaped stream of {t['events']:,} events ({t['stream_bytes'] / 2**20:.1f} MiB), "
        f"fed in {t['read_size'] // 1024} KiB reads; median of {REPEATS} runs. Each decoder "
        "produces the same list of text deltas (checked).",
        "",
        "| decoder | events/s | seconds | vs OpenAI SDK |",
        "|---|---:|---:|---:|",
    ]
    for name, row in t["decoders"].items():
        lines.append(
            f"| {name} | {row['events_per_second']:,.0f} | {row['seconds']:.3f} "
            f"| {row['x_openai_sdk']:.2f}x |"
        )
    h = results["huge_event_1k_reads"]
    lines += [
        "",
        "One huge `data:` line fed in 1 KiB reads (linear cost: seconds per MiB stays flat):",
        "",
        "| size | seconds | seconds per MiB |",
        "|---|---:|---:|",
    ]
    for size, seconds in h["seconds"].items():
        lines.append(f"| {size} | {seconds:.3f} | {h['seconds_per_mib'][size]:.3f} |")
    lines += ["", "Reproduce: `.venv/bin/python -m benchmarks.decode`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    out = run()
    json.dump(out, sys.stdout, indent=2)
    print()
