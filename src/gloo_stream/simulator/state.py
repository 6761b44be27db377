"""SimulatorState: counters, issued tokens and faults, shared by the app and test threads."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from gloo_stream.simulator.config import SimulatorConfig
from gloo_stream.simulator.faults import Fault, FaultQueue

_REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization"})


class SimulatorState:
    """Everything mutable about one simulator app (``app.state.simulator``).

    Every method takes a lock, because tests call ``stats()``/``push_fault()`` from their own
    thread while the server's event loop updates the counters.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._faults = FaultQueue()
        self._tokens: dict[str, float] = {}
        self._api_keys = frozenset(config.api_keys)
        self._streams_open = 0
        self._cuts = random.Random(config.seed)
        self._zero()

    def _zero(self) -> None:
        self._requests = 0
        self._token_requests = 0
        self._streams_started = 0
        self._streams_closed = 0
        self._last_request: Any = None
        self._last_headers: dict[str, str] | None = None
        self._last_path: str | None = None

    # -- counters ---------------------------------------------------------------------------

    def record_request(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Count a completions request and remember its headers (credentials redacted)."""
        seen: dict[str, str] = {}
        for raw_name, raw_value in headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name in _REDACTED_HEADERS:
                value = _redact(value)
            seen[name] = f"{seen[name]}, {value}" if name in seen else value
        with self._lock:
            self._requests += 1
            self._last_headers = seen

    def record_body(self, body: Any, path: str | None = None) -> None:
        """Remember the last completions body (None when it was not valid JSON) and path."""
        with self._lock:
            self._last_request = body
            self._last_path = path

    def stream_started(self) -> None:
        """A streaming response has begun (headers may not be sent yet)."""
        with self._lock:
            self._streams_started += 1
            self._streams_open += 1

    def stream_closed(self) -> None:
        """A streaming response has ended, whatever the reason; always paired with a start."""
        with self._lock:
            self._streams_closed += 1
            self._streams_open -= 1

    def stats(self) -> dict[str, Any]:
        """A consistent snapshot of the counters (the body of ``GET /_sim/stats``)."""
        with self._lock:
            return {
                "requests": self._requests,
                "token_requests": self._token_requests,
                "streams_started": self._streams_started,
                "streams_open": self._streams_open,
                "streams_closed": self._streams_closed,
                "last_request": self._last_request,
                "last_headers": dict(self._last_headers) if self._last_headers else None,
                "last_path": self._last_path,
                "faults_pending": self._faults.pending(),
            }

    def reset(self) -> None:
        """Zero the counters and drop queued faults; ``streams_open`` stays live and exact."""
        with self._lock:
            self._zero()
            self._faults.clear()

    # -- faults -----------------------------------------------------------------------------

    def push_faults(self, faults: Iterable[Fault | dict[str, Any]]) -> None:
        """Validate all the faults first, then queue them, so a bad one queues nothing."""
        parsed = [Fault.from_dict(fault) for fault in faults]
        with self._lock:
            for fault in parsed:
                self._faults.push(fault)

    def take_fault(self) -> Fault | None:
        """The queued fault for the request being served, if any."""
        with self._lock:
            return self._faults.take()

    def random_cut(self, tokens: int) -> Fault | None:
        """With ``cut_fraction``: a fault cutting this answer once at a random token in a
        random style (Signal A, drop, stall, end without finish), else None."""
        config = self.config
        with self._lock:
            rng = self._cuts
            if rng.random() >= config.cut_fraction:
                return None
            kind = rng.choice(("error", "disconnect", "stall", "truncate"))
            after = rng.randint(1, max(1, tokens - 1))
        return Fault(kind=kind, after=after, duration=config.cut_stall)  # type: ignore[arg-type]

    # -- credentials ------------------------------------------------------------------------

    def issue_token(self) -> str:
        """Return a fresh opaque access token, valid for ``token_lifetime`` seconds."""
        token = "sim-at-" + secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 10_000:
                # Benchmarks may fetch many tokens; forget the expired ones now and then.
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.config.token_lifetime
        return token

    def count_token_request(self) -> None:
        """Count a request to the token endpoint, successful or not."""
        with self._lock:
            self._token_requests += 1

    def bearer_is_valid(self, credential: str) -> bool:
        """Is this an API key or an issued, unexpired access token?"""
        if credential in self._api_keys:
            return True
        with self._lock:
            expires = self._tokens.get(credential)
        return expires is not None and time.monotonic() < expires


def _redact(value: str) -> str:
    scheme, _, secret = value.partition(" ")
    return f"{scheme} ***" if secret else "***"
