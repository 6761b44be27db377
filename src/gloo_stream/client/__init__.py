"""The I/O shells: ``GlooClient`` and ``AsyncGlooClient``, thin httpx twins over the core.

Each rule is written once, and read in one place:

- ``_base``: the client (settings, credentials, timeouts, the retry policy, the clock, and
  the requests it builds);
- ``_answer``: **an answer's course** (send, retry, move to the fallback, read, reconnect to a
  resumable proxy answer, start over for ``complete()``), as sans-IO flows; it asks of the
  client only what ``AnswerClient`` names;
- ``_steps``: the flow protocol (the steps a flow yields, what a runner sends back, and the
  ``Transmitter`` a runner does its I/O through);
- ``_sync`` and ``_async``: the two runners (``ChatStream``, ``AsyncChatStream``) and the two
  clients, doing only I/O, blocking or awaited.

``tool_loop`` runs answers in rounds for Python function tools and ``response_format``
(by the rules of ``gloo_stream.tools``); ``auth`` holds the httpx auth flows (an API key,
or OAuth2 client credentials), ``fallback`` the fallback upstream, ``spans`` the
per-attempt tracing, ``transport`` the lean HTTP/1.1 transport the proxy reads with.
"""

from gloo_stream.client._async import AsyncChatStream, AsyncGlooClient
from gloo_stream.client._base import Messages, OnRetry, OnToken
from gloo_stream.client._sync import ChatStream, GlooClient
from gloo_stream.client.tool_loop import AsyncToolLoopStream, ToolLoopStream

__all__ = [
    "AsyncChatStream",
    "AsyncGlooClient",
    "AsyncToolLoopStream",
    "ChatStream",
    "GlooClient",
    "Messages",
    "OnRetry",
    "OnToken",
    "ToolLoopStream",
]
