"""``make bench``: run every benchmark and rewrite docs/PERFORMANCE.md.

Each benchmark module offers ``run() -> dict`` and ``report(dict) -> str`` (a Markdown
section). Everything runs on loopback, bounded in time, and stops by itself.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODULES = [
    "decode",
    "partial_json",
    "client_overhead",
    "proxy_load",
    "relay_profile",
    "tracing_cost",
    "browser_render",
    "resume_memory",
    "fallback_latency",
    "continuation_soak",
    "metrics_scrape",
    "redaction_cost",
]
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "PERFORMANCE.md"
RAW = ROOT / "docs" / "performance.json"


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def headline(raw: dict[str, Any]) -> str:
    """Issue 13's figures in one table: nginx, the proxy before and now, from the same run."""
    from benchmarks import proxy_load as pl

    load, decode = raw["proxy_load"], raw["decode"]["throughput"]["decoders"]
    lines = [
        "## Headline: the proxy beside nginx, before and now",
        "",
        "Every figure of a row comes from the same run (details in the sections below).",
        "",
        "| figure | nginx | proxy before | proxy now | now ÷ nginx | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, nginx, before, now, unit, target in pl.comparison(load):
        lines.append(
            f"| {name} | {pl._fig(nginx, unit)} | {pl._fig(before, unit)} | {pl._fig(now, unit)} "
            f"| {pl._ratio(now, nginx)} | {target} |"
        )
    held = load["held_at_1tps"]
    lines.append(
        f"| most streams held at 1/s (p99 added < {pl.HELD_P99_MS:g} ms) "
        f"| {held.get('nginx', 0):,} "
        f"| {held.get('proxy-before', 0):,} | {held.get('proxy', 0):,} | | 9,000 |"
    )
    before = decode.get("gloo-stream before", {}).get("x_openai_sdk")
    lines += [
        f"| SSE + JSON decode, 100k Gloo-shaped events, 16 KiB reads, vs the OpenAI SDK's "
        f"`SSEDecoder` + `json.loads` | | {'n/a' if before is None else f'{before:.2f}x'} "
        f"| {decode['gloo-stream']['x_openai_sdk']:.2f}x | | >= 6x |",
        "",
    ]
    return "\n".join(lines)


def main(selected: list[str]) -> int:
    """Run the selected benchmarks (all by default) and write the report."""
    # ``--report``: rewrite the report from docs/performance.json without running anything.
    names = [] if selected == ["--report"] else selected or MODULES
    sections: list[str] = []
    raw: dict[str, object] = json.loads(RAW.read_text()) if RAW.exists() else {}
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        results = module.run()
        raw[name] = results
        print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    for name in MODULES:
        if name in raw:
            module = importlib.import_module(f"benchmarks.{name}")
            sections.append(module.report(raw[name]))
    if "proxy_load" in raw and "decode" in raw:
        sections.insert(0, headline(raw))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    header = [
        "# Performance",
        "",
        f"Measured on {machine()}, at commit {commit or 'unknown'}, with `make bench`",
        "(every figure below is a median over repeated runs, and every comparison ran side by",
        "side in the same run). Raw numbers: [performance.json](performance.json).",
        "",
    ]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(header + sections))
    RAW.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
