"""The I/O shells: ``GlooClient`` and ``AsyncGlooClient``, thin httpx twins over the core.

``_base`` holds every decision the twins share (settings, credentials, timeouts, retries, the
request, and each answer's course as a sans-IO flow); ``_sync`` and ``_async`` run those flows
with blocking calls and with ``await``. ``auth`` holds the httpx auth flows (an API key, or
OAuth2 client credentials), ``transport`` the lean HTTP/1.1 transport the proxy reads with.
"""

from gloo_stream.client._async import AsyncChatStream, AsyncGlooClient
from gloo_stream.client._base import Messages, OnRetry, OnToken
from gloo_stream.client._sync import ChatStream, GlooClient

__all__ = [
    "AsyncChatStream",
    "AsyncGlooClient",
    "ChatStream",
    "GlooClient",
    "Messages",
    "OnRetry",
    "OnToken",
]
