"""The documented import path of ``StreamingTransport``, kept: it lives in the client package.

``from gloo_stream.transport import StreamingTransport`` keeps working: this module only
re-exports the public name of ``gloo_stream.client.transport``.
"""

from gloo_stream.client.transport import StreamingTransport

__all__ = ["StreamingTransport"]
