"""Markdown cut off mid-construct, made displayable: ``close_open_inline``.

While an answer streams (or after it was stopped) its last block can end inside ``**bold``,
```` `code ```` or ``[link](http``. Rendered as it is, the raw markers show until the closing
ones arrive, and the text jumps when they do. ``close_open_inline`` closes what is open in the
last block and hides markers with no text after them yet, so the open block renders as it will
once finished (inside a code fence, a closing fence being typed is hidden). Pure: text in,
text out.

The chat page has the same rule in JavaScript (``proxy/static/partial-markdown.js``); both are
tested on one table of cases (``tests/partial_markdown_cases.json``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["close_open_inline"]

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_BLANK = re.compile(r"^[ \t\r]*$")
# Lines that end the paragraph before them and hold no inline text of their own to scan.
_BREAK_LINE = re.compile(r"^ {0,3}(?:([-*_])(?:[ \t]*\1){2,}|=+)[ \t]*$")
# A line that starts a block whose text runs to the end of it: a heading, or a table row.
_ONE_LINE_BLOCK = re.compile(r"^ {0,3}(?:#{1,6}(?:[ \t]|$)|\|)")
# Container markers in front of a line's text: "> ", "- ", "1. ", "> - " ...
_CONTAINERS = re.compile(r"^(?:[ \t]*(?:>[ \t]?|(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)))+")
_HEADING_MARK = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)")
_PARTIAL_FENCE = re.compile(r"^ {0,3}(`+|~+)[ \t]*$")


def close_open_inline(text: str) -> str:
    """``text`` with the inline markup its last block leaves open closed, and markers with no
    text after them yet removed. Inside an open code fence only a half-typed fence line is
    removed."""
    start, fence = _open_segment(text)
    if fence is not None:
        return _without_partial_fence(text, fence)
    scan = _InlineScan(text)
    scan.run(start)
    return _apply_edits(text, scan.removals, scan.closers())


def _open_segment(text: str) -> tuple[int, str | None]:
    """Where the last block's inline text starts, and the code fence the text ends inside."""
    lines = text.split("\n")
    starts: list[int] = []
    offset = 0
    fence: str | None = None
    segment = 0  # the line the open segment starts on
    for i, raw in enumerate(lines):
        starts.append(offset)
        offset += len(raw) + 1
        line = raw.removesuffix("\r")
        if fence is not None:
            close = _FENCE_CLOSE.match(line)
            if close and close[1][0] == fence[0] and len(close[1]) >= len(fence):
                fence = None
                segment = i + 1
            continue
        if opened := _FENCE_OPEN.match(line):
            fence = opened[1]
        elif _BLANK.match(line) or _BREAK_LINE.match(line):
            segment = i + 1
        elif (
            _ONE_LINE_BLOCK.match(line)
            or _CONTAINERS.match(line)
            or (i > segment and _ONE_LINE_BLOCK.match(lines[i - 1]))
        ):
            segment = i
    if fence is not None or segment >= len(lines):
        return len(text), fence
    first = lines[segment]
    marker = _HEADING_MARK.match(first) or _CONTAINERS.match(first)
    return starts[segment] + (len(marker[0]) if marker else 0), fence


def _without_partial_fence(text: str, fence: str) -> str:
    """Inside a fence, a last line that is only the start of a fence (`` ` ``, ``` `` ```) is
    not shown."""
    last = text[text.rfind("\n") + 1 :]
    partial = _PARTIAL_FENCE.match(last)
    return text[: len(text) - len(last)] if partial and partial[1][0] == fence[0] else text


def _is_space(ch: str | None) -> bool:
    return ch is None or ch.isspace()


def _is_punct(ch: str | None) -> bool:
    return ch is not None and unicodedata.category(ch)[0] in "PS"


def _flanking(ch: str, before: str | None, after: str | None) -> tuple[bool, bool]:
    """CommonMark's flanking rules: can a delimiter run open, can it close?"""
    left = not _is_space(after) and (not _is_punct(after) or _is_space(before) or _is_punct(before))
    right = not _is_space(before) and (
        not _is_punct(before) or _is_space(after) or _is_punct(after)
    )
    if ch == "_":
        return left and (not right or _is_punct(before)), right and (not left or _is_punct(after))
    return left, right


@dataclass
class _Delimiter:
    ch: str
    length: int


@dataclass
class _Bracket:
    pos: int
    width: int
    depth: int  # open delimiters when the bracket opened


@dataclass
class _InlineScan:
    """One walk over the open segment: code spans, brackets and emphasis runs."""

    text: str
    removals: list[tuple[int, int]] = field(default_factory=list)
    delims: list[_Delimiter] = field(default_factory=list)
    brackets: list[_Bracket] = field(default_factory=list)
    code: tuple[int, int] | None = None  # an open code span: (position, run length)

    def _at(self, i: int) -> str | None:
        return self.text[i] if 0 <= i < len(self.text) else None

    def run(self, i: int) -> None:
        """Scan from ``i`` to the end of the text."""
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == "\\" and self.code is None:
                i += 2
            elif ch == "`":
                i = self._backticks(i)
            elif self.code is not None:
                i += 1
            elif ch == "[" or (ch == "!" and self._at(i + 1) == "["):
                width = 2 if ch == "!" else 1
                self.brackets.append(_Bracket(i, width, len(self.delims)))
                i += width
            elif ch == "]" and self.brackets:
                bracket = self.brackets.pop()
                end = _link_end(text, i)
                if end is None:
                    # "[text](http..." or "[text]" at the very end: the text, not the syntax.
                    self.removals += [(bracket.pos, bracket.pos + bracket.width), (i, len(text))]
                    break
                if end > i + 1:
                    del self.delims[bracket.depth :]
                i = end
            elif ch in "*_~":
                i = self._delimiter_run(i)
            else:
                i += 1
        self.removals += [(b.pos, b.pos + b.width) for b in self.brackets]
        if self.code is not None and sum(self.code) >= len(text):
            self.removals.append((self.code[0], len(text)))
            self.code = None

    def closers(self) -> str:
        """What to append: the open code span's run, then the open emphasis runs, innermost
        first."""
        emphasis = "".join(d.ch * d.length for d in reversed(self.delims))
        return ("`" * self.code[1] if self.code is not None else "") + emphasis

    def _backticks(self, i: int) -> int:
        length = _run_length(self.text, i)
        if self.code is None:
            self.code = (i, length)
        elif self.code[1] == length:
            self.code = None
        return i + length

    def _delimiter_run(self, i: int) -> int:
        """One run of ``*``, ``_`` or ``~``: match it against open runs or open a new one."""
        ch = self.text[i]
        length = _run_length(self.text, i)
        end = i + length
        if ch == "~" and length > 2:
            return end  # not strikethrough: literal
        can_open, can_close = _flanking(ch, self._at(i - 1), self._at(end))
        if can_close:
            for k in range(len(self.delims) - 1, -1, -1):
                opener = self.delims[k]
                if length == 0:
                    break
                if opener.ch != ch or (ch == "~" and opener.length != length):
                    continue
                used = min(opener.length, length)
                opener.length -= used
                length -= used
                # Runs opened inside this pair and never closed stay literal: forget them.
                del self.delims[k if opener.length == 0 else k + 1 :]
        if length > 0 and end >= len(self.text):
            self.removals.append((end - length, end))  # nothing after it yet
        elif length > 0 and can_open:
            self.delims.append(_Delimiter(ch, length))
        return end


def _run_length(text: str, i: int) -> int:
    end = i
    while end < len(text) and text[end] == text[i]:
        end += 1
    return end - i


def _link_end(text: str, i: int) -> int | None:
    """After a ``]``: the index past a complete ``(destination "title")``, ``i + 1`` when what
    follows is not a link, or None when the text ends before anyone can tell."""
    n = len(text)
    if i + 1 >= n:
        return None
    if text[i + 1] != "(":
        return i + 1
    j = i + 2
    while j < n and not text[j].isspace() and text[j] != ")":
        j += 2 if text[j] == "\\" else 1
    while j < n and text[j].isspace():
        j += 1
    if j >= n:
        return None
    if text[j] == ")":
        return j + 1
    quote = {'"': '"', "'": "'", "(": ")"}.get(text[j])
    if quote is None:
        return i + 1  # a space in the destination: not a link
    close = text.find(quote, j + 1)
    if close < 0:
        return None
    k = close + 1
    while k < n and text[k].isspace():
        k += 1
    if k >= n:
        return None
    return k + 1 if text[k] == ")" else i + 1


def _apply_edits(text: str, removals: list[tuple[int, int]], closers: str) -> str:
    if not removals and not closers:
        return text
    parts, at = [], 0
    for start, end in sorted(removals):
        if start > at:
            parts.append(text[at:start])
        at = max(at, end)
    parts.append(text[at:])
    out = "".join(parts)
    # A closing run must touch the text it closes: "**bold **" would stay raw.
    return out.rstrip() + closers if closers else out
