"""Decoding throughput: bytes of a Gloo-shaped stream to text deltas, side by side.

gloo-stream's client path (``SSEDecoder.feed_data`` + msgspec chunk decoding, what
``CompletionProtocol`` runs), its event path (``SSEDecoder.feed`` + ``decode_chunk``), the same
two files as they were before issue 13 (read from git, when the history is there), the OpenAI
Python SDK's SSE decoder + ``json.loads`` (the baseline) and httpx-sse (+ ``json.loads``), on
identical bytes fed in 16 KiB reads; and msgspec alone on the pre-split event data, the floor
of any decoder that builds the same chunks. Also a single huge ``data:`` line fed in 1 KiB
reads at 1, 4 and 16 MiB, to show linear cost.

Timing: process CPU seconds (the benchmark is single-threaded; CPU time is what other load on
the machine disturbs least), the decoders run in alternation round after round, and each
ratio is the median of the per-round ratios to the baseline measured in the same round.

Run: ``.venv/bin/python -m benchmarks.decode`` (prints JSON).
"""

from __future__ import annotations

import codecs
import gc
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from gloo_stream.sse import SSEDecoder
from gloo_stream.wire import decode_chunk

CHUNKS = 100_000
READ = 16 * 1024
ROUNDS = 7
WORDS = ["Hello", " world", ",", " café", " naïve", " →", " 😀", " streaming", " tokens", "\n\n"]
# The last commit before issue 13's decoder work: its sse.py and wire.py are the "before" rows.
BEFORE = "85b7b8f"
ROOT = Path(__file__).resolve().parent.parent


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
    """gloo-stream's client path: SSEDecoder.feed_data + wire.decode_chunk + chunk.content."""
    decoder = SSEDecoder()
    out: list[str] = []
    append = out.append
    for block in reads(data, size):
        for item in decoder.feed_data(block):
            if isinstance(item, bytes):
                if item != b"[DONE]":
                    append(decode_chunk(item).content)
            elif item.data != "[DONE]":
                append(decode_chunk(item.data).content)
    decoder.close()
    return out


def ours_events(data: bytes, size: int, sse: Any = None, wire: Any = None) -> list[str]:
    """gloo-stream's event path: SSEDecoder.feed (ServerSentEvent, str data) + decode_chunk."""
    decoder = (sse.SSEDecoder if sse else SSEDecoder)()
    decode = wire.decode_chunk if wire else decode_chunk
    out: list[str] = []
    append = out.append
    for block in reads(data, size):
        for event in decoder.feed(block):
            if event.data != "[DONE]":
                append(decode(event.data).content)
    decoder.close()
    return out


def before_issue_13() -> tuple[Any, Any] | None:
    """The sse and wire modules as they were at ``BEFORE``, or None without the git history."""
    modules = []
    for name in ("sse", "wire"):
        try:
            source = subprocess.run(
                ["git", "show", f"{BEFORE}:src/gloo_stream/{name}.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        module = types.ModuleType(f"_before_{name}")
        # msgspec resolves a struct's annotations through sys.modules: register it first.
        sys.modules[module.__name__] = module
        exec(compile(source, f"{BEFORE}:{name}.py", "exec"), module.__dict__)
        modules.append(module)
    return modules[0], modules[1]


def msgspec_alone(payloads: list[bytes]) -> list[str]:
    """msgspec decoding each event's data, already split out: no SSE work at all."""
    return [decode_chunk(p).content for p in payloads if p != b"[DONE]"]


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


def cpu_time(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Process CPU seconds for one call, with the GC paused as in a steady state."""
    gc.collect()
    gc.disable()
    started = time.process_time()
    result = fn()
    seconds = time.process_time() - started
    gc.enable()
    return seconds, result


def timed(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, Any]:
    """Median CPU seconds over ``repeats`` calls."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeats):
        seconds, result = cpu_time(fn)
        times.append(seconds)
    return statistics.median(times), result


def decoders(data: bytes) -> dict[str, Callable[[], list[str]]]:
    """Every decoder of the comparison, as a call on the same bytes."""
    payloads = [b[6:] for b in data.split(b"\n\n") if b]
    rows: dict[str, Callable[[], list[str]]] = {
        "gloo-stream": lambda: ours(data, READ),
        "gloo-stream events": lambda: ours_events(data, READ),
    }
    before = before_issue_13()
    if before is not None:
        rows["gloo-stream before"] = lambda: ours_events(data, READ, *before)
    rows["openai-sdk"] = lambda: openai_sdk(data, READ)
    rows["httpx-sse"] = lambda: httpx_sse(data, READ)
    rows["msgspec alone"] = lambda: msgspec_alone(payloads)
    return rows


def throughput() -> dict[str, Any]:
    """Events per second for each decoder on the same 100,000-chunk stream, in alternation."""
    data = gloo_stream_bytes()
    calls = decoders(data)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    expected: list[str] | None = None
    for _ in range(ROUNDS):
        for name, call in calls.items():
            spent, texts = cpu_time(call)
            texts = [t for t in texts if t]
            expected = expected or texts
            assert texts == expected, f"{name} decoded different text"
            seconds[name].append(spent)
    events = CHUNKS + 2
    rows: dict[str, Any] = {}
    for name, times in seconds.items():
        ratios = [base / t for base, t in zip(seconds["openai-sdk"], times, strict=True)]
        rows[name] = {
            "seconds": statistics.median(times),
            "events_per_second": events / statistics.median(times),
            "x_openai_sdk": statistics.median(ratios),
        }
    return {
        "stream_bytes": len(data),
        "events": events,
        "read_size": READ,
        "rounds": ROUNDS,
        "openai_version": metadata.version("openai"),
        "decoders": rows,
    }


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


DESCRIPTIONS = {
    "gloo-stream": "`SSEDecoder.feed_data` + `decode_chunk` (the client's path)",
    "gloo-stream events": "`SSEDecoder.feed` + `decode_chunk` (`ServerSentEvent`s with text data)",
    "gloo-stream before": f"the same, `sse.py` + `wire.py` at {BEFORE} (before issue 13)",
    "openai-sdk": "the OpenAI SDK's `SSEDecoder` + `json.loads` per event (the baseline)",
    "httpx-sse": "httpx-sse's decoders + `json.loads` per event",
    "msgspec alone": "`decode_chunk` on the event data split out beforehand (no SSE at all)",
}


def report(results: dict[str, Any]) -> str:
    """The figures as a Markdown section for docs/PERFORMANCE.md."""
    t = results["throughput"]
    lines = [
        "## Decoding: bytes to text deltas",
        "",
        f"A Gloo-shaped stream of {t['events']:,} events ({t['stream_bytes'] / 2**20:.1f} MiB), "
        f"fed in {t['read_size'] // 1024} KiB reads; CPU time, median of {t['rounds']} rounds "
        "in which every decoder ran in turn; each ratio is the median of the per-round ratios "
        f"to the baseline (openai {t['openai_version']}). Each decoder produces the same list "
        "of text deltas (checked).",
        "",
        "| decoder | what runs | events/s | seconds | vs OpenAI SDK |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in t["decoders"].items():
        lines.append(
            f"| {name} | {DESCRIPTIONS.get(name, '')} | {row['events_per_second']:,.0f} "
            f"| {row['seconds']:.3f} | {row['x_openai_sdk']:.2f}x |"
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
