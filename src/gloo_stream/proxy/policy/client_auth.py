"""Who the caller is: client keys, and a limit on wrong keys per caller address.

A wrong key is counted against the address it came from (IPv6 callers by their /64, which
one host is usually given whole). Past ``PROXY_AUTH_FAILURE_LIMIT`` the address gets a 429
with ``Retry-After`` before any key it sends is checked, so keys cannot be guessed at the
speed of the network. A request with no key at all is not counted: it guesses nothing. The
same check, with the metrics key accepted too, guards ``/metrics``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import Scope, header
from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.observe.metrics import ProxyMetrics
from gloo_stream.proxy.policy.limits import FailureCounter, RateDecision

__all__ = ["ClientAuth", "caller_address", "is_loopback_address"]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def caller_address(scope: Scope) -> str:
    """What failures are counted against: the caller's IPv4 address, or its IPv6 /64."""
    host = _host(scope)
    ip = _ip(host)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip) if ip is not None else host


def is_loopback_address(scope: Scope) -> bool:
    """True when the caller connected from this machine."""
    ip = _ip(_host(scope))
    return ip is not None and ip.is_loopback


def _blocked(decision: RateDecision) -> RequestRefused:
    return RequestRefused(failures.too_many_auth_failures(decision.retry_after))


class ClientAuth:
    """Checks ``Authorization: Bearer <key>`` when keys are configured.

    The identity used for limits and logs is a short hash of the key (never the key), or
    the caller's IP address when the proxy runs without keys. ``failures`` counts wrong
    keys per address; ``metrics`` counts every refusal.
    """

    def __init__(
        self,
        keys: frozenset[str],
        *,
        metrics_keys: frozenset[str] = frozenset(),
        metrics_from_loopback: bool = False,
        failures: FailureCounter | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self._keys = _encoded(keys)
        self._metrics_keys = _encoded(keys | metrics_keys)
        self._metrics_from_loopback = metrics_from_loopback
        self._failures = failures
        self._metrics = metrics

    def identify(self, scope: Scope) -> str:
        """The caller's identity; raises ``RequestRefused`` (401) for a missing or wrong key.

        Counts nothing: ``admit`` is the throttled form the routes use.
        """
        if not self._keys:
            client = scope.get("client")
            return f"ip:{client[0]}" if client else "ip:unknown"
        token = _presented(scope)
        _match(token, self._keys)
        return "key:" + hashlib.sha256(token).hexdigest()[:12]

    async def admit(self, scope: Scope) -> str:
        """``identify``, with wrong keys counted and a blocked address refused first (429)."""
        if not self._keys:
            return self.identify(scope)
        token = await self._throttled(scope, self._keys)
        return "key:" + hashlib.sha256(token).hexdigest()[:12]

    @property
    def metrics_need_key(self) -> bool:
        """True when ``/metrics`` needs a key (client keys or a metrics key are set)."""
        return bool(self._metrics_keys)

    def metrics_open_to(self, scope: Scope) -> bool:
        """True when this caller may read ``/metrics`` without any key."""
        if not self._metrics_keys:
            return True
        return self._metrics_from_loopback and is_loopback_address(scope)

    async def admit_metrics(self, scope: Scope) -> None:
        """Refuse a scrape of ``/metrics`` without a metrics or client key (when keys exist)."""
        if not self.metrics_open_to(scope):
            await self._throttled(scope, self._metrics_keys)

    async def _throttled(self, scope: Scope, keys: list[bytes]) -> bytes:
        address = "auth:" + caller_address(scope)
        failures = self._failures
        if failures is not None:
            decision = await failures.peek(address)
            if not decision.allowed:
                self._count("blocked")
                raise _blocked(decision)
        try:
            token = _presented(scope)
            _match(token, keys)
        except RequestRefused as exc:
            code = exc.failure.code
            self._count(code)
            if code == "invalid_api_key" and failures is not None:
                decision = await failures.hit(address)
                if not decision.allowed:  # one too many, at the same moment as others
                    self._count("blocked")
                    raise _blocked(decision) from None
            raise
        return token

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.auth_failures.labels(outcome).inc()
            if outcome == "blocked":
                self._metrics.limited.labels("auth_failures").inc()


def _encoded(keys: Iterable[str]) -> list[bytes]:
    return [k.encode() for k in sorted(keys) if k]


def _presented(scope: Scope) -> bytes:
    value = header(scope, b"authorization") or b""
    scheme, _, token = value.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise RequestRefused(failures.missing_api_key())
    return token


def _match(token: bytes, keys: list[bytes]) -> None:
    # Compare against every key so the time taken does not tell which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(key, token)
    if not matched:
        raise RequestRefused(failures.invalid_api_key())
