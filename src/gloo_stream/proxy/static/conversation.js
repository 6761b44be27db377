// The conversation view: the list of turns, answers rendered as markdown (or plain text when
// the libraries did not load), following the answer down the page, and copying code blocks.

import { setStatus } from "./composer.js";
import { ui } from "./elements.js";
import { MarkdownFormatter, StreamingMarkdown } from "./markdown.js";
import { assistantTurnView, showNotice, statsText, userTurnView } from "./turn-view.js";

/** @type {MarkdownFormatter | null} null when the vendored libraries failed to load */
export const formatter =
  globalThis.marked && globalThis.DOMPurify
    ? new MarkdownFormatter(globalThis.marked, globalThis.DOMPurify)
    : null;

// Follow the answer only while the reader is at the bottom; scrolling up to read stops it.
let stickToBottom = true;

// --- rendering -----------------------------------------------------------------------------

/** The libraries did not load: plain text, safe as it is, laid out by its own line breaks. */
export function showPlain(element, content) {
  element.classList.add("plain");
  element.textContent = content;
}

/** Stopped, failed or cut by the token limit: the text may end mid-markup. */
export const wasCut = ({ state, finishReason }) => state !== "done" || finishReason === "length";

/** A renderer for an answer as it streams into `element`; null when markdown is off. */
export function streamingMarkdown(element) {
  return formatter ? new StreamingMarkdown(element, formatter, { schedule: afterFrame }) : null;
}

function renderMarkdownInto(element, content, cut) {
  const md = streamingMarkdown(element);
  if (!md) {
    showPlain(element, content);
    return;
  }
  md.append(content);
  md.flush(true, { cut });
}

/** Rebuild the whole conversation from its turns (at start-up and for a new chat). */
export function renderConversation(turns) {
  ui.conversation.replaceChildren();
  turns.forEach((turn, index) => {
    if (turn.role === "user") {
      ui.conversation.append(userTurnView(turn));
      return;
    }
    const view = assistantTurnView();
    renderMarkdownInto(view.answer, turn.content, wasCut(turn));
    view.meta.textContent = statsText(turn);
    showNotice(view, turn, index === turns.length - 1);
    turn.view = view;
    ui.conversation.append(view.item);
  });
  ui.empty.hidden = turns.length > 0;
}

/** Add a turn's item at the end of the conversation. */
export function appendTurn(item) {
  ui.conversation.append(item);
  ui.empty.hidden = true;
}

// --- scrolling -----------------------------------------------------------------------------

function afterFrame(render) {
  requestAnimationFrame(() => {
    render();
    keepScrolled();
  });
}

/** Keep the newest text in sight, unless the reader scrolled up. */
export function keepScrolled() {
  if (stickToBottom) ui.main.scrollTop = ui.main.scrollHeight;
}

/** A new answer starts: follow it down, wherever the reader was. */
export function followAnswer() {
  stickToBottom = true;
  keepScrolled();
}

/** The reader scrolled: follow only while they are (nearly) at the bottom. */
export function readerScrolled() {
  const gap = ui.main.scrollHeight - ui.main.scrollTop - ui.main.clientHeight;
  stickToBottom = gap < 48;
}

// --- copying code --------------------------------------------------------------------------

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No async clipboard (insecure origin, permissions): the selection-based fallback.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** A code block's Copy button was pressed: copy its code, and say whether that worked. */
export async function copyCode(button) {
  const code = button.closest(".codeblock")?.querySelector("pre")?.textContent ?? "";
  const ok = await copyText(code);
  button.textContent = ok ? "Copied" : "Copy failed";
  setStatus(ok ? "Code copied to the clipboard" : "Could not copy the code");
  setTimeout(() => (button.textContent = "Copy"), 1500);
}
