"""The ``gloo-stream`` command: ``chat``, ``demo``, ``auth``, ``proxy`` and ``simulate``.

A thin face over the client: ``app`` parses the options, ``chat``, ``demo`` and
``auth_check`` run the commands, ``render`` and ``render_live`` draw the answer, and
``failures`` turns every error into one or two lines and an exit status. The console entry
point is ``gloo_stream.cli:main``.
"""

from gloo_stream.cli.app import main

__all__ = ["main"]
