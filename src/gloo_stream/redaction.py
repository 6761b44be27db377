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
    "StreamScrubber",
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

    __slots__ = ("_pattern", "_scrub", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = frozenset(s for s in secrets if s)
        self._scrub: _ScrubPatterns | None = None  # built by the first StreamScrubber
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

    def attributes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Span attributes with every secret replaced in their strings (sequences kept as
        tuples, the form OpenTelemetry stores them in)."""
        if self._pattern is None:
            return dict(values)
        safe: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, str):
                value = self.text(value)
            elif isinstance(value, list | tuple):
                value = tuple(self.text(v) if isinstance(v, str) else v for v in value)
            safe[name] = value
        return safe


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


# An event whose content ends with this many characters or more of the start of a secret is
# held until the next says whether the secret goes on. 1 would be exact, but English text
# ends with a secret's first letter often: measured (benchmarks/redaction_cost.py) 12,500
# of 20,000 events held back one event, 15 µs an event against 5-8; at 3, none held.
_MIN_HELD = 3


class StreamScrubber:
    """Secrets out of a relayed event stream, also when split across reads and chunks.

    Each event's bytes are searched whole (the SSE decoder already joined what several
    reads carried), so a secret in any field of one event is replaced there. A secret
    split across the content of consecutive chunks is caught by holding back the events
    whose content ends with the start of a secret (three characters or more) until the
    next one says whether the secret goes on: if it does, the held events and this one go
    on as one event carrying the redacted text. Per event: one search of its bytes and one
    of the last few dozen characters of content, a few microseconds (see
    ``benchmarks/redaction_cost.py``).
    """

    __slots__ = (
        "_bytes",
        "_head_pattern",
        "_heads",
        "_held",
        "_held_text",
        "_longest",
        "_redactor",
        "_tail",
    )

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        # The patterns are the redactor's, built once: compiling them for every stream cost
        # about 37 µs per request (issue 27's request-path profile).
        patterns = redactor._scrub
        if patterns is None:
            patterns = redactor._scrub = _ScrubPatterns.build(redactor._secrets)
        self._bytes = patterns.bytes_pattern
        self._heads = patterns.heads
        self._head_pattern = patterns.head_pattern
        self._longest = patterns.longest
        self._tail = ""  # the last characters of content already relayed
        self._held: list[bytes] = []
        self._held_text = ""

    def relay(self, events: list[tuple[str, bytes]]) -> list[bytes]:
        """The bytes to send now for ``events`` (each: the chunk's content, its frame)."""
        out: list[bytes] = []
        for content, frame in events:
            out += self._one(content, frame)
        return out

    def flush(self) -> list[bytes]:
        """What is still held back, at the stream's end."""
        held, self._held, self._held_text = self._held, [], ""
        return held

    def _one(self, content: str, frame: bytes) -> list[bytes]:
        pattern = self._bytes
        if pattern is not None and pattern.search(frame) is not None:
            frame = self._redactor.text(frame.decode("utf-8", "replace")).encode()
            content = self._redactor.text(content)
        if not content:
            return [*self.flush(), frame]
        tail, held = self._tail, self._held_text
        text = held + content
        window = tail + text
        matches = (
            [m.span() for m in self._redactor._pattern.finditer(window)]
            if (self._redactor._pattern is not None)
            else []
        )
        offset = len(tail)
        matches = [(s, e) for s, e in matches if e > offset]
        if matches:
            for start, end in reversed(matches):
                text = text[: max(0, start - offset)] + REDACTED + text[end - offset :]
            rewritten = _with_content(frame, text)
            self._held, self._held_text = [], ""
            self._keep_tail(text)
            return [
                rewritten
                if rewritten is not None
                else self._redactor.text(frame.decode("utf-8", "replace")).encode()
            ]
        if self._secret_starts_in(text):
            self._held.append(frame)
            self._held_text = text
            return []
        sent = [*self._held, frame]
        self._held, self._held_text = [], ""
        self._keep_tail(text)
        return sent

    def _keep_tail(self, text: str) -> None:
        self._tail = (self._tail + text)[-(self._longest - 1) :] if self._longest > 1 else ""

    def _secret_starts_in(self, text: str) -> bool:
        """True when ``text`` ends with the first three or more characters of a secret."""
        pattern = self._head_pattern
        if pattern is None:
            return False
        recent = text[-(self._longest - 1) :]
        at = 0
        # One C-level search per start of a head (overlapping heads are each tried).
        while (found := pattern.search(recent, at)) is not None:
            rest = recent[found.start() :]
            if any(form.startswith(rest) for form in self._heads[rest[:_MIN_HELD]]):
                return True
            at = found.start() + 1
        return False


def _with_content(frame: bytes, text: str) -> bytes | None:
    """``frame`` (one ``data:`` line of chunk JSON) with its first choice's content ``text``."""
    if not frame.startswith(b"data: ") or frame.count(b"\n") != 2:
        return None
    try:
        chunk = msgspec.json.decode(frame[6:-2])
        chunk["choices"][0]["delta"]["content"] = text
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        return None
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


class _ScrubPatterns:
    """What a ``StreamScrubber`` searches with, built once per set of secrets."""

    __slots__ = ("bytes_pattern", "head_pattern", "heads", "longest")

    def __init__(
        self,
        bytes_pattern: re.Pattern[bytes] | None,
        heads: dict[str, list[str]],
        head_pattern: re.Pattern[str] | None,
        longest: int,
    ) -> None:
        self.bytes_pattern = bytes_pattern
        self.heads = heads
        self.head_pattern = head_pattern
        self.longest = longest

    @classmethod
    def build(cls, secrets: frozenset[str]) -> _ScrubPatterns:
        """Every form of every secret, longest first; the first characters of each."""
        forms = sorted(
            {f for s in secrets for f in _encodings(s) | {s} if f},
            key=lambda f: (-len(f), f),
        )
        found = re.compile(b"|".join(re.escape(f.encode()) for f in forms)) if forms else None
        heads: dict[str, list[str]] = {}
        for form in forms:
            if len(form) > _MIN_HELD:
                heads.setdefault(form[:_MIN_HELD], []).append(form)
        ordered = sorted(heads)
        head_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        return cls(found, heads, head_pattern, max((len(f) for f in forms), default=1))
