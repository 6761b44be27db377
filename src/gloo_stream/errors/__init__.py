"""One exception hierarchy (the catalogue every face reads), and the sans-IO mapping from
HTTP answers to it.

The classes live in ``catalogue``, the mapping in ``responses``; import both from here.
"""

from gloo_stream.errors.catalogue import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    ExitStatus,
    GlooError,
    InvalidRequestError,
    MalformedChunkError,
    MissingCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.errors.responses import (
    MISSING_MODEL_HINT,
    error_from_response,
    names_missing_model,
    parse_retry_after,
)

__all__ = [
    "MISSING_MODEL_HINT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentFilterError",
    "ExitStatus",
    "GlooError",
    "InvalidRequestError",
    "MalformedChunkError",
    "MissingCredentialsError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StreamDisconnectedError",
    "StreamError",
    "StreamTimeoutError",
    "TruncatedStreamError",
    "UpstreamStreamError",
    "error_from_response",
    "names_missing_model",
    "parse_retry_after",
]
