"""The transport edge: the uvicorn server, the front door's HTTP limits, the start-up lines."""
