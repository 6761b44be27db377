"""Secrets out of text that came from elsewhere, and an upstream's reason made safe to show.

An upstream that echoes the request (some validation errors quote the headers they were
sent) can hand back the API key, an OAuth token or a client secret. Every message built
from an upstream body goes through ``sanitize_reason``: secrets redacted (in the encodings
they travel in), control characters removed, length bounded. The library's errors and the
proxy's answers use this one rule (sans-IO: no I/O, no clock).
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

__all__ = [
    "NO_SECRETS",
    "REASON_LIMIT",
    "REDACTED",
    "Redactor",
    "basic_credential",
    "sanitize_reason",
    "strip_controls",
    "upstream_reason",
]

REDACTED = "[redacted]"
REASON_LIMIT = 300
"""The most characters of an upstream's reason a caller is shown."""

# C0/C1 controls, and the invisible format characters that reorder or hide text in a
# terminal or a page (bidi overrides and isolates, zero-width spaces, the BOM).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_WHITESPACE = re.compile(r"\s+")


def basic_credential(user: str, password: str) -> str:
    """The base64 form an HTTP Basic ``Authorization`` header carries ``user:password`` in."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _encodings(secret: str) -> set[str]:
    # The forms a secret is echoed in: as is, inside a JSON string (some encoders escape
    # "/" too), URL-encoded (a form body).
    json_form = msgspec.json.encode(secret).decode()[1:-1]
    return {
        secret,
        json_form,
        json_form.replace("/", "\\/"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
    }


class Redactor:
    """Replaces every one of a set of secrets, in each form it travels in, by ``[redacted]``."""

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = frozenset(s for s in secrets if s)
        forms = {form for s in self._secrets for form in _encodings(s) if form}
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return self._pattern is not None

    def with_secrets(self, more: Iterable[str | None]) -> Redactor:
        """This redactor's secrets and ``more``."""
        extra = frozenset(s for s in more if s) - self._secrets
        return Redactor([*self._secrets, *extra]) if extra else self

    def text(self, value: str) -> str:
        """``value`` with every secret replaced."""
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        """A decoded JSON value with every secret replaced in its strings (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


NO_SECRETS = Redactor()


def strip_controls(text: str) -> str:
    """``text`` without control and invisible format characters (line breaks become spaces)."""
    return _CONTROLS.sub("", text.replace("\t", " ").replace("\n", " ").replace("\r", " "))


def sanitize_reason(text: str, redactor: Redactor, limit: int = REASON_LIMIT) -> str:
    """One line a caller may be shown: secrets redacted, controls removed, at most ``limit``.

    Redacted before and after the controls go (a secret split by a control character is
    whole again once it is removed), and before the cut, so a cut never leaves half a secret.
    """
    cleaned = _WHITESPACE.sub(" ", strip_controls(redactor.text(text))).strip()
    cleaned = redactor.text(cleaned)
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def upstream_reason(body: str, redactor: Redactor, limit: int = REASON_LIMIT) -> str:
    """The upstream's own explanation in an error body, made safe (``""`` when there is none).

    Understands FastAPI's ``{"detail": [...]}`` (each ``loc: msg``), ``{"detail": "..."}``,
    OpenAI's ``{"error": {"message": ...}}``, ``{"error": "..."}`` and ``{"message": ...}``;
    any other body is taken as text.
    """
    try:
        parsed = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        parsed = body
    return sanitize_reason(_explanation(parsed), redactor, limit)


def _explanation(parsed: Any) -> str:
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, list):
        return "; ".join(filter(None, (_explanation_item(item) for item in parsed[:10])))
    if not isinstance(parsed, dict):
        return "" if parsed is None else str(parsed)
    for key in ("detail", "error", "message"):
        value = parsed.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("detail")
        if isinstance(value, str | list) and value:
            return _explanation(value)
    return ""


def _explanation_item(item: Any) -> str:
    if isinstance(item, dict):
        message = item.get("msg") or item.get("message")
        loc = item.get("loc")
        where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
        if isinstance(message, str):
            return f"{where}: {message}" if where else message
        return ""
    return item if isinstance(item, str) else ""
