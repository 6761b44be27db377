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

MODULES = [
    "decode",
    "client_overhead",
    "proxy_load",
    "tracing_cost",
    "browser_render",
    "resume_memory",
    "fallback_latency",
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
