"""Shared-limit pieces that need no Redis: URL redaction, StreamSlots with a shared quota."""

from __future__ import annotations

import pytest

from gloo_stream.proxy.failures import ProxyFailure, RequestRefused, too_many_streams
from gloo_stream.proxy.policy.limits import StreamSlots
from gloo_stream.proxy.policy.limits.redis_link import redact_url
from kit import clean_proxy_settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@cache:6379/1", "redis://:***@cache:6379/1"),
        ("rediss://app:hunter2@cache.internal/0", "rediss://app:***@cache.internal/0"),
        ("redis://u:p%40ss@[::1]:6380", "redis://u:***@[::1]:6380"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


class FakeQuota:
    def __init__(self, answer: ProxyFailure | None) -> None:
        self.answer = answer
        self.released: list[str] = []

    async def acquire(self, client: str) -> None:
        if self.answer is not None:
            raise RequestRefused(self.answer)

    def release(self, client: str) -> None:
        self.released.append(client)


async def test_a_shared_refusal_gives_the_local_slot_back() -> None:
    quota = FakeQuota(too_many_streams(2))
    slots = StreamSlots(per_client=2, total=10, shared=quota)
    with pytest.raises(RequestRefused) as refused:
        await slots.admit("a")
    assert refused.value.failure.code == "too_many_streams"
    assert refused.value.limit == "too_many_streams"
    assert slots.open == 0
    assert quota.released == []


async def test_admitted_streams_release_both_counts() -> None:
    quota = FakeQuota(None)
    slots = StreamSlots(per_client=2, total=10, shared=quota)
    await slots.admit("a")
    assert slots.open == 1
    slots.release("a")
    assert slots.open == 0
    assert quota.released == ["a"]


async def test_the_local_caps_answer_before_the_shared_quota_is_asked() -> None:
    quota = FakeQuota(None)
    slots = StreamSlots(per_client=0, total=1, shared=quota)
    await slots.admit("a")
    with pytest.raises(RequestRefused) as full:
        await slots.admit("b")
    assert full.value.failure.status == 503


def test_redis_settings_validate_without_echoing_the_url() -> None:
    with pytest.raises(ValueError, match="redis://") as caught:
        clean_proxy_settings(proxy_redis_url="http://user:hunter2@cache")
    assert "must be a redis://" in str(caught.value)
    settings = clean_proxy_settings(proxy_redis_url=" ")
    assert settings.proxy_redis_url is None
    assert "hunter2" not in repr(
        clean_proxy_settings(proxy_redis_url="redis://:hunter2@cache:6379/0")
    )
