"""PNG plots for docs/PERFORMANCE.md (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.relays import RELAY_NAMES

DOCS = Path(__file__).resolve().parent.parent / "docs"
COLORS = {
    "proxy": "#1f77b4",
    "proxy-before": "#9ecae1",
    "proxy-2w": "#17becf",
    "proxy-asyncio": "#c7c7c7",
    "nginx": "#2ca02c",
    "tutorial": "#d62728",
}


def relay_plots(results: dict[str, Any]) -> list[Path]:
    """Added p99 latency against streams, and CPU per chunk, for every relay."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    kinds = [k for k in ("proxy", "proxy-before", "nginx") if k in results["summary"]]
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in kinds:
        xs = [r["streams"] for r in results["slow"] if kind in r]
        ys = [r[kind]["p99_ms"] for r in results["slow"] if kind in r]
        ax.plot(xs, ys, marker="o", label=RELAY_NAMES[kind], color=COLORS.get(kind))
    direct = [(r["streams"], r["direct"]["p99_ms"]) for r in results["slow"]]
    ax.plot(*zip(*direct, strict=True), linestyle=":", color="grey", label="direct (no relay)")
    ax.axhline(50.0, color="grey", linestyle="--", linewidth=1, label="50 ms")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent streams (1 token/s each)")
    ax.set_ylabel("p99 latency per event (ms)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = DOCS / "proxy_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    cpu = cpu_plot(plt, results)
    if cpu is not None:
        written.append(cpu)
    return written


def cpu_plot(plt: Any, results: dict[str, Any]) -> Path | None:
    """CPU per relayed event and per request (solved from two counts of events per stream),
    each relay beside nginx; falls back to CPU per chunk when no split was measured."""
    summary = results["summary"]
    kinds = [k for k in summary if summary[k].get("cpu_us_per_event") is not None]
    short = all(summary[k].get("cpu_us_per_short_request") is not None for k in kinds)
    panels = [
        ("cpu_us_per_event", "CPU per relayed event (µs)"),
        (
            ("cpu_us_per_short_request", "CPU per request (µs), one-token answers")
            if short
            else ("cpu_us_per_request", "CPU per request (µs)")
        ),
    ]
    if not kinds:
        kinds = [k for k in summary if summary[k].get("cpu_us_per_chunk")]
        panels = [("cpu_us_per_chunk", "CPU per relayed chunk (µs)")]
    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 0.5 * len(kinds) + 1.5))
    axes = axes if len(panels) > 1 else [axes]
    names = [RELAY_NAMES.get(k, k) for k in kinds]
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = [summary[k][key] or 0.0 for k in kinds]
        ax.barh(names, values, color=[COLORS.get(k) for k in kinds])
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.0f}", va="center")
        ax.set_xlabel(label)
        ax.set_xlim(0, max(values, default=1) * 1.3)
        ax.invert_yaxis()
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.suptitle(f"{results['headline_streams']:,} streams x 10 tokens/s", fontsize=10)
    fig.tight_layout()
    path = DOCS / "proxy_cpu.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
