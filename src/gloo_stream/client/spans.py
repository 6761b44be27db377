"""A client span per upstream attempt, when an OpenTelemetry tracer provider is configured.

OpenTelemetry is optional (``pip install gloo-stream[otel]``). The library never imports it:
``configured_tracer`` looks in ``sys.modules``, so an application that has not imported
OpenTelemetry pays one dictionary look-up per answer, and one that has imported it but set
no tracer provider pays one ``isinstance`` more. A provider can also be handed to a client
(``tracer_provider=``), as the proxy does with its own.

Each attempt (the first request and every retry, so retries show as sibling spans) is one
``CLIENT`` span named ``chat {model}`` with the GenAI conventions' attributes, and its
context goes upstream as W3C ``traceparent`` (through OpenTelemetry's configured
propagator). Prompts and answers are never recorded on these spans; whatever the upstream
sent that is recorded (its model, id, error name) goes through the credential's
``Redactor`` first, as log lines do, so an upstream echoing the key cannot put it in a span.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Any

from gloo_stream import genai
from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import APIStatusError, ContentFilterError, StreamError
from gloo_stream.redaction import NO_SECRETS, Redactor

__all__ = ["AttemptSpan", "configured_tracer"]

_VERSION = "0.1.0"
_tracers: dict[int, tuple[Any, Any]] = {}
# An upstream's error name is recorded only when it looks like one (no free text, no secret).
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def configured_tracer(provider: Any | None = None) -> Any | None:
    """The tracer to make client spans with, or None when tracing is not set up.

    ``provider`` wins when given; else the global one, if the application set one.
    """
    if provider is None:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return None  # nobody imported OpenTelemetry: nothing can be configured
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
    cached = _tracers.get(id(provider))
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer("gloo_stream", _VERSION)
    _tracers[id(provider)] = (provider, tracer)
    return tracer


def _server_attributes(url: str) -> dict[str, Any]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return {}
    return {"server.address": parts.hostname or "", "server.port": port}


class AttemptSpan:
    """One upstream attempt's span; ``headers`` carry its context to the upstream."""

    __slots__ = ("_span", "_started_after", "ended", "headers", "redactor")

    def __init__(
        self,
        tracer: Any,
        body: Mapping[str, Any],
        url: str,
        *,
        attempt: int,
        started_after: float = 0.0,
    ) -> None:
        from opentelemetry import propagate, trace

        attributes = genai.request_attributes(body)
        attributes.update(_server_attributes(url))
        attributes["gloo.attempt"] = attempt
        self._span = tracer.start_span(
            genai.span_name(body), kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        self._started_after = started_after
        self.redactor: Redactor = NO_SECRETS
        """The secrets of the credential this attempt is sent with (set once it is known)."""
        self.ended = False
        self.headers: dict[str, str] = {}
        propagate.inject(self.headers, context=trace.set_span_in_context(self._span))

    def failed(self, error: BaseException) -> None:
        """The attempt got no answer stream: an error status, a timeout, a refused connection."""
        if self.ended:
            return
        if isinstance(error, APIStatusError):
            self._span.set_attribute("http.response.status_code", error.status_code)
        self._end_with_error(error)

    def opened(self, status: int) -> None:
        """The upstream answered with ``status`` and its stream begins."""
        if not self.ended:
            self._span.set_attribute("http.response.status_code", status)

    def finished(self, result: StreamResult | None, error: BaseException | None = None) -> None:
        """The attempt's stream ended: with its result, or with the error that ended it.

        A ``StreamError``'s partial answer is recorded like a result; a stream closed before
        its end (the caller stopped reading) is marked ``gloo.interrupted``.
        """
        if self.ended:
            return
        if isinstance(error, StreamError):
            result = error.partial
            if isinstance(error, ContentFilterError):
                error = None  # the model's own, terminal answer: not a failure of the call
        if result is not None:
            attributes = genai.result_attributes(result, since=self._started_after)
            self._span.set_attributes(self.redactor.attributes(attributes))
            if result.interrupted:
                self._span.set_attribute("gloo.interrupted", True)
        if error is not None:
            self._end_with_error(error)
            return
        self.ended = True
        self._span.end()

    def abandoned(self, partial: StreamResult | None) -> None:
        """The stream was closed before the attempt ended: the caller stopped reading."""
        if self.ended:
            return
        self._span.set_attribute("gloo.interrupted", True)
        self.finished(partial)

    def _end_with_error(self, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        kind = type(error).__name__
        self._span.set_attribute("error.type", kind)
        name = getattr(error, "name", None)  # an upstream's mid-answer error names itself
        shown = isinstance(name, str) and _UPSTREAM_NAME.fullmatch(name) is not None
        description = f"{kind} ({name})" if shown else kind
        self._span.set_status(Status(StatusCode.ERROR, self.redactor.text(description)))
        self.ended = True
        self._span.end()
