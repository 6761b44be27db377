"""The documented import path of the auth flows; they live in ``gloo_stream.client.auth``.

``from gloo_stream.auth import ClientCredentialsAuth`` keeps working: this module only
re-exports the public names of the client package's auth module.
"""

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, TokenCache, redactor_for

__all__ = ["BearerAuth", "ClientCredentialsAuth", "TokenCache", "redactor_for"]
