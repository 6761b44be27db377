"""The page's SSE parser (static/sse.js), run in Chromium against the Python decoder.

``gloo_stream.sse.SSEDecoder`` is the reference: every case here is fed to both, split into
reads at every byte position (and a byte at a time), and the events must be identical.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from gloo_stream.sse import SSEDecoder

pytestmark = pytest.mark.browser

BOM = b"\xef\xbb\xbf"
EMOJI = "h\u00e9llo \u20ac \U0001f600 \u4f60\u597d".encode()

CASES: dict[str, bytes] = {
    "lf": b"data: a\n\ndata: b\n\n",
    "crlf": b"data: a\r\n\r\ndata: b\r\n\r\n",
    "cr": b"data: a\r\rdata: b\r\r",
    "mixed line ends": b"data: a\r\ndata: b\rdata: c\n\r\n",
    "lf cr is two line ends": b"data: a\n\rdata: b\n\n",
    "multi-line data": b"data: YHOO\ndata: +2\ndata: 10\n\n",
    "comments and heartbeats": b": heartbeat\n\n:\ndata: x\n: mid-event\n\n",
    "empty data": b"data\n\ndata:\ndata:\n\n",
    "no space after colon": b"data:x\n\ndata:  two spaces\n\n",
    "colon in value": b"data: a: b: c\n\n",
    "event types": (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent:\ndata: m\n\n"
    ),
    "error event": b'event: error\ndata: {"error": {"message": "boom", "code": "x"}}\n\n',
    "ids": b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: a\x00b\ndata: d\n\n",
    "retry": b"retry: 1500\ndata: a\n\nretry: x1\ndata: b\n\nretry: 0\n\n",
    "field names are case sensitive": b"Data: no\nDATA: no\ndata: yes\n\n",
    "unknown fields": b"foo: bar\ndata: x\nbaz\n\n",
    "bom at start": BOM + b"data: x\n\n",
    "only one bom": BOM + BOM + b"data: x\n\n",
    "bom-like prefix": b"\xef\xbbdata: x\n\n",
    "multibyte": b"data: " + EMOJI + b"\n\n",
    "invalid utf-8": b"data: a\xffb\xc3\n\n",
    "truncated multibyte before line end": b"data: \xe2\x82\ndata: \xf0\x9f\x98\n\n",
    "unfinished event is discarded": b"data: a\n\ndata: never dispatched\n",
    "unterminated line is discarded": b"data: a\n\ndata: b",
    "blank lines only": b"\n\n\r\n\r\r\ndata: x\n\n\n\n",
    "done sentinel": b'data: {"choices":[]}\n\ndata: [DONE]\n\n',
    "gloo chunks": (
        b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9"},"finish_reason":null}]}\n\n'
        b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    ),
    "nul in data": b"data: a\x00b\n\n",
}

RUN_IN_PAGE = """
async (cases) => {
  const { SSEParser } = await import('/static/sse.js');
  const out = {};
  for (const [name, reads] of Object.entries(cases)) {
    out[name] = reads.map((split) => {
      const parser = new SSEParser();
      const events = [];
      for (const read of split) events.push(...parser.feed(new Uint8Array(read)));
      events.push(...parser.close());
      return { events, retry: parser.retry, lastEventId: parser.lastEventId };
    });
  }
  return out;
}
"""


def reference(reads: list[bytes]) -> dict[str, Any]:
    """What the Python decoder makes of the same reads."""
    decoder = SSEDecoder()
    events = [event for read in reads for event in decoder.feed(read)]
    events += decoder.close()
    return {
        "events": [
            {"event": e.event, "data": e.data, "id": e.id, "retry": e.retry} for e in events
        ],
        "retry": decoder.retry,
        "lastEventId": decoder.last_event_id,
    }


def splits(stream: bytes) -> list[list[bytes]]:
    """The whole stream, every two-way split, and one byte per read."""
    out = [[stream]]
    out += [[stream[:cut], stream[cut:]] for cut in range(1, len(stream))]
    out.append([stream[i : i + 1] for i in range(len(stream))])
    return out


def run_in_page(page: Any, cases: dict[str, list[list[bytes]]]) -> dict[str, Any]:
    as_lists = {name: [[list(read) for read in split] for split in v] for name, v in cases.items()}
    return dict(page.evaluate(RUN_IN_PAGE, as_lists))


def test_page_parser_matches_the_python_decoder_on_every_split(fast_chat: Any) -> None:
    cases = {name: splits(stream) for name, stream in CASES.items()}
    results = run_in_page(fast_chat.page, cases)
    for name, per_split in cases.items():
        for split, got in zip(per_split, results[name], strict=True):
            assert got == reference(split), (name, split)


def test_page_parser_spot_checks(fast_chat: Any) -> None:
    # A few expectations spelled out, so the test does not only say "same as Python".
    results = run_in_page(
        fast_chat.page,
        {
            "crlf split": [[b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]],
            "emoji split": [[b"data: \xf0\x9f", b"\x98\x80\n\n"]],
            "multi-line": [[b"data: one\ndata: two\n\n"]],
            "error": [[b'event: error\ndata: {"error":{}}\n\n']],
        },
    )
    assert [e["data"] for e in results["crlf split"][0]["events"]] == ["a", "b"]
    assert results["emoji split"][0]["events"][0]["data"] == "\U0001f600"
    assert results["multi-line"][0]["events"][0]["data"] == "one\ntwo"
    assert results["error"][0]["events"][0]["event"] == "error"


def test_page_parser_matches_on_random_streams(fast_chat: Any) -> None:
    rng = random.Random(1234)
    pieces = [
        b"data:", b"data: ", b"event: e", b"id: 7", b"retry: 30", b": c", b"x", b"\xc3\xa9",
        EMOJI, b"\r", b"\n", b"\r\n", b"\n\n", b"\xff", BOM, b":", b" ",
    ]  # fmt: skip
    cases: dict[str, list[list[bytes]]] = {}
    for n in range(150):
        stream = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 6))))
        bounds = [0, *cuts, len(stream)]
        reads = [stream[a:b] for a, b in itertools.pairwise(bounds)]
        cases[f"random {n}"] = [reads]
    results = run_in_page(fast_chat.page, cases)
    for name, (reads,) in cases.items():
        assert results[name][0] == reference(reads), (name, reads)
