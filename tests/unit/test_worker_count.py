"""``gloo-stream proxy --workers``: a number from 1, or auto for one worker per CPU core."""

from __future__ import annotations

import os

import pytest

from gloo_stream.cli.servers import worker_count


def test_auto_is_one_worker_per_core_this_process_may_use() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(" AUTO ") == worker_count("auto")


@pytest.mark.parametrize(("text", "count"), [("1", 1), ("2", 2), ("16", 16)])
def test_a_number_is_that_many(text: str, count: int) -> None:
    assert worker_count(text) == count


@pytest.mark.parametrize("text", ["0", "-1", "two", "", "1.5"])
def test_anything_else_is_refused(text: str) -> None:
    assert worker_count(text) is None
