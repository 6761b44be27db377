"""The routes: completions, reconnecting to an answer, the OpenAI dialect, body admission, the page
and its vendored libraries, and the operational routes (/health, /metrics, /v1/models)."""
