// The conversation view: the list of turns, answers rendered as markdown (or plain text when
// the libraries did not load), following the answer down the page, and copying code blocks.
// The only module that draws turns: the controller (chat.js) hands it turns, which are plain
// data, and it finds their drawing by `turn.id`, as TodoMVC's View finds an item by data-id.

import { jsonAnswerOf, markedText, seamMark } from "./answer-parts.js";
import {
  appendThinking,
  drawSources,
  drawThinking,
  drawToolCalls,
  markSeams,
  seamFormatter,
  showJsonAnswer,
  showThinking,
} from "./answer-parts-view.js";
import { MarkdownFormatter, StreamingMarkdown } from "./markdown.js";
import { assistantTurnView, showNotice, statsText, userTurnView } from "./turn-view.js";

/** @type {MarkdownFormatter | null} null when the vendored libraries failed to load */
export const formatter =
  globalThis.marked && globalThis.DOMPurify
    ? new MarkdownFormatter(globalThis.marked, globalThis.DOMPurify)
    : null;

/** Stopped, failed or cut by the token limit: the text may end mid-markup. */
export const wasCut = ({ state, finishReason }) => state !== "done" || finishReason === "length";

/** The libraries did not load: plain text, safe as it is, laid out by its own line breaks
 * (with the seams of a continued answer marked). */
function showPlain(element, turn) {
  element.classList.add("plain");
  element.textContent = markedText(turn);
  markSeams(element, turn.seams);
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
      drawThinking(parts.thinking, turn);
      renderMarkdownInto(parts.answer, turn, () => this.keepScrolled());
      drawToolCalls(parts.tools, turn, true);
      drawSources(parts.sources, turn.sources);
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
    parts.md = streamingMarkdown(parts.answer, turn, () => this.keepScrolled());
    // Continued after a reload: what arrived before it is shown first.
    if (parts.md && turn.content) parts.md.append(markedText(turn));
    if (turn.reasoning) showThinking(parts.thinking, turn, true);
    parts.answer.setAttribute("aria-busy", "true");
    this.showState(turn);
  }

  /** Show `text`, just added to `turn`'s answer. */
  appendText(turn, text) {
    const parts = this._answers.get(turn.id);
    if (!parts) return;
    if (turn.reasoning) showThinking(parts.thinking, turn, false); // the answer began
    if (parts.md) parts.md.append(text);
    else showPlain(parts.answer, turn);
  }

  /** Show `text`, just added to `turn`'s reasoning, in its "Thinking" section (never in the
   * answer's text). */
  appendReasoning(turn, text) {
    const parts = this._answers.get(turn.id);
    if (parts) appendThinking(parts.thinking, text, turn);
  }

  /** Show the sources of `turn`'s grounded answer. */
  showSources(turn) {
    const parts = this._answers.get(turn.id);
    if (parts) drawSources(parts.sources, turn.sources);
  }

  /** Show `turn`'s tool calls as they grow. */
  showToolCalls(turn) {
    const parts = this._answers.get(turn.id);
    if (parts) drawToolCalls(parts.tools, turn, false);
  }

  /** Mark a seam (turn.seams' last) where the answer's text is now. */
  markSeam(turn) {
    const parts = this._answers.get(turn.id);
    const seam = turn.seams?.at(-1);
    if (!parts || !seam) return;
    if (parts.md) parts.md.append(seamMark(seam.n));
    else showPlain(parts.answer, turn);
  }

  /** Call `onHide` when the page goes away (reload, closed tab, navigation), and `onBack`
   * when it comes back from the back/forward cache. */
  bindPageHide(onHide, onBack) {
    const win = this.ui.conversation.ownerDocument.defaultView;
    win.addEventListener("pagehide", onHide);
    win.addEventListener("pageshow", (event) => {
      if (event.persisted) onBack();
    });
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
    const json = turn.state === "done" ? jsonAnswerOf(turn.content) : null;
    if (json !== null) showJsonAnswer(parts.answer, json);
    showThinking(parts.thinking, turn, false);
    drawToolCalls(parts.tools, turn, true);
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
    const parts = assistantTurnView(turn);
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

/** A renderer for `turn`'s answer as it streams into `element` (seam marks drawn); null when
 * markdown is off. Each frame that renders also keeps the answer in sight (`rendered`). */
function streamingMarkdown(element, turn, rendered) {
  if (!formatter) return null;
  const schedule = (render) =>
    requestAnimationFrame(() => {
      render();
      rendered();
    });
  return new StreamingMarkdown(element, seamFormatter(formatter, () => turn.seams), { schedule });
}

/** Draw a saved answer at once: a JSON answer pretty-printed, any other as markdown. */
function renderMarkdownInto(element, turn, rendered) {
  const json = turn.state === "done" ? jsonAnswerOf(turn.content) : null;
  if (json !== null) {
    showJsonAnswer(element, json);
    return;
  }
  const md = streamingMarkdown(element, turn, rendered);
  if (!md) {
    showPlain(element, turn);
    return;
  }
  md.append(markedText(turn));
  md.flush(true, { cut: wasCut(turn) });
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
