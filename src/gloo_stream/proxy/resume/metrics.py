"""The resume counters, registered in the app's own Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ResumeMetrics"]


class ResumeMetrics:
    """Resumes, replayed events, expiries and cancels of resumable answers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.resumes = Counter(
            "gloo_proxy_resumes",
            "GET /api/stream/{id}, by outcome: resumed, not_found (unknown, expired or "
            "another caller's), ahead (Last-Event-ID past the last event), gap (events no "
            "longer buffered), lost (its replica went away), "
            "unavailable (the store did not answer)",
            ["outcome"],
            registry=registry,
        )
        self.replayed = Counter(
            "gloo_proxy_resume_replayed_events",
            "Events sent again from the resume buffer (already generated when the caller "
            "came back)",
            registry=registry,
        )
        self.followed = Counter(
            "gloo_proxy_resume_followed_events",
            "Events a resumed caller got live, after the replay",
            registry=registry,
        )
        self.expired = Counter(
            "gloo_proxy_resume_expired",
            "Answers cancelled upstream because nobody came back within PROXY_RESUME_WINDOW",
            registry=registry,
        )
        self.cancelled = Counter(
            "gloo_proxy_resume_cancelled",
            "Answers stopped by DELETE /api/stream/{id}",
            registry=registry,
        )
        self.live = Gauge(
            "gloo_proxy_resumable_streams",
            "Resumable answers this process is generating now",
            registry=registry,
        )
