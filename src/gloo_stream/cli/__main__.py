"""``python -m gloo_stream.cli``: the ``gloo-stream`` command without its script."""

from gloo_stream.cli.app import main

main()
