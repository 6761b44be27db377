// What an answer carries beside its text, as plain data kept on the turn (model.js) and saved
// with it: the model's reasoning, the grounded answer's sources, the tool calls it streams, the
// seams of a continued answer, and whether its text is JSON. Knows nothing about the DOM:
// answer-parts-view.js draws these.

/** Schemes a source's link may have: anything else (javascript:, data:, ...) stays text. */
const LINK_SCHEMES = new Set(["http:", "https:"]);
/** A seam's marker in the text handed to the markdown renderer: one private-use character per
 * seam (U+E000 + n), never in the turn's own text, turned into a <span> once rendered. */
export const SEAM_BASE = 0xe000;
const MAX_SEAMS = 0xff;

/** Why a continuation happened, in words for the seam's tooltip. */
const SEAM_REASONS = {
  disconnected: "the connection to the model dropped",
  timeout: "the model went silent",
  truncated: "the stream ended before the answer did",
  upstream_error: "the model failed mid-answer",
};

/** The string of a field that may be missing or of another type. */
function text(value) {
  return typeof value === "string" ? value : value == null ? "" : String(value);
}

/**
 * One source as the page keeps it: `{title, url, snippet, publisher}` (strings, "" when
 * absent), from whichever field names the upstream used (contracts.md: `url` or `link`,
 * `snippet` or `text` or `content`).
 */
export function sourceOf(item) {
  if (typeof item === "string") return { title: item, url: item, snippet: "", publisher: "" };
  const raw = item && typeof item === "object" ? item : {};
  return {
    title: text(raw.title ?? raw.name),
    url: text(raw.url ?? raw.link ?? raw.uri),
    snippet: text(raw.snippet ?? raw.text ?? raw.content),
    publisher: text(raw.publisher ?? raw.source ?? raw.site_name),
  };
}

/** The URL to link to when `url` is an absolute http(s) URL, else null (shown as text). */
export function safeLink(url) {
  try {
    const parsed = new URL(url);
    return LINK_SCHEMES.has(parsed.protocol) ? parsed.href : null;
  } catch {
    return null; // relative, or not a URL at all
  }
}

/** Add one streamed tool-call delta to `calls` (by its `index`); returns the call it grew. */
export function addToolCallDelta(calls, delta) {
  const index = Number.isInteger(delta.index) ? delta.index : calls.length;
  let call = calls.find((known) => known.index === index);
  if (!call) {
    call = { index, id: "", type: "function", name: "", arguments: "" };
    calls.push(call);
    calls.sort((a, b) => a.index - b.index);
  }
  if (delta.id) call.id = text(delta.id);
  if (delta.type) call.type = text(delta.type);
  const fn = delta.function ?? {};
  // The name comes whole in the first delta; a provider repeating it must not double it.
  if (fn.name && fn.name !== call.name) call.name += text(fn.name);
  if (fn.arguments) call.arguments += text(fn.arguments);
  return call;
}

/**
 * How a call's arguments read once the answer ended: `{kind: "json", text}` pretty-printed,
 * `{kind: "empty"}`, or `{kind: "invalid"}` (the text is shown as it came, flagged).
 */
export function argumentsOf(call) {
  const raw = call.arguments.trim();
  if (raw === "") return { kind: "empty", text: "" };
  try {
    return { kind: "json", text: JSON.stringify(JSON.parse(raw), null, 2) };
  } catch {
    return { kind: "invalid", text: call.arguments };
  }
}

/** The answer's text pretty-printed when it is, whole, a JSON object or array; else null. */
export function jsonAnswerOf(content) {
  const raw = content.trim();
  if (!(raw.startsWith("{") || raw.startsWith("["))) return null;
  try {
    const value = JSON.parse(raw);
    return value !== null && typeof value === "object" ? JSON.stringify(value, null, 2) : null;
  } catch {
    return null;
  }
}

/** A seam as the page keeps it: where it is in the turn's text and why it is there. */
export function seamOf(continuation, offset) {
  const n = Number.isInteger(continuation.n) && continuation.n > 0 ? continuation.n : 1;
  return {
    n: Math.min(n, MAX_SEAMS),
    reason: text(continuation.reason) || "unknown",
    upstream: text(continuation.upstream) || "primary",
    offset,
  };
}

/** The seam's tooltip: what happened there, in words. */
export function seamTitle(seam) {
  const why = SEAM_REASONS[seam.reason] ?? seam.reason;
  const where = seam.upstream === "fallback" ? " on the fallback upstream" : "";
  return `Continued here${where} (continuation ${seam.n}): ${why}.`;
}

/** The character marking seam `n` in rendered text. */
export function seamMark(n) {
  return String.fromCharCode(SEAM_BASE + n);
}

/** The turn's text with each seam's mark at its offset: what the renderer is given. */
export function markedText(turn) {
  let content = turn.content;
  const seams = [...(turn.seams ?? [])].sort((a, b) => b.offset - a.offset);
  for (const seam of seams) {
    const at = Math.max(0, Math.min(content.length, seam.offset));
    content = content.slice(0, at) + seamMark(seam.n) + content.slice(at);
  }
  return content;
}

/** Who answered: "Gloo" for Gloo's own hosts, else the upstream's host as the proxy named it. */
export function answererOf(upstreamHost) {
  const host = text(upstreamHost).trim().toLowerCase();
  if (host === "") return "Gloo";
  const name = host.replace(/:\d+$/, "");
  return name === "gloo.com" || name.endsWith(".gloo.com") ? "Gloo" : host;
}

/** Words in a stretch of reasoning, for the "Thinking" section's live count. */
export function wordCount(content) {
  const words = content.trim().match(/\S+/g);
  return words ? words.length : 0;
}
