"""SimulatorConfig: every knob of the offline Gloo simulator, fixed for the server's lifetime."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulator app; frozen so a running server cannot drift mid-test."""

    tokens_per_second: float = 50.0
    """Content tokens per second per stream; 0 or ``inf`` sends them back to back."""
    first_token_delay: float = 0.05
    """Seconds between the response headers (and role chunk) and the first content chunk."""
    token_lifetime: float = 3600
    """Seconds an OAuth access token from ``/oauth2/token`` stays valid."""
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"
    api_keys: tuple[str, ...] = ("sim-key",)
    seed: int = 0
    """Mixed into every answer, so two seeds give two different (but each fixed) answers."""
    require_auth: bool = True
    send_done: bool = False
    """Send ``data: [DONE]`` after the finish chunk, as other OpenAI-compatible servers do."""
    model: str = "gloo-openai-gpt-5-mini"
    """The model reported when Gloo auto-routes."""
    answer_tokens: int | None = None
    """Exact answer length in tokens; None lets each answer pick its own (about 40-120)."""
    require_model: bool = False
    """Behave like vLLM, Ollama or LLMock: a request without ``model`` gets a 422 naming it
    (``auto_routing``, ``model_family`` and ``tradition`` alone do not choose a model)."""

    continue_repeat_chars: int = 0
    """Continuations repeat the end of the text so far, in whole tokens, at least this many
    characters long (0: none), as models often do: for tests of the seam's overlap removal."""
    cut_fraction: float = 0.0
    """Fraction of answers (not continuations) cut once at a random token in a random style:
    ``error`` (Signal A), ``disconnect``, ``stall`` or ``truncate`` (for soak tests)."""
    cut_stall: float = 5.0
    """Seconds a random ``stall`` cut stays silent (longer than the client's read timeout)."""

    @property
    def token_interval(self) -> float:
        """Seconds between two content chunks (0 when pacing is off)."""
        tps = self.tokens_per_second
        if tps <= 0 or math.isinf(tps):
            return 0.0
        return 1.0 / tps
