"""gloo-stream: stream Gloo AI chat completions in real time."""

from gloo_stream.accumulate import (
    OutputParseError,
    StreamAccumulator,
    StreamResult,
    ToolCall,
    ToolResult,
)
from gloo_stream.client import (
    AsyncChatStream,
    AsyncGlooClient,
    AsyncToolLoopStream,
    ChatStream,
    GlooClient,
    ToolLoopStream,
)
from gloo_stream.config import GlooSettings
from gloo_stream.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
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
from gloo_stream.retry import RetryPolicy
from gloo_stream.sse import ServerSentEvent, SSEDecoder
from gloo_stream.tools import ToolRoundsExceededError, function_tool
from gloo_stream.wire import ChatCompletionChunk, decode_chunk

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ProxySettings lives with the proxy (gloo_stream.proxy.settings); importing it here at
    # once would load the proxy for every library user, so it is handed on when asked for.
    if name == "ProxySettings":
        from gloo_stream.proxy.settings import ProxySettings

        return ProxySettings
    raise AttributeError(f"module 'gloo_stream' has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChatStream",
    "AsyncGlooClient",
    "AsyncToolLoopStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatCompletionChunk",
    "ChatStream",
    "ConfigurationError",
    "ContentFilterError",
    "GlooClient",
    "GlooError",
    "GlooSettings",
    "InvalidRequestError",
    "MalformedChunkError",
    "MissingCredentialsError",
    "NotFoundError",
    "OutputParseError",
    "PermissionDeniedError",
    "ProxySettings",
    "RateLimitError",
    "RetryPolicy",
    "SSEDecoder",
    "ServerError",
    "ServerSentEvent",
    "StreamAccumulator",
    "StreamDisconnectedError",
    "StreamError",
    "StreamResult",
    "StreamTimeoutError",
    "ToolCall",
    "ToolLoopStream",
    "ToolResult",
    "ToolRoundsExceededError",
    "TruncatedStreamError",
    "UpstreamStreamError",
    "__version__",
    "decode_chunk",
    "function_tool",
]
