"""Continuing a cut answer (sans-IO): whether to, what to ask, and how to splice the seam.

Gloo's guide to streaming failures names the failures after which an answer may be
continued (``finish_reason: "error"``, a dropped connection; here also an idle timeout and a
body that ends without a finish) and the ones after which it never may: a content filter
(terminal) and an answer whose tool call was being streamed (its arguments may be cut
mid-JSON, and a tool run twice is a side effect). A failure before any text keeps the
ordinary retry: nothing was shown, so starting over loses nothing.

A continuation is the same request with the text so far appended as an ``assistant``
message and, unless the setting is empty (servers that take an assistant prefill), a short
``user`` instruction to go on exactly where it stopped. Models often repeat their last few
words anyway; ``SeamSplicer`` removes that overlap (the longest suffix of the old text that
is a prefix of the new one, bounded, at least ``MIN_OVERLAP`` characters and starting at a
word boundary, so a legit "the the" is not eaten), holding back only the new characters
that could still be overlap. ``AnswerParts`` folds the parts' results into one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import (
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.usage import estimate_prompt_tokens
from gloo_stream.wire import ChatCompletionChunk, Usage, decode_chunk

__all__ = [
    "DEFAULT_INSTRUCTION",
    "MAX_OVERLAP",
    "MIN_OVERLAP",
    "NO_TEXT",
    "AnswerParts",
    "ChunkSplicer",
    "Seam",
    "SeamReason",
    "SeamSplicer",
    "continuation_body",
    "not_continued_because",
    "seam_reason",
    "splice",
]

SeamReason = Literal["disconnected", "timeout", "truncated", "upstream_error"]
DEFAULT_INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped, even mid-word "
    "or mid-sentence: do not repeat anything already written and add no preamble."
)
MAX_OVERLAP = 256
"""The longest repeat looked for at a seam (characters); also the most ever held back."""
MIN_OVERLAP = 8
"""The shortest repeat removed: shorter coincidences ("the", a space) are legit text."""

_REASONS: tuple[tuple[type[StreamError], SeamReason], ...] = (
    (StreamDisconnectedError, "disconnected"),
    (StreamTimeoutError, "timeout"),
    (TruncatedStreamError, "truncated"),
    (UpstreamStreamError, "upstream_error"),
)


def seam_reason(error: StreamError) -> SeamReason | None:
    """The seam's reason for a failure that may be continued (None: it may not be)."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return None


NO_TEXT = "no text yet"


def not_continued_because(error: StreamError, text_so_far: str) -> str | None:
    """Why an answer cut by ``error`` must not be continued; None when it may be.

    Before any text (``NO_TEXT``) the ordinary retry applies instead: nothing was shown.
    """
    partial = error.partial
    if partial.tool_calls:
        return (
            "a tool call was being streamed (its arguments may be cut mid-JSON, and a tool "
            "must not run twice)"
        )
    if seam_reason(error) is None:
        return f"a {error.error_code} failure is not continued"
    if not text_so_far:
        return NO_TEXT
    return None


def continuation_body(
    body: Mapping[str, Any], text_so_far: str, instruction: str
) -> dict[str, Any]:
    """The request that continues an answer: the same body, the text so far as an
    ``assistant`` message, then ``instruction`` as a ``user`` message unless it is empty."""
    messages = [*body.get("messages", ()), {"role": "assistant", "content": text_so_far}]
    if instruction:
        messages.append({"role": "user", "content": instruction})
    return {**body, "messages": messages}


@dataclass(frozen=True, slots=True)
class Seam:
    """Where an answer was continued: the ``n``-th seam (1-based) at character ``offset``,
    why (``reason``), and which upstream served the part after it."""

    n: int
    offset: int
    reason: str
    upstream: str

    def to_dict(self) -> dict[str, Any]:
        """The seam as the wire and ``--json`` show it (``gloo_continuation``)."""
        return {
            "n": self.n,
            "reason": self.reason,
            "upstream": self.upstream,
            "offset": self.offset,
        }


def _overlap_candidates(tail: str, minimum: int) -> list[int]:
    """Lengths k of ``tail``'s suffixes that may be a repeat: at least ``minimum`` long and
    starting at a word boundary (a model restarts at a word, not inside one)."""
    out = []
    for k in range(minimum, len(tail) + 1):
        start = len(tail) - k
        if start == 0 or not (tail[start - 1].isalnum() and tail[start].isalnum()):
            out.append(k)
    return out


def splice(old: str, new: str, *, minimum: int = MIN_OVERLAP, bound: int = MAX_OVERLAP) -> str:
    """``old`` followed by ``new`` without the repeat at the seam (the batch form of
    ``SeamSplicer``, which gives the same text however ``new`` arrives)."""
    splicer = SeamSplicer(old, minimum=minimum, bound=bound)
    return old + splicer.feed(new) + splicer.flush()


class SeamSplicer:
    """Removes the repeat at one seam from new text as it streams in.

    ``feed`` returns the text that may be shown now; while the text so far could still be
    the start of a repeat it is held back (never more than ``bound`` characters). ``flush``
    at the part's end decides with what arrived. ``removed`` is the overlap's length once
    decided (None before).
    """

    __slots__ = ("_candidates", "_held", "_tail", "removed")

    def __init__(self, old: str, *, minimum: int = MIN_OVERLAP, bound: int = MAX_OVERLAP) -> None:
        self._tail = old[-bound:] if bound > 0 else ""
        self._candidates = _overlap_candidates(self._tail, max(1, minimum))
        self._held = ""
        self.removed: int | None = None

    @property
    def deciding(self) -> bool:
        """True while new text is being held back."""
        return self.removed is None

    def feed(self, text: str) -> str:
        """The part of ``text`` (with what was held) that can be shown now."""
        if self.removed is not None:
            return text
        held = self._held = self._held + text
        tail = self._tail
        if any(len(held) < k and tail[-k:].startswith(held) for k in self._candidates):
            return ""  # could still be a repeat: wait for more
        return self._decide()

    def flush(self) -> str:
        """The part ended: decide with what arrived and release the rest."""
        return "" if self.removed is not None else self._decide()

    def _decide(self) -> str:
        held, tail = self._held, self._tail
        confirmed = [k for k in self._candidates if k <= len(held) and held.startswith(tail[-k:])]
        self.removed = max(confirmed, default=0)
        self._held = ""
        return held[self.removed :]


class ChunkSplicer:
    """``SeamSplicer`` over chunks: holds whole chunks back, trims the repeat from their
    content, and marks the first chunk after the seam with ``gloo_continuation``.

    Chunks the trim leaves with nothing (a role-only opener, pure repeat) are dropped unless
    they carry a finish, usage, a tool call, reasoning or no choice at all. Once decided and marked,
    ``take`` passes chunks through untouched.
    """

    __slots__ = ("_drop", "_held", "_marked", "_seam", "_text", "shown")

    def __init__(self, old: str, seam: Seam) -> None:
        self._text = SeamSplicer(old)
        self._seam = seam
        self._held: list[ChatCompletionChunk] = []
        self._drop = 0
        self._marked = False
        self.shown: list[str] = []
        """The new text released so far (the part's text without the repeat)."""

    @property
    def deciding(self) -> bool:
        """True while chunks are being held back."""
        return self._text.deciding

    def take(self, chunks: list[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
        """The chunks that may be handed on now."""
        if self._marked:
            self.shown.extend(text for c in chunks if (text := c.content))
            return chunks
        self._held.extend(chunks)
        if self._text.deciding:
            for chunk in chunks:
                self._text.feed(chunk.content)
            if self._text.deciding:
                return []
            self._drop = self._text.removed or 0
        return self._release()

    def flush(self) -> list[ChatCompletionChunk]:
        """The part finished: release what was held, decided with what arrived."""
        if self._text.deciding:
            self._text.flush()
            self._drop = self._text.removed or 0
        return self._release()

    def _release(self) -> list[ChatCompletionChunk]:
        out: list[ChatCompletionChunk] = []
        for chunk in self._held:
            content = chunk.content
            cut = min(self._drop, len(content))
            self._drop -= cut
            rest = content[cut:]
            if not rest and not _carries_more(chunk):
                continue
            if cut or not self._marked:
                chunk = self._rewrite(chunk, rest, mark=not self._marked)
                self._marked = True
            if rest:
                self.shown.append(rest)
            out.append(chunk)
        self._held = []
        return out

    def _rewrite(
        self, chunk: ChatCompletionChunk, content: str, *, mark: bool
    ) -> ChatCompletionChunk:
        data = chunk.to_dict()
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and "content" in delta:
                delta["content"] = content
        if mark:
            data["gloo_continuation"] = self._seam.to_dict()
        return decode_chunk(msgspec.json.encode(data))


def _carries_more(chunk: ChatCompletionChunk) -> bool:
    """Whether a chunk says more than its text: a finish, usage, a tool call, reasoning,
    no choice."""
    choices = chunk.choices_
    if not choices or chunk.usage is not None or choices[0].finish_reason is not None:
        return True
    if chunk.reasoning:  # a continued part's thinking is handed on, never trimmed
        return True
    delta = choices[0].delta_
    return delta is not None and bool(delta.tool_calls)


class AnswerParts:
    """The parts of one continued answer, folded into one result.

    ``text`` is the answer so far with every character once; ``seams`` where it was
    continued. The result keeps the first part's metadata (id, model, routing, citations),
    joins every part's reasoning (a continued part may think again: none of it is lost) and
    takes the last part's ending (finish reason, error).
    """

    __slots__ = ("_first", "_parts", "_prompts", "seams", "text")

    def __init__(self, first: StreamResult, body: Mapping[str, Any]) -> None:
        self._first = first
        self._parts: list[StreamResult] = [first]
        self._prompts = [_prompt_estimate(body)]  # each part's prompt, if it reports none
        self.text = first.text
        self.seams: list[Seam] = []

    def seam(self, reason: str, upstream: str, body: Mapping[str, Any]) -> Seam:
        """Record a new seam at the end of the text so far; ``body`` asked for what follows."""
        seam = Seam(n=len(self.seams) + 1, offset=len(self.text), reason=reason, upstream=upstream)
        self.seams.append(seam)
        self._prompts.append(_prompt_estimate(body))
        return seam

    def part_ended(self, part: StreamResult, shown: list[str]) -> None:
        """A continuation part ended (whole or cut): ``shown`` is its text without the repeat."""
        self._parts.append(part)
        self.text += "".join(shown)

    def result(
        self, last: StreamResult, *, attempts: int, shown: list[str] | None = None
    ) -> StreamResult:
        """The whole answer as one result, ending as ``last`` (the last part) ended.

        ``last`` may be a part still going (a caller that left early): ``shown`` is then
        the text it has shown so far.
        """
        parts = self._parts if last is self._parts[-1] else [*self._parts, last]
        return dataclasses.replace(
            self._first,
            text=self.text + "".join(shown or ()),
            reasoning="".join(p.reasoning for p in parts),
            reasoning_token_count=sum(p.reasoning_token_count for p in parts),
            finish_reason=last.finish_reason,
            interrupted=last.interrupted,
            error=last.error,
            tool_calls=last.tool_calls,
            token_count=sum(p.token_count for p in parts),
            usage=self._usage(parts),
            duration_ms=last.duration_ms,
            attempts=attempts,
            resumes=sum(p.resumes for p in parts),
            continuations=len(self.seams),
            seams=list(self.seams),
        )

    def _usage(self, parts: list[StreamResult]) -> Usage:
        """Every part's prompt and output billed: the upstream's count where it gave one (a
        cut part usually has none), else an estimate (the request's text, the chunks)."""
        prompt = completion = 0
        for part, estimate in zip(parts, self._prompts, strict=False):
            usage = part.usage
            given = usage.prompt_tokens if usage is not None else None
            prompt += given if given is not None else estimate
            made = usage.completion_tokens if usage is not None else None
            completion += made if made is not None else part.token_count
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )


def _prompt_estimate(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    return estimate_prompt_tokens(messages) if isinstance(messages, list) else 0
