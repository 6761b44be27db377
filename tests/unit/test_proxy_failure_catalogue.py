"""The proxy's one failure catalogue: built only in proxy/failures/, from each class's entry."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from gloo_stream import errors
from gloo_stream.accumulate import StreamAccumulator
from gloo_stream.errors import APIStatusError, GlooError, StreamError
from gloo_stream.proxy.failures import failure_from_exception, stream_failure

PROXY = Path(__file__).parents[2] / "src" / "gloo_stream" / "proxy"
# A status each status class is built from by error_from_response (ServerError: not 408).
STATUS = {"BadRequestError": 422, "AuthenticationError": 401, "PermissionDeniedError": 403}
STATUS |= {"NotFoundError": 404, "RateLimitError": 429, "ServerError": 503}
CLASSES = [
    kind
    for name in errors.__all__
    if isinstance(kind := getattr(errors, name), type) and issubclass(kind, GlooError)
]


def instance(kind: type[GlooError]) -> GlooError:
    if issubclass(kind, StreamError):
        partial = StreamAccumulator(started_at=0.0).result(1.0, interrupted=True)
        return kind("secret internals", partial=partial)
    if issubclass(kind, APIStatusError):
        status = STATUS.get(kind.__name__, 418)
        return kind("secret internals", status_code=status, body="")
    return kind("secret internals")


@pytest.mark.parametrize("kind", CLASSES, ids=lambda kind: kind.__name__)
def test_each_exception_is_answered_as_its_catalogue_entry_says(kind: type[GlooError]) -> None:
    exc = instance(kind)
    failure = failure_from_exception(exc)
    if kind.proxy_code != "internal_error":  # the base classes: the proxy's generic answer
        assert (failure.status, failure.type, failure.code) == (
            kind.http_status,
            kind.proxy_type,
            kind.proxy_code,
        )
    if isinstance(exc, StreamError):
        assert stream_failure(exc) == failure
    if kind is not errors.InvalidRequestError:  # whose message is the caller's own mistake
        assert "secret internals" not in failure.body().decode()


def test_base_classes_get_the_generic_answer() -> None:
    for kind in (GlooError, errors.ConfigurationError, errors.APIError):
        failure = failure_from_exception(instance(kind))
        assert (failure.status, failure.code) == (500, "internal_error")
        assert failure.message == "The proxy failed unexpectedly."


def _builds_proxy_failure(node: ast.AST) -> bool:
    """``ProxyFailure(...)``, or a copy of one: ``dataclasses.replace(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func: Any = node.func
    if isinstance(func, ast.Name):
        return func.id == "ProxyFailure"
    if not isinstance(func, ast.Attribute):  # e.g. a factory's result called: f(x)(y)
        return False
    owner = getattr(func.value, "id", None)
    return (owner, func.attr) == ("dataclasses", "replace") or func.attr == "ProxyFailure"


def test_no_module_outside_the_catalogue_builds_a_failure() -> None:
    builders = sorted(
        str(path.relative_to(PROXY))
        for path in PROXY.rglob("*.py")
        if any(map(_builds_proxy_failure, ast.walk(ast.parse(path.read_text()))))
    )
    assert builders == ["failures/library_errors.py", "failures/refusals.py"]
