"""gloo-stream: stream Gloo AI chat completions in real time."""

__version__ = "0.1.0"
