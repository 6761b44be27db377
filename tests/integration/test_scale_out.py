"""Scale-out: two proxy replicas behind nginx, limits shared in Redis (real redis-server, nginx).

The test starts Debian's ``redis-server`` and ``nginx`` itself on free loopback ports, with
nginx running the exact configuration ``docs/deploy.md`` shows (its template). The replicas
are ``gloo-stream proxy`` processes, so one can be killed for real.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from gloo_stream.wire import decode_chunk
from kit import environment_without_settings, free_port, wait_until

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_servers = pytest.mark.skipif(
    not (os.access(REDIS, os.X_OK) and os.access(NGINX, os.X_OK)),
    reason="needs Debian's redis-server and nginx (`make test` installs them)",
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "docs" / "nginx" / "gloo-stream.conf.template"
MESSAGES = [{"role": "user", "content": "Tell me about streams."}]
LEASE = 2.0  # PROXY_REDIS_LEASE_SECONDS: short, so a dead replica's quota lapses quickly
CAP = 3  # PROXY_MAX_STREAMS_PER_CLIENT
POLL = 0.05  # seconds between polls: each one is a request to a replica


def redis_argv(port: int, folder: Path) -> list[str]:
    """A throwaway redis-server on a loopback port: nothing saved to disk."""
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return [REDIS, *options, "--dir", str(folder)]


def answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def post(base: str, key: str, max_tokens: int = 2) -> httpx.Response:
    body = {"messages": MESSAGES, "max_tokens": max_tokens}
    return httpx.post(f"{base}/api/stream", json=body, headers=auth(key), timeout=10)


def text_of(body: bytes) -> str:
    events = SSEDecoder().feed(body)
    return "".join(decode_chunk(e.data).content for e in events)


class Cluster:
    """redis-server, two ``gloo-stream proxy`` replicas and nginx, each its own process."""

    def __init__(self, tmp: Path, simulator: SimulatorServer) -> None:
        self.tmp = tmp
        self.simulator = simulator
        self.redis_port, self.nginx_port = free_port(), free_port()
        self.ports = {"a": free_port(), "b": free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def nginx(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def replica(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _spawn(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        self._spawn("redis", redis_argv(self.redis_port, self.tmp))
        for name in self.ports:
            self.start_replica(name, wait=False)
        self.start_nginx()
        for name in self.ports:
            wait_until(
                lambda n=name: answers(f"{self.replica(n)}/health"),
                f"replica {name}",
                timeout=20,
                interval=POLL,
            )
        wait_until(lambda: answers(f"{self.nginx}/health"), "nginx", timeout=10, interval=POLL)

    def start_replica(self, name: str, *, wait: bool = True) -> None:
        sim = self.simulator
        env = environment_without_settings() | {
            "GLOO_API_URL": sim.api_url,
            "GLOO_TOKEN_URL": sim.token_url,
            "GLOO_API_KEY": sim.config.api_keys[0],
            "PROXY_HOST": "127.0.0.1",
            "PROXY_PORT": str(self.ports[name]),
            "PROXY_API_KEYS": "key-a,key-b,key-c",
            "PROXY_REDIS_URL": self.redis_url,
            "PROXY_REDIS_LEASE_SECONDS": str(LEASE),
            "PROXY_MAX_STREAMS_PER_CLIENT": str(CAP),
            "PROXY_RATE_LIMIT": "1000/minute",  # counted in Redis on every request
            "PROXY_SHUTDOWN_GRACE": "10",
        }
        argv = [sys.executable, "-c", "from gloo_stream.cli import main; main()", "proxy"]
        # cwd: the temp dir, so no developer's .env leaks into the replica's settings.
        self._spawn(name, argv, env=env, cwd=self.tmp)
        if wait:
            wait_until(
                lambda: answers(f"{self.replica(name)}/health"),
                f"replica {name}",
                timeout=20,
                interval=POLL,
            )

    def start_nginx(self) -> None:
        site = string.Template(TEMPLATE.read_text()).safe_substitute(
            GLOO_LISTEN=f"127.0.0.1:{self.nginx_port}",
            GLOO_REPLICA_1=f"127.0.0.1:{self.ports['a']}",
            GLOO_REPLICA_2=f"127.0.0.1:{self.ports['b']}",
        )
        assert not [line for line in site.splitlines() if "${" in line.split("#")[0]]
        (self.tmp / "gloo-stream.conf").write_text(site)
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.tmp}/{kind}_temp;"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.tmp / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {self.tmp}/nginx.pid;\n"
            f"error_log {self.tmp}/nginx-error.log warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n    access_log off;\n{temp_paths}\n"
            f"    include {self.tmp}/gloo-stream.conf;\n}}\n"
        )
        argv = [NGINX, "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf")]
        self._spawn("nginx", [*argv, "-e", str(self.tmp / "nginx-error.log")])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def slow_simulator() -> Iterator[SimulatorServer]:
    """20 tokens a second: an answer of 200 tokens streams for 10 s."""
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0, answer_tokens=200)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    slow_simulator: SimulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scale-out")
    tmp.chmod(0o755)  # nginx's workers (not root) read nothing here, but may need to traverse
    running = Cluster(tmp, slow_simulator)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def held_streams(base: str, key: str, count: int) -> Iterator[list[httpx.Response]]:
    """``count`` long answers open at once (headers received: each holds its slot)."""
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=10))
        opened = []
        for _ in range(count):
            response = stack.enter_context(
                client.stream(
                    "POST", f"{base}/api/stream", json={"messages": MESSAGES}, headers=auth(key)
                )
            )
            assert response.status_code == 200
            opened.append(response)
        yield opened


def test_deploy_doc_shows_the_tested_nginx_config() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert f"```nginx\n{TEMPLATE.read_text()}```" in doc


@needs_servers
def test_streams_flow_through_nginx_unbuffered(cluster: Cluster) -> None:
    body = {"messages": MESSAGES, "max_tokens": 30}
    url = f"{cluster.nginx}/api/stream"
    with httpx.stream("POST", url, json=body, headers=auth("key-c"), timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        decoder, received, still_streaming = SSEDecoder(), b"", None
        for raw in response.iter_bytes():  # decompressed, should nginx compress
            received += raw
            if still_streaming is None and any(
                decode_chunk(e.data).content for e in decoder.feed(raw)
            ):
                # The first token is here while the simulator is still sending the answer:
                # nginx passed it on instead of holding the response back.
                still_streaming = cluster.simulator.stats()["streams_open"] >= 1
    assert still_streaming is True
    assert text_of(received) == "".join(expected_answer(MESSAGES, max_tokens=30))


@needs_servers
def test_stream_quota_holds_across_replicas(cluster: Cluster) -> None:
    a, b = cluster.replica("a"), cluster.replica("b")
    with held_streams(a, "key-a", CAP):
        refused = post(b, "key-a")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert post(b, "key-b").status_code == 200  # another client is not affected
    # The callers left: replica a hands the leases back at once, not at their expiry.
    waited = wait_until(
        lambda: post(b, "key-a").status_code == 200, "freed quota", timeout=LEASE, interval=POLL
    )
    assert waited < LEASE


@needs_servers
def test_request_rate_is_shared_between_replicas(
    cluster: Cluster, simulator: SimulatorServer
) -> None:
    settings = settings_for(
        simulator,
        proxy_redis_url=cluster.redis_url,
        proxy_redis_prefix=f"rate-test-{time.monotonic_ns()}:",
        proxy_rate_limit="3/minute",
    )
    with ProxyServer(settings) as one, ProxyServer(settings) as two:
        statuses = [post(proxy.url, "anyone").status_code for proxy in (one, two, one, two)]
    assert statuses == [200, 200, 200, 429]


@needs_servers
def test_wrong_keys_are_counted_across_replicas(
    cluster: Cluster, simulator: SimulatorServer
) -> None:
    settings = settings_for(
        simulator,
        proxy_redis_url=cluster.redis_url,
        proxy_redis_prefix=f"auth-test-{time.monotonic_ns()}:",
        proxy_api_keys="key-a",
        proxy_rate_limit="",
    )
    assert settings.proxy_auth_failure_limit == "10/minute"  # the default
    with ProxyServer(settings) as one, ProxyServer(settings) as two:
        replicas = [one, two] * 6
        statuses = [post(proxy.url, f"guess-{i}").status_code for i, proxy in enumerate(replicas)]
        right = [post(proxy.url, "key-a").status_code for proxy in (one, two)]
    # Five wrong keys on each replica make ten in Redis: the eleventh is refused on either.
    assert statuses == [401] * 10 + [429] * 2
    assert right == [429, 429]


@needs_servers
def test_rolling_restart_drains_while_nginx_serves(cluster: Cluster) -> None:
    body = {"messages": MESSAGES, "max_tokens": 40}  # 2 s of streaming
    url = f"{cluster.replica('a')}/api/stream"
    with httpx.stream("POST", url, json=body, headers=auth("key-c"), timeout=10) as response:
        assert response.status_code == 200
        cluster.procs["a"].send_signal(signal.SIGTERM)  # the first step of a rolling restart
        statuses = [post(cluster.nginx, "key-b").status_code for _ in range(6)]
        received = response.read()
    assert statuses == [200] * 6  # new streams went to replica b meanwhile
    assert text_of(received) == "".join(expected_answer(MESSAGES, max_tokens=40))
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert cluster.procs["a"].wait(10) in (0, -signal.SIGTERM)
    cluster.start_replica("a")


@needs_servers
def test_killed_replica_leaves_the_other_serving_and_its_quota_lapses(cluster: Cluster) -> None:
    a, b = cluster.replica("a"), cluster.replica("b")
    with held_streams(a, "key-a", CAP):
        cluster.procs["a"].send_signal(signal.SIGKILL)
        cluster.procs["a"].wait(5)
        killed = time.monotonic()
        # The dead replica's leases still count until they expire.
        assert post(b, "key-a").status_code == 429
        for _ in range(4):  # nginx routes new streams around the dead replica
            response = post(cluster.nginx, "key-b", max_tokens=3)
            assert response.status_code == 200
            assert text_of(response.content) == "".join(expected_answer(MESSAGES, max_tokens=3))
    wait_until(
        lambda: post(b, "key-a").status_code == 200,
        "lapsed leases",
        timeout=LEASE + 3,
        interval=POLL,
    )
    assert time.monotonic() - killed <= LEASE + 3
    cluster.start_replica("a")


@contextlib.contextmanager
def silent_redis() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers (a hung Redis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # connections complete in the backlog; nothing ever reads them
        yield f"redis://:s3cret@127.0.0.1:{sock.getsockname()[1]}/0"


@contextlib.contextmanager
def refused_redis() -> Iterator[str]:
    """A Redis URL where nothing listens (a stopped Redis)."""
    yield f"redis://:s3cret@127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize("down", [silent_redis, refused_redis], ids=["hung", "stopped"])
@pytest.mark.parametrize("fail", ["open", "closed"])
def test_redis_down_follows_the_fail_policy_without_hanging(
    simulator: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
    down: Callable[[], contextlib.AbstractContextManager[str]],
    fail: str,
) -> None:
    caplog.set_level("WARNING", logger="gloo_stream.proxy")
    with down() as url:
        settings = settings_for(
            simulator, proxy_redis_url=url, proxy_redis_fail=fail, proxy_rate_limit="100/minute"
        )
        with ProxyServer(settings) as proxy:
            # A hang would trip httpx's timeout; the deadline per Redis call is 250 ms.
            body = {"messages": MESSAGES, "max_tokens": 2}
            responses = [
                httpx.post(f"{proxy.url}/api/stream", json=body, timeout=3) for _ in range(3)
            ]
            metrics = httpx.get(f"{proxy.url}/metrics", timeout=3).text
            health = httpx.get(f"{proxy.url}/health", timeout=3)
    assert health.json()["limits"] == {"shared": True, "store_up": False, "fail": fail}
    if fail == "open":
        assert [r.status_code for r in responses] == [200] * 3
        assert health.status_code == 200
        assert health.json()["ready"] is True
    else:
        assert [r.status_code for r in responses] == [503] * 3
        assert {r.json()["error"]["code"] for r in responses} == {"limits_unavailable"}
        assert health.status_code == 503  # a balancer should send callers elsewhere
        assert health.json()["ready"] is False
    assert "gloo_proxy_redis_up 0.0" in metrics
    assert 'gloo_proxy_redis_errors_total{op="rate"} 1.0' in metrics
    warnings = [r.getMessage() for r in caplog.records if "shared limits store" in r.getMessage()]
    assert len(warnings) == 1  # one line per outage, not one per request
    assert "s3cret" not in caplog.text
    assert "redis://:***@127.0.0.1" in warnings[0]


@needs_servers
def test_shared_limits_resume_when_redis_returns(
    simulator: SimulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="gloo_stream.proxy")
    port = free_port()
    settings = settings_for(
        simulator,
        proxy_redis_url=f"redis://127.0.0.1:{port}/0",
        proxy_redis_fail="closed",
        proxy_rate_limit="100/minute",
    )
    with ProxyServer(settings) as proxy:
        assert post(proxy.url, "anyone").status_code == 503
        redis = subprocess.Popen(redis_argv(port, tmp_path), stdout=subprocess.DEVNULL)
        try:
            wait_until(
                lambda: post(proxy.url, "anyone").status_code == 200,
                "recovery",
                timeout=10,
                interval=POLL,
            )
            metrics = httpx.get(f"{proxy.url}/metrics", timeout=3).text
            health = httpx.get(f"{proxy.url}/health", timeout=3)
        finally:
            redis.terminate()
            redis.wait(5)
    assert "gloo_proxy_redis_up 1.0" in metrics
    assert health.status_code == 200
    assert health.json()["limits"]["store_up"] is True
    assert any("answers again" in r.getMessage() for r in caplog.records)
