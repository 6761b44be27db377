"""The simulated model catalogue and Gloo's three routing mechanisms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gloo_stream.simulator.answers import pick

FAMILIES: dict[str, tuple[str, ...]] = {
    "openai": ("gloo-openai-gpt-5-mini", "gloo-openai-gpt-5", "gloo-openai-gpt-4.1"),
    "anthropic": ("gloo-anthropic-claude-sonnet-4.5", "gloo-anthropic-claude-haiku-4.5"),
    "google": ("gloo-google-gemini-2.5-flash", "gloo-google-gemini-2.5-pro"),
    "open source": ("gloo-meta-llama-3.3-70b-instruct", "gloo-deepseek-v3.1"),
}
_TIERS = ("tier_1", "tier_2", "tier_3")
_CONFIDENCES = ("0.82", "0.88", "0.91", "0.95", "0.97")


def family_of(model: str) -> str:
    """The family a model belongs to ('openai' for models the catalogue does not list)."""
    for family, models in FAMILIES.items():
        if model in models:
            return family
    return "openai"


def catalogue() -> dict[str, Any]:
    """The body of ``GET /platform/v2/``: every model with its family."""
    data = [
        {"id": model, "object": "model", "family": family, "owned_by": "Gloo AI"}
        for family, models in FAMILIES.items()
        for model in models
    ]
    return {"object": "list", "data": data}


def route(body: Mapping[str, Any], default_model: str, key: str) -> tuple[str, dict[str, Any]]:
    """Pick the model to report and the routing metadata to add to chunks.

    An explicit ``model`` wins, then ``model_family``, then auto-routing (also used when the
    request names no mechanism). ``key`` makes the tier and confidence stable per prompt.
    """
    model = body.get("model")
    if isinstance(model, str) and model:
        return model, {}
    family = body.get("model_family")
    if isinstance(family, str) and family in FAMILIES:
        models = FAMILIES[family]
        chosen = default_model if default_model in models else models[0]
        return chosen, _metadata("model_family", family, key)
    return default_model, _metadata("auto_routing", family_of(default_model), key)


def _metadata(mechanism: str, family: str, key: str) -> dict[str, Any]:
    return {
        "routing_mechanism": mechanism,
        "routing_tier": pick(_TIERS, key),
        "routing_confidence": float(pick(_CONFIDENCES, key)),
        "model_family": family,
    }
