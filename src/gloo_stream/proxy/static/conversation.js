// The conversation view: the list of turns, answers rendered as markdown (or plain text when
// the libraries did not load), following the answer down the page, and copying code blocks.
// The only module that draws turns: the controller (chat.js) hands it turns, which are plain
// data, and it finds their drawing by `turn.id`, as TodoMVC's View finds an item by data-id.

import { MarkdownFormatter, StreamingMarkdown } from "./markdown.js";
import { assistantTurnView, showNotice, statsText, userTurnView } from "./turn-view.js";

/** @type {MarkdownFormatter | null} null when the vendored libraries failed to load */
export const formatter =
  globalThis.marked && globalThis.DOMPurify
    ? new MarkdownFormatter(globalThis.marked, globalThis.DOMPurify)
    : null;

/** Stopped, failed or cut by the token limit: the text may end mid-markup. */
export const wasCut = ({ state, finishReason }) => state !== "done" || finishReason === "length";

/** The libraries did not load: plain text, safe as it is, laid out by its own line breaks. */
function showPlain(element, content) {
  element.classList.add("plain");
  element.textContent = content;
}

export class ConversationView {
  /**
   * @param {ReturnType<import("./elements.js").findElements>} ui
   * @param {{say: (status: string) => void}} options `say`: a line for the status bar
   */
  constructor(ui, { say }) {
    this.ui = ui;
    this._say = say;
    /** Each answer turn's parts `{item, answer, notice, meta}` and, while it streams, its
     * StreamingMarkdown `md`; by turn id. */
    this._answers = new Map();
    // Follow the answer only while the reader is at the bottom; scrolling up to read stops it.
    this._stickToBottom = true;
    ui.main.addEventListener("scroll", () => this._readerScrolled());
    // The Copy buttons come and go with the answers: one listener for all of them.
    ui.conversation.addEventListener("click", (event) => {
      const copy = event.target.closest?.(".copy-code");
      if (copy) this._copyCode(copy);
    });
  }

  /** Call `handler` when the Retry button of the last answer is pressed. */
  bindRetry(handler) {
    this.ui.conversation.addEventListener("click", (event) => {
      if (event.target.closest?.(".retry")) handler();
    });
  }

  /** Does the page render markdown (the vendored libraries loaded)? */
  get markdown() {
    return formatter !== null;
  }

  /** Say on the page that answers are plain text (the libraries did not load). */
  showMarkdownOff() {
    this.ui.markdownOff.hidden = false;
  }

  // --- turns -------------------------------------------------------------------------------

  /** Draw the whole conversation from its turns (at start-up and for a new chat). */
  render(turns) {
    this._answers.clear();
    this.ui.conversation.replaceChildren();
    turns.forEach((turn, index) => {
      if (turn.role === "user") {
        this.ui.conversation.append(userTurnView(turn));
        return;
      }
      const parts = this._answerParts(turn);
      renderMarkdownInto(parts.answer, turn.content, wasCut(turn), () => this.keepScrolled());
      parts.meta.textContent = statsText(turn);
      showNotice(parts, turn, index === turns.length - 1);
      this.ui.conversation.append(parts.item);
    });
    this.ui.empty.hidden = turns.length > 0;
  }

  /** Draw the user's turn at the end. */
  addUserTurn(turn) {
    this._append(userTurnView(turn));
  }

  /** Draw a new, empty answer turn at the end, and follow it down the page. */
  addAnswer(turn) {
    this._append(this._answerParts(turn).item);
    this._stickToBottom = true;
    this.keepScrolled();
  }

  /** Get ready to stream text into `turn`'s answer (what it has already is shown first). */
  startStreaming(turn) {
    const parts = this._answers.get(turn.id);
    if (!parts) return;
    parts.md = streamingMarkdown(parts.answer, () => this.keepScrolled());
    if (parts.md && turn.content) parts.md.append(turn.content); // continued after a reload
    parts.answer.setAttribute("aria-busy", "true");
    this.showState(turn);
  }

  /** Show `text`, just added to the answer whose whole text is now `content`. */
  appendText(turnId, text, content) {
    const parts = this._answers.get(turnId);
    if (!parts) return;
    if (parts.md) parts.md.append(text);
    else showPlain(parts.answer, content);
  }

  /** Show the turn's state and figures. */
  showState(turn) {
    const parts = this._answers.get(turn.id);
    if (!parts) return;
    parts.item.dataset.state = turn.state;
    this.showStats(turn);
  }

  /** Show the turn's figures line. */
  showStats(turn) {
    const parts = this._answers.get(turn.id);
    if (parts) parts.meta.textContent = statsText(turn);
  }

  /** The answer ended: render its last text (closing markup a cut left open), its figures
   * and, when it needs saying, why it ended (with Retry when it is the last turn). */
  finishAnswer(turn, isLast) {
    const parts = this._answers.get(turn.id);
    if (!parts) return; // New chat dropped it before it ended
    parts.md?.flush(true, { cut: wasCut(turn) });
    parts.md = null;
    parts.answer.setAttribute("aria-busy", "false");
    parts.meta.textContent = statsText(turn);
    showNotice(parts, turn, isLast);
  }

  /** Redraw why the answer ended (its Retry button goes once the conversation moves on). */
  showNotice(turn, isLast) {
    const parts = this._answers.get(turn.id);
    if (parts) showNotice(parts, turn, isLast);
  }

  /** Take a turn off the page. */
  removeTurn(turnId) {
    this._answers.get(turnId)?.item.remove();
    this._answers.delete(turnId);
  }

  _answerParts(turn) {
    const parts = assistantTurnView();
    parts.item.dataset.state = turn.state;
    this._answers.set(turn.id, parts);
    return parts;
  }

  _append(item) {
    this.ui.conversation.append(item);
    this.ui.empty.hidden = true;
  }

  // --- scrolling ---------------------------------------------------------------------------

  /** Keep the newest text in sight, unless the reader scrolled up. */
  keepScrolled() {
    if (this._stickToBottom) this.ui.main.scrollTop = this.ui.main.scrollHeight;
  }

  /** The reader scrolled: follow only while they are (nearly) at the bottom. */
  _readerScrolled() {
    const { main } = this.ui;
    const gap = main.scrollHeight - main.scrollTop - main.clientHeight;
    this._stickToBottom = gap < 48;
  }

  // --- copying code ------------------------------------------------------------------------

  /** A code block's Copy button was pressed: copy its code, and say whether that worked. */
  async _copyCode(button) {
    const code = button.closest(".codeblock")?.querySelector("pre")?.textContent ?? "";
    const ok = await copyText(code, button.ownerDocument);
    button.textContent = ok ? "Copied" : "Copy failed";
    this._say(ok ? "Code copied to the clipboard" : "Could not copy the code");
    setTimeout(() => (button.textContent = "Copy"), 1500);
  }
}

/** A renderer for an answer as it streams into `element`; null when markdown is off. Each
 * frame that renders also keeps the answer in sight (`rendered`). */
function streamingMarkdown(element, rendered) {
  if (!formatter) return null;
  const schedule = (render) =>
    requestAnimationFrame(() => {
      render();
      rendered();
    });
  return new StreamingMarkdown(element, formatter, { schedule });
}

function renderMarkdownInto(element, content, cut, rendered) {
  const md = streamingMarkdown(element, rendered);
  if (!md) {
    showPlain(element, content);
    return;
  }
  md.append(content);
  md.flush(true, { cut });
}

async function copyText(text, doc) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No async clipboard (insecure origin, permissions): the selection-based fallback.
    const area = doc.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    doc.body.append(area);
    area.select();
    const ok = doc.execCommand("copy");
    area.remove();
    return ok;
  }
}
