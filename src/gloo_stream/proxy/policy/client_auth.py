"""Who the caller is: client keys, and a limit on wrong keys per caller address.

A wrong key is counted against the address it came from (IPv6 callers by their /64, which
one host is usually given whole). Past ``PROXY_AUTH_FAILURE_LIMIT`` the address gets a 429
with ``Retry-After`` before any key it sends is checked, so keys cannot be guessed at the
speed of the network. A request with no key at all is not counted: it guesses nothing. The
same check guards ``/metrics``, with the operator's metrics key (and client keys only when
``PROXY_METRICS_ALLOW_CLIENT_KEYS`` says so: the metrics show every tenant's usage).

A client key is known by a keyed hash of it (HMAC-SHA256 under ``PROXY_CLIENT_LABEL_SECRET``,
else a secret derived from every key and credential the deployment holds, so the same on
every replica): a tenant who reads another's label cannot test key guesses against it.
Callers known by address are counted by their address, an IPv6 caller by its /64, for
every per-address limit alike.
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
from gloo_stream.proxy.settings import ProxySettings


def label_secret(settings: ProxySettings) -> bytes:
    """The key of the hash that names client keys: ``PROXY_CLIENT_LABEL_SECRET``, else one
    derived from every key and credential in ``settings`` (equal on equal replicas)."""
    if settings.proxy_client_label_secret is not None:
        return settings.proxy_client_label_secret.get_secret_value().encode()
    held = sorted(settings.api_keys | settings.metrics_keys)
    for secret in (settings.gloo_api_key, settings.gloo_client_secret):
        if secret is not None:
            held.append(secret.get_secret_value())
    return hashlib.sha256("\0".join(["gloo-proxy-client-label", *held]).encode()).digest()


__all__ = ["ClientAuth", "caller_address", "is_loopback_address", "label_secret"]


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
        metrics_client_keys: bool = False,
        failures: FailureCounter | None = None,
        metrics: ProxyMetrics | None = None,
        secret: bytes = b"",
    ) -> None:
        self._keys = _encoded(keys)
        self._metrics_keys = _encoded(keys | metrics_keys if metrics_client_keys else metrics_keys)
        self._metrics_guarded = bool(keys or metrics_keys)
        self._metrics_from_loopback = metrics_from_loopback
        self._failures = failures
        self._metrics = metrics
        self._secret = secret

    @classmethod
    def from_settings(
        cls,
        settings: ProxySettings,
        failures: FailureCounter | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> ClientAuth:
        """The client auth ``settings`` ask for."""
        return cls(
            settings.api_keys,
            metrics_keys=settings.metrics_keys,
            metrics_from_loopback=settings.proxy_metrics_allow_loopback,
            metrics_client_keys=settings.proxy_metrics_allow_client_keys,
            failures=failures,
            metrics=metrics,
            secret=label_secret(settings),
        )

    def _name(self, token: bytes) -> str:
        return "key:" + hmac.new(self._secret, token, hashlib.sha256).hexdigest()[:16]

    def identify(self, scope: Scope) -> str:
        """The caller's identity; raises ``RequestRefused`` (401) for a missing or wrong key.

        Counts nothing: ``admit`` is the throttled form the routes use.
        """
        if not self._keys:
            return "ip:" + caller_address(scope)
        token = _presented(scope)
        _match(token, self._keys)
        return self._name(token)

    async def admit(self, scope: Scope) -> str:
        """``identify``, with wrong keys counted and a blocked address refused first (429)."""
        if not self._keys:
            return self.identify(scope)
        token = await self._throttled(scope, self._keys)
        return self._name(token)

    @property
    def metrics_need_key(self) -> bool:
        """True when ``/metrics`` needs a key (client keys or a metrics key are set)."""
        return self._metrics_guarded

    def metrics_open_to(self, scope: Scope) -> bool:
        """True when this caller may read ``/metrics`` without any key."""
        if not self._metrics_guarded:
            return True
        return self._metrics_from_loopback and is_loopback_address(scope)

    async def admit_metrics(self, scope: Scope) -> None:
        """Refuse a scrape of ``/metrics`` without a metrics or client key (when keys exist)."""
        if not self.metrics_open_to(scope):
            await self._throttled(scope, self._metrics_keys)

    async def _throttled(self, scope: Scope, keys: list[bytes]) -> bytes:
        # The key is compared first (no I/O, constant time) so that one atomic call can both
        # check the address and count the failure: a burst cannot pass the check before its
        # failures land. A blocked address is told so whatever it sent, right key or not.
        address = "auth:" + caller_address(scope)
        refused: RequestRefused | None = None
        try:
            token = _presented(scope)
            _match(token, keys)
        except RequestRefused as exc:
            refused = exc
        if self._failures is not None:
            wrong = refused is not None and refused.failure.code == "invalid_api_key"
            decision = await self._failures.attempt(address, wrong)
            if not decision.allowed:
                self._count("blocked")
                raise _blocked(decision)
        if refused is not None:
            self._count(refused.failure.code)
            raise refused
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
