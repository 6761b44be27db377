"""``ProxyServer`` and ``settings_for``, documented here first: now in ``gloo_stream.testing``."""

from gloo_stream.testing import ProxyServer, settings_for

__all__ = ["ProxyServer", "settings_for"]
