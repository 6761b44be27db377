// Markdown cut off mid-construct, made displayable: while an answer streams (or after it was
// stopped), its last block can end inside "**bold", "`code" or "[link](http". Rendered as it
// is, marked shows the raw markers until the closing ones arrive, and the text jumps when they
// do. closeOpenInline() closes what is open in the last block and hides markers that have no
// text after them yet (a closing fence being typed too), so the open block renders as it will
// once finished.
//
// The terminal renderer has the same rule in Python (gloo_stream/partial_markdown.py); both
// are tested on one table of cases (tests/partial_markdown_cases.json).

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;
const BLANK = /^[ \t\r]*$/;
// Lines that end the paragraph before them and hold no inline text of their own to scan.
const BREAK_LINE = /^ {0,3}(?:([-*_])(?:[ \t]*\1){2,}|=+)[ \t]*$/;
// A line that starts a block whose text runs to the end: a heading, or a table row.
const ONE_LINE_BLOCK = /^ {0,3}(?:#{1,6}(?:[ \t]|$)|\|)/;
// Container markers in front of a line's text: "> ", "- ", "1. ", "> - " ...
const CONTAINERS = /^(?:[ \t]*(?:>[ \t]?|(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)))+/;
const HEADING_MARK = /^ {0,3}#{1,6}(?:[ \t]+|$)/;
const PUNCTUATION = /[\p{P}\p{S}]/u;
const WHITESPACE = /\s/u;

/**
 * `text` with the inline markup its last block leaves open closed, and markers with no text
 * after them yet removed. Inside an open code fence only a half-typed fence line is removed.
 * @param {string} text
 * @returns {string}
 */
export function closeOpenInline(text) {
  const { start, fence } = openSegment(text);
  if (fence !== null) return withoutPartialFence(text, fence);
  const scan = scanInline(text, start);
  return applyEdits(text, scan.removals, scan.closers);
}

/** Where the last block's inline text starts, and the code fence the text ends inside. */
function openSegment(text) {
  const lines = text.split("\n");
  const starts = [];
  let offset = 0;
  let fence = null;
  let segment = 0; // the line the open segment starts on
  for (let i = 0; i < lines.length; i++) {
    starts.push(offset);
    offset += lines[i].length + 1;
    const line = lines[i].replace(/\r$/, "");
    if (fence !== null) {
      const close = FENCE_CLOSE.exec(line);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) {
        fence = null;
        segment = i + 1;
      }
      continue;
    }
    const open = FENCE_OPEN.exec(line);
    if (open) fence = open[1];
    else if (BLANK.test(line) || BREAK_LINE.test(line)) segment = i + 1;
    else if (ONE_LINE_BLOCK.test(line) || CONTAINERS.test(line)) segment = i;
    else if (i > segment && ONE_LINE_BLOCK.test(lines[i - 1])) segment = i;
  }
  if (fence !== null || segment >= lines.length) return { start: text.length, fence };
  const first = lines[segment];
  const marker = HEADING_MARK.exec(first) ?? CONTAINERS.exec(first);
  return { start: starts[segment] + (marker ? marker[0].length : 0), fence };
}

/** Inside a fence, a last line that is only the start of a fence ("`", "``") is not shown. */
function withoutPartialFence(text, fence) {
  const last = text.slice(text.lastIndexOf("\n") + 1);
  const partial = /^ {0,3}(`+|~+)[ \t]*$/.exec(last);
  return partial && partial[1][0] === fence[0] ? text.slice(0, text.length - last.length) : text;
}

function isSpace(ch) {
  return ch === undefined || WHITESPACE.test(ch);
}

function isPunct(ch) {
  return ch !== undefined && PUNCTUATION.test(ch);
}

/** CommonMark's flanking rules: can a delimiter run open, can it close? */
function flanking(ch, before, after) {
  const left = !isSpace(after) && (!isPunct(after) || isSpace(before) || isPunct(before));
  const right = !isSpace(before) && (!isPunct(before) || isSpace(after) || isPunct(after));
  if (ch === "_") {
    return { open: left && (!right || isPunct(before)), close: right && (!left || isPunct(after)) };
  }
  return { open: left, close: right };
}

/** Walk the open segment: code spans, brackets and emphasis; what to remove and to append. */
function scanInline(text, start) {
  const removals = [];
  const delims = []; // open emphasis runs: {ch, len}
  const brackets = []; // open "[" / "![": {pos, width, depth}
  let code = null; // an open code span: {pos, len}
  let i = start;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "\\" && code === null) {
      i += 2;
      continue;
    }
    if (ch === "`") {
      const len = runLength(text, i);
      if (code === null) code = { pos: i, len };
      else if (code.len === len) code = null;
      i += len;
      continue;
    }
    if (code !== null) {
      i += 1;
      continue;
    }
    if (ch === "[" || (ch === "!" && text[i + 1] === "[")) {
      const width = ch === "!" ? 2 : 1;
      brackets.push({ pos: i, width, depth: delims.length });
      i += width;
      continue;
    }
    if (ch === "]" && brackets.length > 0) {
      i = closeBracket(text, i, brackets.pop(), delims, removals);
      continue;
    }
    if (ch === "*" || ch === "_" || ch === "~") {
      i = delimiterRun(text, i, delims, removals);
      continue;
    }
    i += 1;
  }
  for (const bracket of brackets) removals.push([bracket.pos, bracket.pos + bracket.width]);
  let closers = delims.map((d) => d.ch.repeat(d.len)).reverse().join("");
  if (code !== null) {
    if (code.pos + code.len >= text.length) removals.push([code.pos, text.length]);
    else closers = "`".repeat(code.len) + closers;
  }
  return { removals, closers };
}

/**
 * A "]" that closes `bracket`: the index to go on scanning from, or text.length when the
 * text ends inside the link (then its syntax is removed and its text shown).
 */
function closeBracket(text, i, bracket, delims, removals) {
  const pending = linkEnd(text, i);
  if (pending === "open") {
    // "[text](http..." or "[text]" at the very end: show the text, not the syntax.
    removals.push([bracket.pos, bracket.pos + bracket.width], [i, text.length]);
    return text.length;
  }
  // A whole link: runs opened inside its text and never closed there stay literal.
  if (pending > i + 1) delims.length = Math.min(delims.length, bracket.depth);
  return pending;
}

function runLength(text, i) {
  let end = i;
  while (text[end] === text[i]) end += 1;
  return end - i;
}

/**
 * After a "]": the index past a complete "(destination "title")", i + 1 when what follows
 * is not a link, or "open" when the text ends before anyone can tell.
 */
function linkEnd(text, i) {
  if (i + 1 >= text.length) return "open";
  if (text[i + 1] !== "(") return i + 1;
  let j = i + 2;
  while (j < text.length && !isSpace(text[j]) && text[j] !== ")") j += text[j] === "\\" ? 2 : 1;
  while (j < text.length && isSpace(text[j])) j += 1;
  if (j >= text.length) return "open";
  if (text[j] === ")") return j + 1;
  const quote = { '"': '"', "'": "'", "(": ")" }[text[j]];
  if (quote === undefined) return i + 1; // a space in the destination: not a link
  const close = text.indexOf(quote, j + 1);
  if (close < 0) return "open";
  let k = close + 1;
  while (k < text.length && isSpace(text[k])) k += 1;
  if (k >= text.length) return "open";
  return text[k] === ")" ? k + 1 : i + 1;
}

/** One run of "*", "_" or "~": match it against open runs or open a new one. */
function delimiterRun(text, i, delims, removals) {
  const ch = text[i];
  let len = runLength(text, i);
  const end = i + len;
  if (ch === "~" && len > 2) return end; // not strikethrough: literal
  const { open, close } = flanking(ch, text[i - 1], text[end]);
  if (close) {
    for (let k = delims.length - 1; k >= 0 && len > 0; k--) {
      const opener = delims[k];
      if (opener.ch !== ch || (ch === "~" && opener.len !== len)) continue;
      const used = Math.min(opener.len, len);
      opener.len -= used;
      len -= used;
      // Runs opened inside this pair and never closed stay literal: forget them.
      delims.length = opener.len === 0 ? k : k + 1;
    }
  }
  if (len > 0 && end >= text.length) removals.push([end - len, end]); // nothing after it yet
  else if (len > 0 && open) delims.push({ ch, len });
  return end;
}

function applyEdits(text, removals, closers) {
  if (removals.length === 0 && closers === "") return text;
  removals.sort((a, b) => a[0] - b[0]);
  let out = "";
  let at = 0;
  for (const [from, to] of removals) {
    if (from > at) out += text.slice(at, from);
    at = Math.max(at, to);
  }
  out += text.slice(at);
  // A closing run must touch the text it closes: "**bold **" would stay raw.
  return closers ? out.replace(/\s+$/u, "") + closers : out;
}
