"""Against the real Gloo API: runs only when credentials are set, skips cleanly otherwise.

The credentials come from the environment (the conftest keeps the developer's GLOO_*
variables for these tests only), never from a ``.env`` file.
"""

from __future__ import annotations

import os

import pytest

from gloo_stream import GlooClient
from kit import clean_settings

HAVE_CREDENTIALS = bool(
    os.environ.get("GLOO_API_KEY")
    or (os.environ.get("GLOO_CLIENT_ID") and os.environ.get("GLOO_CLIENT_SECRET"))
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not HAVE_CREDENTIALS, reason="set GLOO_API_KEY or GLOO_CLIENT_ID/GLOO_CLIENT_SECRET"
    ),
]


def test_a_real_answer_streams_and_completes() -> None:
    with GlooClient(settings=clean_settings()) as client:
        pieces: list[str] = []
        result = client.complete("Say hello in five words.", on_token=pieces.append, max_tokens=40)
    assert result.complete
    assert result.text == "".join(pieces)
    assert result.text.strip()
    assert result.finish_reason in {"stop", "length"}
    assert result.ttft_ms is not None


def test_stream_yields_chunks_as_they_arrive() -> None:
    with (
        GlooClient(settings=clean_settings()) as client,
        client.stream("Count from one to five.", max_tokens=40) as stream,
    ):
        texts = list(stream.text_stream)
    assert stream.result is not None
    assert "".join(texts) == stream.result.text
