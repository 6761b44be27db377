// The chat's controller: what the user can do with the conversation (send, stop, retry, start
// over) and one exchange, asking streamAnswer() (completion.js) for an answer. As in TodoMVC's
// Controller, it is given the model and the views and binds itself to the views' events; it
// changes the model (model.js) and asks the views to draw, and never touches the DOM itself.

import { addToolCallDelta, seamOf, sourceOf } from "./answer-parts.js";
import { streamAnswer } from "./completion.js";
import { cancelStream } from "./resume.js";
import { STATE_LABELS } from "./turn-view.js";

/** How often, at most, an answer in flight is saved, so a reload, a crash or a closed tab
 * keeps what arrived (and a resumable answer can be continued) (ms). */
const SAVE_EVERY_MS = 250;
/** How often the live figures of an answer in flight are redrawn (ms). */
const STATS_EVERY_MS = 100;

export class ChatController {
  /**
   * @param {{model: import("./model.js").ChatModel,
   *   view: import("./conversation.js").ConversationView,
   *   composer: import("./composer.js").Composer,
   *   settings: import("./settings.js").SettingsPanel, apiUrl: string,
   *   upstream?: string}} parts `upstream`: the host the proxy sends answers to ("" for Gloo)
   */
  constructor({ model, view, composer, settings, apiUrl, upstream = "" }) {
    this.model = model;
    this.view = view;
    this.composer = composer;
    this.settings = settings;
    this.apiUrl = apiUrl;
    this.upstream = upstream;
    this._saveTimer = null;
    /** The page is going away: an answer ending now was ended by that, not by the model. */
    this._leaving = false;
    composer.bindSend(() => this.send());
    composer.bindStop(() => this.stop());
    composer.bindNewChat(() => this.newChat());
    view.bindRetry(() => this.retryLast());
    view.bindPageHide(
      () => this.leave(),
      () => (this._leaving = false), // back from the back/forward cache: still this page
    );
  }

  /** The page is going away (reload, closed tab): save what arrived, now. On the next load
   * an answer still in flight reads as interrupted by the reload, or is resumed. */
  leave() {
    this._leaving = true;
    this._saveNow();
  }

  /** Start-up: the saved settings and conversation come back; markdown-off is said. */
  start() {
    this.settings.restore();
    this.restoreChat();
    if (!this.view.markdown) {
      this.view.showMarkdownOff();
      this.composer.setStatus("Markdown is off: answers show as plain text.");
    }
    this.view.keepScrolled();
    this.composer.focusPrompt();
  }

  /** Send the typed message (Enter or the Send button). */
  send() {
    const text = this.composer.typedMessage();
    if (!text) return;
    if (this.model.busy) {
      this.composer.setStatus("Still answering: wait, or press Stop (Esc).");
      return;
    }
    // An earlier failed turn loses its Retry button once the conversation moves on.
    const last = this.model.last();
    if (last?.role === "assistant") this.view.showNotice(last, false);
    const turn = this.model.add({ role: "user", content: text });
    this.view.addUserTurn(turn);
    this.composer.clearPrompt();
    this._ask();
  }

  /** Stop the answer in flight, keeping what arrived (Stop, or Esc). */
  stop() {
    const busy = this.model.busy;
    if (!busy) return;
    busy.controller.abort();
    // Leaving is not stopping for a resumable answer: the proxy would go on generating it.
    const streamId = busy.turn.streamId;
    if (streamId) cancelStream({ apiUrl: this.apiUrl, streamId, headers: this.settings.authHeaders() });
  }

  /** Ask again for the last answer (its Retry button). */
  retryLast() {
    if (this.model.busy) return;
    const last = this.model.last();
    if (last?.role !== "assistant") return;
    this.model.dropLast();
    this.view.removeTurn(last.id);
    this.composer.focusPrompt();
    this._ask();
  }

  /** Forget the conversation, stopping an answer in flight. */
  newChat() {
    this.stop();
    this.model.busy = null;
    this.composer.setBusy(false);
    this.model.clear();
    this.view.render(this.model.turns);
    this.composer.setStatus("New chat");
    this.composer.focusPrompt();
  }

  /** Show the conversation saved in this browser (at start-up), and continue an answer a
   * reload interrupted, when the proxy still has it. */
  restoreChat() {
    this.model.load();
    this.view.render(this.model.turns);
    const last = this.model.last();
    if (last?.role === "assistant" && last.state === "reconnecting") {
      this._answer(last, { resume: { streamId: last.streamId, lastEventId: last.lastEventId ?? "" } });
    }
  }

  async _ask() {
    // History before the new turn joins; usage asked for, so the count shown is the model's own.
    const body = {
      messages: this.model.messages(),
      ...this.settings.params(),
      stream_options: { include_usage: true },
    };
    const turn = this.model.add({
      role: "assistant",
      content: "",
      state: "connecting",
      error: null,
      stats: {},
      upstream: this.upstream,
      reasoning: "",
      sources: [],
      toolCalls: [],
      seams: [],
    });
    this.view.addAnswer(turn);
    await this._answer(turn, { body });
  }

  /** Stream `turn`'s answer: asked with `body`, or continued with `resume`. */
  async _answer(turn, request) {
    const { model, view, composer } = this;
    view.startStreaming(turn);
    const controller = new AbortController();
    model.busy = { controller, turn };
    composer.setBusy(true);
    composer.setStatus(request.resume ? "Reconnecting…" : "Connecting…");
    const outcome = await streamAnswer({
      url: this.apiUrl,
      ...request,
      headers: this.settings.authHeaders(),
      signal: controller.signal,
      onOpen: () => composer.setStatus("Waiting for the first token…"),
      ...this._takers(turn),
      onStreamId: (id) => {
        turn.streamId = id;
        model.save();
      },
      onReconnecting: () => this._showState(turn, "reconnecting", "Reconnecting…"),
      onResumed: () => this._showState(turn, "streaming", "Streaming…"),
    });
    this._finish(turn, outcome);
  }

  /** What to do with each part of the answer as it arrives: add it to the turn, have it
   * drawn, and have the turn saved soon. */
  _takers(turn) {
    const { view } = this;
    let lastStats = 0;
    // The turn changed with the event that brought it: its id is saved with it, so a reload
    // resumes right after what the saved turn holds, nothing missed and nothing twice.
    const changed = (progress) => {
      turn.lastEventId = progress.lastEventId;
      if (turn.state !== "streaming") this._showState(turn, "streaming", "Streaming…");
      this._saveSoon();
    };
    return {
      onText: (text, progress) => {
        turn.content += text;
        changed(progress);
        view.appendText(turn, text);
        const now = performance.now();
        if (now - lastStats > STATS_EVERY_MS) {
          // Live figures, a few times a second: cheap, and readable while they change.
          lastStats = now;
          turn.stats = liveStats(progress, now);
          view.showStats(turn);
        }
      },
      onReasoning: (text, progress) => {
        turn.reasoning = (turn.reasoning ?? "") + text;
        changed(progress);
        // A reasoning model can think for a long while before its first word: say it is alive.
        if (turn.content === "") this.composer.setStatus("Thinking…");
        view.appendReasoning(turn, text);
      },
      onCitations: (items, progress) => {
        turn.sources = items.map(sourceOf);
        changed(progress);
        view.showSources(turn);
      },
      onToolCall: (delta, progress) => {
        turn.toolCalls ??= [];
        addToolCallDelta(turn.toolCalls, delta);
        changed(progress);
        this.composer.setStatus("Streaming a tool call…");
        view.showToolCalls(turn);
      },
      onSeam: (continuation, progress) => {
        // Where the page's text is now: the proxy's offset counts the same characters, but
        // the text on this page is what the mark must sit in.
        turn.seams ??= [];
        turn.seams.push(seamOf(continuation, turn.content.length));
        changed(progress);
        view.markSeam(turn);
      },
    };
  }

  /** Save within SAVE_EVERY_MS: often enough to lose little, rarely enough to cost nothing. */
  _saveSoon() {
    if (this._saveTimer !== null) return;
    this._saveTimer = setTimeout(() => {
      this._saveTimer = null;
      this.model.save();
    }, SAVE_EVERY_MS);
  }

  _saveNow() {
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    this.model.save();
  }

  _showState(turn, state, status) {
    turn.state = state;
    this.view.showState(turn);
    this.composer.setStatus(status);
  }

  _finish(turn, outcome) {
    // The page is going away and took the connection with it: the saved turn stays as it
    // was (in flight), so the next load says the reload interrupted it, or resumes it.
    if (this._leaving) return;
    const tokens = outcome.usageTokens ?? outcome.tokens;
    turn.state = outcome.state;
    turn.error = outcome.error;
    turn.finishReason = outcome.finishReason;
    delete turn.streamId; // over: nothing left to resume
    delete turn.lastEventId;
    turn.stats = {
      ttftMs: outcome.ttftMs,
      tokens,
      tokensPerSecond: outcome.streamMs > 0 ? tokens / (outcome.streamMs / 1000) : null,
      model: outcome.model,
    };
    this.view.finishAnswer(turn, true);
    // New chat aborts the answer and drops its turn: that late ending must not touch the page.
    if (this.model.busy?.turn !== turn) return;
    this.model.busy = null;
    this.composer.setBusy(false);
    this.composer.setStatus(
      turn.state === "error" ? `Error: ${turn.error.message}` : STATE_LABELS[turn.state] ?? turn.state,
    );
    this._saveNow();
    this.view.keepScrolled();
  }
}

function liveStats(progress, now) {
  const streamMs = progress.firstAt != null ? now - progress.firstAt : 0;
  return {
    ttftMs: progress.ttftMs,
    tokens: progress.tokens,
    tokensPerSecond: streamMs > 0 ? progress.tokens / (streamMs / 1000) : null,
    model: progress.model,
  };
}
