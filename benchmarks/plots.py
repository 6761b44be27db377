"""PNG plots for docs/PERFORMANCE.md (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.relays import RELAY_NAMES

DOCS = Path(__file__).resolve().parent.parent / "docs"
COLORS = {"proxy": "#1f77b4", "proxy-asyncio": "#9ecae1", "nginx": "#2ca02c", "tutorial": "#d62728"}


def relay_plots(results: dict[str, Any]) -> list[Path]:
    """Added p99 latency against streams, and CPU per chunk, for every relay."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    kinds = [k for k in results["summary"] if k != "proxy-asyncio"]
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in kinds:
        points: dict[int, list[float]] = {}
        for r in results["fast"]:
            if kind in r:
                points.setdefault(r["streams"], []).append(r[kind]["added_p99_ms"])
        xs = sorted(points)
        ys = [sorted(points[x])[len(points[x]) // 2] for x in xs]
        ax.plot(xs, ys, marker="o", label=RELAY_NAMES[kind], color=COLORS.get(kind))
    ax.axhline(2.0, color="grey", linestyle="--", linewidth=1, label="target (2 ms)")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent streams (10 tokens/s each)")
    ax.set_ylabel("added p99 latency per chunk (ms)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = DOCS / "proxy_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 3))
    names, values = [], []
    for kind, s in results["summary"].items():
        if s["cpu_us_per_chunk"] is not None:
            names.append(RELAY_NAMES[kind])
            values.append(s["cpu_us_per_chunk"])
    ax.barh(names, values, color=[COLORS.get(k) for k in results["summary"]][: len(names)])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.0f} µs", va="center")
    ax.set_xlabel(f"CPU per relayed chunk (µs), {results['headline_streams']:,} streams x 10/s")
    ax.invert_yaxis()
    ax.set_xlim(0, max(values, default=1) * 1.25)
    fig.tight_layout()
    path = DOCS / "proxy_cpu.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
