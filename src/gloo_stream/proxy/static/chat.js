// The chat: its turns, and what the user can do with them (send, stop, retry, start over).
// One exchange asks streamAnswer() (completion.js) for an answer and shows it as it arrives.

import { clearPrompt, focusPrompt, setBusy, setStatus, typedMessage } from "./composer.js";
import { streamAnswer } from "./completion.js";
import {
  appendTurn,
  followAnswer,
  keepScrolled,
  renderConversation,
  showPlain,
  streamingMarkdown,
  wasCut,
} from "./conversation.js";
import { API_URL } from "./elements.js";
import { cancelStream } from "./resume.js";
import { authHeaders, settingsParams } from "./settings.js";
import { loadHistory, saveHistory } from "./storage.js";
import { STATE_LABELS, assistantTurnView, showNotice, statsText, userTurnView } from "./turn-view.js";

/** The conversation's state (exported for the browser tests, which read the turns). */
export const chat = {
  /** @type {Array<{role: "user"|"assistant", content: string, state?: string, error?: object|null,
   *   finishReason?: string|null, stats?: object, view?: object}>} */
  turns: [],
  /** the answer in flight: {controller, turn} */
  busy: null,
};

/** The whole history, as the API wants it: failed turns with no text are left out. */
function historyMessages() {
  return chat.turns
    .filter((turn) => turn.content !== "")
    .map((turn) => ({ role: turn.role, content: turn.content }));
}

/** A new, empty answer turn at the end of the conversation: the turn and its view. */
function openAnswer() {
  const turn = { role: "assistant", content: "", state: "connecting", error: null, stats: {} };
  chat.turns.push(turn);
  saveHistory(chat.turns);
  const view = assistantTurnView();
  turn.view = view;
  appendTurn(view.item);
  view.answer.setAttribute("aria-busy", "true");
  view.meta.textContent = statsText(turn);
  view.item.dataset.state = turn.state;
  followAnswer();
  return { turn, view };
}

/** How often an answer in flight is saved, so a reload can continue it (ms). */
const SAVE_EVERY_MS = 250;

/** What to do with each piece of text: add it to the turn and show it. */
function textShower(turn, view) {
  const md = streamingMarkdown(view.answer);
  if (md && turn.content) md.append(turn.content); // an answer continued after a reload
  let lastMeta = 0;
  let lastSave = 0;
  const onText = (text, progress) => {
    if (turn.state !== "streaming") {
      turn.state = "streaming";
      view.item.dataset.state = "streaming";
      setStatus("Streaming…");
    }
    turn.content += text;
    if (md) md.append(text);
    else showPlain(view.answer, turn.content);
    const now = performance.now();
    if (turn.streamId && now - lastSave > SAVE_EVERY_MS) {
      // The text and the id of the event that brought it are saved together: a reload
      // resumes right after what it shows, nothing missed and nothing twice.
      lastSave = now;
      turn.lastEventId = progress.lastEventId;
      saveHistory(chat.turns);
    }
    if (now - lastMeta > 100) {
      // Live figures, a few times a second: cheap, and readable while they change.
      lastMeta = now;
      turn.stats = liveStats(progress, now);
      view.meta.textContent = statsText(turn);
    }
  };
  return { md, onText };
}

async function ask() {
  // History before the new turn joins; usage asked for, so the count shown is the model's own.
  const body = {
    messages: historyMessages(),
    ...settingsParams(),
    stream_options: { include_usage: true },
  };
  const { turn, view } = openAnswer();
  await answer(turn, view, { body });
}

/** Stream `turn`'s answer into `view`: asked with `body`, or continued with `resume`. */
async function answer(turn, view, request) {
  const { md, onText } = textShower(turn, view);
  const controller = new AbortController();
  chat.busy = { controller, turn };
  setBusy(true);
  setStatus(request.resume ? "Reconnecting…" : "Connecting…");
  const outcome = await streamAnswer({
    url: API_URL,
    ...request,
    headers: authHeaders(),
    signal: controller.signal,
    onOpen: () => setStatus("Waiting for the first token…"),
    onText,
    onStreamId: (id) => {
      turn.streamId = id;
      saveHistory(chat.turns);
    },
    onReconnecting: () => showState(turn, view, "reconnecting", "Reconnecting…"),
    onResumed: () => showState(turn, view, "streaming", "Streaming…"),
  });
  md?.flush(true, { cut: wasCut(outcome) });
  finishTurn(turn, view, outcome);
}

function showState(turn, view, state, status) {
  turn.state = state;
  view.item.dataset.state = state;
  view.meta.textContent = statsText(turn);
  setStatus(status);
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

function finishTurn(turn, view, outcome) {
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
  view.answer.setAttribute("aria-busy", "false");
  view.meta.textContent = statsText(turn);
  showNotice(view, turn, true);
  // New chat aborts the answer and drops its turn: that late ending must not touch the page.
  if (chat.busy?.turn !== turn) return;
  chat.busy = null;
  setBusy(false);
  setStatus(
    turn.state === "error" ? `Error: ${turn.error.message}` : STATE_LABELS[turn.state] ?? turn.state,
  );
  saveHistory(chat.turns);
  keepScrolled();
}

/** Send the typed message (Enter or the Send button). */
export function send() {
  const text = typedMessage();
  if (!text) return;
  if (chat.busy) {
    setStatus("Still answering: wait, or press Stop (Esc).");
    return;
  }
  // An earlier failed turn loses its Retry button once the conversation moves on.
  const last = chat.turns.at(-1);
  if (last?.view) showNotice(last.view, last, false);
  chat.turns.push({ role: "user", content: text });
  appendTurn(userTurnView({ content: text }));
  clearPrompt();
  ask();
}

/** Stop the answer in flight, keeping what arrived (Stop, or Esc). */
export function stop() {
  const busy = chat.busy;
  if (!busy) return;
  busy.controller.abort();
  // Leaving is not stopping for a resumable answer: the proxy would go on generating it.
  const streamId = busy.turn.streamId;
  if (streamId) cancelStream({ apiUrl: API_URL, streamId, headers: authHeaders() });
}

/** Is an answer streaming? */
export const answering = () => chat.busy !== null;

/** Ask again for the last answer (its Retry button). */
export function retryLast() {
  if (chat.busy) return;
  const last = chat.turns.at(-1);
  if (last?.role !== "assistant") return;
  chat.turns.pop();
  last.view?.item.remove();
  focusPrompt();
  ask();
}

/** Forget the conversation, stopping an answer in flight. */
export function newChat() {
  stop();
  chat.busy = null;
  setBusy(false);
  chat.turns = [];
  saveHistory(chat.turns);
  renderConversation(chat.turns);
  setStatus("New chat");
  focusPrompt();
}

/** Show the conversation saved in this browser (at start-up), and continue an answer a
 * reload interrupted, when the proxy still has it. */
export function restoreChat() {
  chat.turns = loadHistory();
  renderConversation(chat.turns);
  const last = chat.turns.at(-1);
  if (last?.role === "assistant" && last.state === "reconnecting" && last.view) {
    last.view.answer.setAttribute("aria-busy", "true");
    answer(last, last.view, { resume: { streamId: last.streamId, lastEventId: last.lastEventId ?? "" } });
  }
}
