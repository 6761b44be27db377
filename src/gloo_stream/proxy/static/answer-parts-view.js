// The DOM of what an answer carries beside its text (answer-parts.js holds the data): the
// collapsed "Thinking" section above the answer, the tool-call cards and the "Sources" list
// under it, the seam marks of a continued answer, and a JSON answer pretty-printed. Everything
// that came from the model or the upstream is set as textContent or an attribute, never as
// markup: a source's title cannot inject anything, and only an http(s) URL becomes a link.

import {
  SEAM_BASE,
  answererOf,
  argumentsOf,
  safeLink,
  seamTitle,
  wordCount,
} from "./answer-parts.js";

function element(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

// --- thinking ------------------------------------------------------------------------------

/** The "Thinking" section: a <details>, closed, hidden until reasoning arrives. */
export function thinkingView() {
  const details = element("details", "thinking");
  details.hidden = true;
  const summary = element("summary", "thinking-summary");
  const label = element("span", "thinking-label", "Thinking");
  const count = element("span", "thinking-count");
  summary.append(label, " ", count);
  const body = element("div", "thinking-text");
  details.append(summary, body);
  return { details, label, count, body };
}

/** Show the turn's reasoning so far; `live` while it is still being written. */
export function showThinking(view, turn, live) {
  const reasoning = turn.reasoning ?? "";
  view.details.hidden = reasoning === "";
  view.details.classList.toggle("live", live);
  view.label.textContent = live ? "Thinking…" : "Thinking";
  const words = wordCount(reasoning);
  view.count.textContent = `(${words} word${words === 1 ? "" : "s"})`;
}

/** Add a piece of reasoning to the open section (a text node: cheap, and never markup). */
export function appendThinking(view, piece, turn) {
  view.body.append(piece);
  showThinking(view, turn, true);
}

/** Draw the whole reasoning at once (from history). */
export function drawThinking(view, turn) {
  view.body.textContent = turn.reasoning ?? "";
  showThinking(view, turn, false);
}

// --- sources -------------------------------------------------------------------------------

/** The "Sources" list of a grounded answer, numbered; empty (and hidden) without sources. */
export function drawSources(container, sources) {
  container.replaceChildren();
  container.hidden = !sources?.length;
  if (container.hidden) return;
  const heading = element("h3", "sources-title", "Sources");
  const list = element("ol", "sources-list");
  for (const source of sources) list.append(sourceItem(source));
  container.append(heading, list);
}

function sourceItem(source) {
  const item = element("li", "source");
  const title = source.title || source.url || "Untitled source";
  const href = safeLink(source.url);
  if (href) {
    const link = element("a", "source-title", title);
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    item.append(link);
  } else {
    item.append(element("span", "source-title", title));
    // Not a web link (javascript:, data:, relative...): say where it points, as text only.
    if (source.url && source.url !== title) item.append(" ", element("span", "source-url", source.url));
  }
  if (source.publisher) item.append(" ", element("span", "source-publisher", `· ${source.publisher}`));
  if (source.snippet) item.append(element("p", "source-snippet", source.snippet));
  return item;
}

// --- tool calls ----------------------------------------------------------------------------

/** Draw every tool call of the turn; `ended` once the answer is over (pretty-print or flag). */
export function drawToolCalls(container, turn, ended) {
  const calls = turn.toolCalls ?? [];
  container.hidden = calls.length === 0;
  const cards = new Map([...container.children].map((card) => [card.dataset.index, card]));
  for (const call of calls) {
    let card = cards.get(String(call.index));
    if (!card) {
      card = toolCard(call);
      container.append(card);
    }
    fillToolCard(card, call, ended ? turn.state : null);
  }
}

function toolCard(call) {
  const card = element("section", "tool-call");
  card.dataset.index = String(call.index);
  const head = element("header", "tool-call-head");
  head.append(element("span", "tool-call-kind", "Tool call"), " ", element("code", "tool-call-name"));
  const args = element("pre", "tool-call-args");
  const status = element("p", "tool-call-status");
  card.append(head, args, status);
  return card;
}

/** `state`: the answer's state once it ended, null while it streams. */
function fillToolCard(card, call, state) {
  card.querySelector(".tool-call-name").textContent = call.name || "(name not given)";
  const args = card.querySelector(".tool-call-args");
  const status = card.querySelector(".tool-call-status");
  if (state === null) {
    card.dataset.status = "streaming";
    args.textContent = call.arguments;
    status.textContent = `Arguments arriving… (${call.arguments.length} characters)`;
    return;
  }
  const parsed = argumentsOf(call);
  card.dataset.status = parsed.kind;
  card.classList.toggle("invalid", parsed.kind === "invalid");
  args.textContent = parsed.kind === "empty" ? "{}" : parsed.text;
  if (parsed.kind === "json") status.textContent = "Arguments complete (valid JSON).";
  else if (parsed.kind === "empty") status.textContent = "No arguments.";
  else if (state === "done")
    status.textContent = "The arguments are not valid JSON: this call cannot be run as it is.";
  else status.textContent = "The arguments were cut off before they were complete (not valid JSON).";
  status.setAttribute("role", parsed.kind === "invalid" ? "alert" : "status");
}

// --- seams and JSON ------------------------------------------------------------------------

/** Wrap a markdown formatter so the seam marks in its text come out as marker elements. */
export function seamFormatter(formatter, seamsOf) {
  return { fragment: (markdown) => markSeams(formatter.fragment(markdown), seamsOf()) };
}

/** Replace each seam character in `root`'s text by its marker (a thin mark, reason on hover). */
export function markSeams(root, seams) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode())
    if (/[\uE000-\uE0FF]/.test(node.data)) found.push(node);
  for (const node of found) {
    const pieces = node.data.split(/([\uE000-\uE0FF])/);
    node.replaceWith(
      ...pieces
        .filter((piece) => piece !== "")
        .map((piece) => (/^[\uE000-\uE0FF]$/.test(piece) ? seamMarker(piece, seams) : piece)),
    );
  }
  return root;
}

function seamMarker(mark, seams) {
  const n = mark.charCodeAt(0) - SEAM_BASE;
  const seam = (seams ?? []).find((known) => known.n === n) ?? { n, reason: "unknown", upstream: "" };
  const marker = element("span", "seam");
  marker.dataset.n = String(n);
  marker.dataset.reason = seam.reason;
  marker.title = seamTitle(seam);
  marker.setAttribute("role", "img");
  marker.setAttribute("aria-label", seamTitle(seam));
  return marker;
}

/** Show a JSON answer as a pretty-printed code block (with the Copy button code blocks have). */
export function showJsonAnswer(container, pretty) {
  const wrapper = element("div", "codeblock json-answer");
  const bar = element("div", "codeblock-bar");
  bar.append(element("span", "codeblock-lang", "json"));
  const copy = element("button", "copy-code", "Copy");
  copy.type = "button";
  copy.setAttribute("aria-label", "Copy json code");
  bar.append(copy);
  const pre = element("pre");
  pre.append(element("code", "language-json", pretty));
  wrapper.append(bar, pre);
  container.replaceChildren(wrapper);
}

/** The visually hidden heading of an answer: who answered it. */
export function answeredBy(turn) {
  return `${answererOf(turn.upstream)} answered`;
}
