"""Deprecated import path of the auth flows: use ``gloo_stream.client.auth``.

``from gloo_stream.auth import ClientCredentialsAuth`` still works and warns (CHANGELOG.md, 0.2.0);
it will be removed in 0.3.0.
"""

import warnings

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, TokenCache, redactor_for

__all__ = ["BearerAuth", "ClientCredentialsAuth", "TokenCache", "redactor_for"]

warnings.warn(
    "gloo_stream.auth is deprecated: import from gloo_stream.client.auth",
    DeprecationWarning,
    stacklevel=2,
)
