"""Deterministic, markdown-rich answers split into word-ish tokens.

The answer depends only on the seed and the last user message, so a test can compute with
``expected_answer`` exactly what the simulator will stream, even through a proxy that adds a
system prompt. Answers deliberately contain everything that breaks naive clients and renderers:
markdown split mid-syntax ("*" "*" for bold, "`" "`" "`" for fences), multi-byte UTF-8,
astral-plane emoji and CJK.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

# Whitespace stays attached to the token that follows it, like GPT tokenizers do: "Hello",
# " world", ",". The trailing alternative keeps "".join(tokens) == text for every text.
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+\Z")
_WORD = re.compile(r"\w+")

_TITLES = (
    "Streaming, step by step",
    "A quick tour",
    "How the tokens flow",
    "The short answer",
    "Notes from the café",
    "What matters here",
    "A naïve first try",
    "Three things to know",
)
_EMOJI = ("🚀", "✨", "🌱", "📚", "🙂", "🔥", "☕", "🎯")
_OPENERS = (
    "Good question",
    "Here is the gist",
    "Let us keep it simple",
    "Short version first",
    "In a nutshell",
    "Happy to help",
)
_BOLD = (
    "tokens arrive one at a time",
    "the first token matters most",
    "nothing is buffered",
    "every chunk is valid JSON",
    "the stream can stop early",
    "order is preserved",
)
_ARROWS = (
    "request → headers → tokens",
    "prompt → model → answer",
    "bytes → events → text",
    "question → search → reply",
)
_BULLETS = (
    ("Latency", "the first word shows up fast"),
    ("Throughput", "steady pacing, no bursts"),
    ("Safety", "sanitised before display"),
    ("Retries", "transient failures only — never filtered"),
    ("Unicode", "café, naïve, über, déjà vu"),
    ("Timeouts", "a stalled stream is noticed"),
    ("Markup", "code survives splitting"),
    ("Cost", "usage is reported at the end"),
)
_FUNCTIONS = ("stream_tokens", "render_chunk", "join_parts", "count_words", "greet")
_LINKS = (
    ("the docs", "https://docs.ai.gloo.com"),
    ("the cookbook", "https://docs.ai.gloo.com/cookbook"),
    ("a guide", "https://example.org/sse"),
)
_CJK = ("你好世界。", "ありがとう。", "안녕하세요.", "流式传输很快。")
_FILLERS = (
    "Each piece is shown as soon as it exists.",
    "Nothing here depends on the clock.",
    "Keep buffers short → readers stay fast.",
    "A partial answer is still worth showing.",
    "Half a table renders fine.",
    "Café owners like steady output.",
)


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens ``tokenize`` would produce (used for ``usage``)."""
    return len(_TOKEN.findall(text))


def last_user_content(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last user message ('' when there is none); what an answer depends on."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else _json_text(content)
    return ""


def expected_answer(
    messages: list[dict[str, Any]],
    seed: int = 0,
    max_tokens: int | None = None,
    answer_tokens: int | None = None,
) -> list[str]:
    """The exact content tokens the simulator streams for this conversation."""
    tokens = answer_for(last_user_content(messages), seed, answer_tokens)
    if max_tokens is not None:
        return list(tokens[:max_tokens])
    return list(tokens)


def continuation_of(
    messages: Sequence[Mapping[str, Any]], seed: int, answer_tokens: int | None, repeat: int = 0
) -> tuple[str, ...] | None:
    """The rest of an answer that a continuation request asks for, or None if it is none.

    A continuation ends with an ``assistant`` message (optionally followed by one ``user``
    instruction) whose text is a prefix of the deterministic answer to the last user message
    before it: the answer is the rest of that same answer, preceded by a repeat of the text
    so far's last whole tokens (at least ``repeat`` characters) when asked.
    """
    at = len(messages) - 1
    if at >= 1 and messages[at].get("role") == "user":
        at -= 1
    if at < 1 or messages[at].get("role") != "assistant":
        return None
    so_far = messages[at].get("content")
    if not isinstance(so_far, str) or not so_far:
        return None
    full = answer_for(last_user_content(messages[:at]), seed, answer_tokens)
    shown = 0
    for index, token in enumerate(full):
        if shown == len(so_far):
            return _repeat_of(full[:index], repeat) + full[index:]
        shown += len(token)
    text = "".join(full)
    if not text.startswith(so_far):
        return None
    if len(so_far) == len(text):
        return _repeat_of(full, repeat)
    return tuple(tokenize(text[len(so_far) :]))  # cut inside a token: the rest, re-split


def _repeat_of(shown: tuple[str, ...], repeat: int) -> tuple[str, ...]:
    """The shortest run of ``shown``'s last tokens at least ``repeat`` characters long."""
    if repeat <= 0:
        return ()
    length = 0
    for start in range(len(shown) - 1, -1, -1):
        length += len(shown[start])
        if length >= repeat:
            return shown[start:]
    return ()  # too little text to repeat that much


def prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """A plausible prompt token count: content tokens plus a small per-message overhead."""
    total = 0
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else _json_text(content)
        total += 4 + count_tokens(text)
    return total


@functools.lru_cache(maxsize=1024)
def answer_for(prompt: str, seed: int, answer_tokens: int | None) -> tuple[str, ...]:
    """The answer's tokens for a prompt (cached: benchmarks repeat one prompt many times)."""
    rng = random.Random(_digest(prompt, seed))
    tokens = tokenize(_compose(prompt, rng))
    if answer_tokens is None:
        return tuple(tokens)
    while len(tokens) < answer_tokens:
        tokens.extend(tokenize("\n\n" + " ".join(rng.sample(_FILLERS, 3))))
    return tuple(tokens[:answer_tokens])


@functools.lru_cache(maxsize=1024)
def encoded_answer_for(prompt: str, seed: int, answer_tokens: int | None) -> tuple[bytes, ...]:
    """Each answer token as a JSON string literal, encoded once and reused by every stream."""
    return tuple(msgspec.json.encode(token) for token in answer_for(prompt, seed, answer_tokens))


def pick(options: Sequence[str], key: str) -> str:
    """A stable choice among options for a key (used for routing metadata)."""
    return options[int.from_bytes(hashlib.blake2b(key.encode()).digest()[:4], "big") % len(options)]


def _digest(prompt: str, seed: int) -> int:
    material = f"{seed}\x00{prompt}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big")


def _compose(prompt: str, rng: random.Random) -> str:
    words = _WORD.findall(prompt)[:3]
    echo = f" You asked about *{' '.join(words)}*." if words else ""
    bullets = rng.sample(_BULLETS, rng.randint(1, 3))
    function = rng.choice(_FUNCTIONS)
    link_text, link_url = rng.choice(_LINKS)
    arrow = rng.choice(_ARROWS)
    extra = f" {rng.choice(_FILLERS)}" if rng.random() < 0.25 else ""
    lines = [
        f"## {rng.choice(_TITLES)} {rng.choice(_EMOJI)}",
        "",
        f"{rng.choice(_OPENERS)}!{echo} Key idea: **{rng.choice(_BOLD)}** — {arrow}.{extra}",
        "",
        *(f"- **{name}**: {text}" for name, text in bullets),
        "",
        "```python",
        f"{function}(parts)  # café ≠ naïve, {rng.randint(2, 99)}",
        "```",
        "",
        f"See [{link_text}]({link_url}). {rng.choice(_CJK)}",
    ]
    return "\n".join(lines)


def _json_text(value: Any) -> str:
    # Non-string content (content parts, None for tool-call turns) still needs a stable text.
    if value is None:
        return ""
    return msgspec.json.encode(value).decode()
