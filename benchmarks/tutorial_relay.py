"""A relay in the tutorial's style, as a baseline: Flask + ``requests``, one thread per stream.

This is what a first proxy usually looks like: Flask's threaded server gives every caller a
thread, which opens the upstream with ``requests.post(..., stream=True)`` and relays
``iter_lines()`` back as Server-Sent Events. Nothing here is tuned, on purpose.

Run: ``python -m benchmarks.tutorial_relay PORT UPSTREAM_URL``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import requests
from flask import Flask, Response, request


def create_app(upstream: str) -> Flask:
    """The tutorial's relay: one route, streamed line by line."""
    app = Flask(__name__)

    def stream() -> Response:
        body = request.get_json()

        def generate() -> Iterator[bytes]:
            with requests.post(
                upstream,
                json=body,
                headers={"Authorization": "Bearer bench-key", "Accept": "text/event-stream"},
                stream=True,
                timeout=60,
            ) as upstream_response:
                for line in upstream_response.iter_lines():
                    if line:
                        yield line + b"\n\n"

        return Response(generate(), mimetype="text/event-stream")

    # Registered by call, not by decorator, so the view stays typed without Flask's stubs.
    app.add_url_rule("/api/stream", view_func=stream, methods=["POST"])
    return app


def main() -> None:
    """Serve on 127.0.0.1:PORT, relaying to UPSTREAM_URL."""
    port, upstream = int(sys.argv[1]), sys.argv[2]
    create_app(upstream).run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()
