"""Partial JSON: the cost per token of reading a JSON answer as it grows (issue 26).

A structured answer arrives in ~4-character fragments; after each one, ``json_stream`` hands
over the most complete object so far. Three ways of doing that, on the same fragments of a
2 KB and a 20 KB answer:

- **jiter partial mode** (``jiter.from_json(text, partial_mode="trailing-strings")``) on the
  whole text so far: what ``gloo_stream.structured.PartialJson`` adopts;
- **incremental closer + json.loads**: this benchmark's own parser, which scans only the new
  characters (keeping the open brackets, strings and the last safe cut), then ``json.loads``
  of the text cut there and closed;
- **close the whole text + json.loads** at every token: scan the whole text so far in Python
  to close it, then ``json.loads``: the naive baseline.

Timing: process CPU seconds over every fragment of the answer, best of ``ROUNDS`` rounds,
divided by the number of fragments (µs per token). Each way's final object is checked to be
the whole answer.

Run: ``.venv/bin/python -m benchmarks.partial_json`` (prints JSON); ``make bench`` runs it too.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import jiter

ROUNDS = 5
FRAGMENT = 4
SIZES = {"2 KB": 2_000, "20 KB": 20_000}


def answer_of(size: int) -> str:
    """A JSON answer of about ``size`` bytes: nested objects, lists, numbers and strings."""
    items: list[dict[str, Any]] = []
    i = 0
    while len(json.dumps({"items": items})) < size:
        items.append(
            {
                "id": i,
                "title": f"Item number {i}: café, naïve → done",
                "score": i * 1.5,
                "tags": ["alpha", "beta", f"t{i}"],
                "ok": i % 2 == 0,
                "note": None,
            }
        )
        i += 1
    return json.dumps({"items": items, "total": i}, ensure_ascii=False)


def fragments(text: str) -> list[str]:
    """The answer in ``FRAGMENT``-character pieces, as a model streams it."""
    return [text[i : i + FRAGMENT] for i in range(0, len(text), FRAGMENT)]


# -- the three ways ------------------------------------------------------------------------


def with_jiter(pieces: list[str]) -> Any:
    """jiter's partial mode over the whole text so far, at every piece."""
    text = ""
    value: Any = None
    for piece in pieces:
        text += piece
        value = jiter.from_json(text.encode(), partial_mode="trailing-strings")
    return value


class IncrementalCloser:
    """Scans each new character once; ``closed()`` is the text cut at a safe point and closed.

    Safe points: right after an opening bracket, after a whole value inside a container. A
    value string being written is kept (closed with a quote); a key, a number or a literal
    being written is cut off.
    """

    def __init__(self) -> None:
        self.text = ""
        self.stack: list[str] = []
        self.in_string = False
        self.escape = False
        self.string_is_key = False
        self.string_start = 0
        self.safe = 0
        self.safe_depth = 0
        self.expect_key = False
        self.scalar_start = -1

    def feed(self, piece: str) -> None:
        """Scan the new characters."""
        start = len(self.text)
        self.text += piece
        for offset, char in enumerate(piece):
            self._char(start + offset, char)

    def _mark(self, at: int) -> None:
        self.safe, self.safe_depth = at, len(self.stack)

    def _char(self, at: int, char: str) -> None:
        if self.in_string:
            if self.escape:
                self.escape = False
            elif char == "\\":
                self.escape = True
            elif char == '"':
                self.in_string = False
                if not self.string_is_key:
                    self._mark(at + 1)
            return
        if self.scalar_start >= 0 and char in ",]} \n\t\r":
            self.scalar_start = -1
            self._mark(at)
        if char == '"':
            self.in_string, self.string_start = True, at
            self.string_is_key = bool(self.stack) and self.stack[-1] == "{" and self.expect_key
            self.expect_key = False
        elif char in "{[":
            self.stack.append(char)
            self.expect_key = char == "{"
            self._mark(at + 1)
        elif char in "}]":
            self.stack.pop()
            self._mark(at + 1)
        elif char == ",":
            self.expect_key = bool(self.stack) and self.stack[-1] == "{"
        elif char not in ": \n\t\r" and self.scalar_start < 0:
            self.scalar_start = at

    def closed(self) -> str:
        """The text so far as whole JSON."""
        closers = "".join("}" if c == "{" else "]" for c in reversed(self.stack))
        if self.in_string and not self.string_is_key and not self.escape:
            return self.text + '"' + closers
        kept = self.stack[: self.safe_depth]
        return self.text[: self.safe] + "".join("}" if c == "{" else "]" for c in reversed(kept))


def with_incremental_closer(pieces: list[str]) -> Any:
    """The own parser: scan the new characters, ``json.loads`` the closed text."""
    closer = IncrementalCloser()
    value: Any = None
    for piece in pieces:
        closer.feed(piece)
        closed = closer.closed()
        if closed:
            value = json.loads(closed)
    return value


def with_whole_rescan(pieces: list[str]) -> Any:
    """The baseline: scan and close the whole text so far, ``json.loads`` it, every piece."""
    text = ""
    value: Any = None
    for piece in pieces:
        text += piece
        closer = IncrementalCloser()
        closer.feed(text)
        closed = closer.closed()
        if closed:
            value = json.loads(closed)
    return value


WAYS: dict[str, Callable[[list[str]], Any]] = {
    "jiter partial mode": with_jiter,
    "incremental closer + json.loads": with_incremental_closer,
    "close whole text + json.loads": with_whole_rescan,
}


def _cpu(way: Callable[[list[str]], Any], pieces: list[str]) -> tuple[float, Any]:
    started = time.process_time()
    value = way(pieces)
    return time.process_time() - started, value


def run() -> dict[str, Any]:
    """µs of CPU per token for each way and each answer size."""
    results: dict[str, Any] = {"fragment_chars": FRAGMENT, "rounds": ROUNDS, "sizes": {}}
    for label, size in SIZES.items():
        text = answer_of(size)
        pieces = fragments(text)
        whole = json.loads(text)
        best: dict[str, float] = {}
        for _ in range(ROUNDS):
            for name, way in WAYS.items():
                seconds, value = _cpu(way, pieces)
                if value != whole:
                    raise AssertionError(f"{name} did not end with the whole answer")
                best[name] = min(best.get(name, float("inf")), seconds)
        results["sizes"][label] = {
            "bytes": len(text.encode()),
            "tokens": len(pieces),
            "us_per_token": {name: s / len(pieces) * 1e6 for name, s in best.items()},
        }
    return results


def report(raw: dict[str, Any]) -> str:
    """The Markdown section for docs/PERFORMANCE.md."""
    lines = [
        "## Partial JSON: cost per token of a structured answer as it grows",
        "",
        f"Fragments of {raw['fragment_chars']} characters; CPU µs per token, best of "
        f"{raw['rounds']} rounds (`benchmarks/partial_json.py`).",
        "",
        "| answer | tokens | " + " | ".join(WAYS) + " |",
        "|---|---|" + "---|" * len(WAYS),
    ]
    for label, row in raw["sizes"].items():
        cells = " | ".join(f"{row['us_per_token'][name]:.1f}" for name in WAYS)
        lines.append(f"| {label} ({row['bytes']} B) | {row['tokens']} | {cells} |")
    return "\n".join(lines) + "\n"


def _main(argv: Iterator[str]) -> None:
    del argv
    raw = run()
    print(json.dumps(raw, indent=2))
    print(report(raw))


if __name__ == "__main__":
    _main(iter(sys.argv[1:]))
