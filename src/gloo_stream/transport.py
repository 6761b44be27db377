"""Deprecated import path of ``StreamingTransport``: use ``gloo_stream.client.transport``.

``from gloo_stream.transport import StreamingTransport`` still works and warns (CHANGELOG.md,
0.2.0); it will be removed in 0.3.0.
"""

import warnings

from gloo_stream.client.transport import StreamingTransport

__all__ = ["StreamingTransport"]

warnings.warn(
    "gloo_stream.transport is deprecated: import from gloo_stream.client.transport",
    DeprecationWarning,
    stacklevel=2,
)
