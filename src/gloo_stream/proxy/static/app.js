// The chat page: conversation state, the DOM for each turn, keyboard handling, settings and
// history in localStorage. Streaming lives in completion.js, markdown in markdown.js.

import { streamAnswer } from "./completion.js";
import { MarkdownFormatter, StreamingMarkdown } from "./markdown.js";

const HISTORY_KEY = "gloo-stream.chat.v1";
const SETTINGS_KEY = "gloo-stream.settings.v1";
const API_URL = document.body.dataset.api || "/api/stream";

const $ = (id) => document.getElementById(id);
const ui = {
  main: $("main"),
  conversation: $("conversation"),
  empty: $("empty"),
  form: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  status: $("status"),
  newChat: $("new-chat"),
  settingsToggle: $("settings-toggle"),
  settings: $("settings"),
  family: $("model-family"),
  model: $("model"),
  tradition: $("tradition"),
  apiKey: $("api-key"),
  markdownOff: $("markdown-off"),
};

/** @type {MarkdownFormatter | null} null when the vendored libraries failed to load */
const formatter =
  globalThis.marked && globalThis.DOMPurify
    ? new MarkdownFormatter(globalThis.marked, globalThis.DOMPurify)
    : null;

const chat = {
  /** @type {Array<{role: "user"|"assistant", content: string, state?: string, error?: object|null,
   *   finishReason?: string|null, stats?: object}>} */
  turns: [],
  /** the answer in flight: {controller, turn} */
  busy: null,
  stickToBottom: true,
};

// --- storage -------------------------------------------------------------------------------

function load(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback; // storage disabled or corrupt: start fresh rather than not at all
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled storage only loses persistence, never the chat itself.
  }
}

// `view` holds a turn's DOM nodes: never stored.
const saveHistory = () =>
  store(HISTORY_KEY, { turns: chat.turns.map(({ view, ...turn }) => turn) });

function readSettings() {
  const routing = document.querySelector('input[name="routing"]:checked')?.value ?? "auto";
  return {
    routing,
    family: ui.family.value,
    model: ui.model.value,
    tradition: ui.tradition.value,
    apiKey: ui.apiKey.value,
  };
}

function applySettings(saved) {
  const radio = document.querySelector(`input[name="routing"][value="${saved.routing}"]`);
  if (radio) radio.checked = true;
  if (saved.family) ui.family.value = saved.family;
  if (typeof saved.model === "string") ui.model.value = saved.model;
  if (saved.tradition !== undefined) ui.tradition.value = saved.tradition;
  if (saved.apiKey) ui.apiKey.value = saved.apiKey;
  enableRoutingFields();
}

/** Only the chosen routing's own field can be edited (and reached with Tab). */
function enableRoutingFields() {
  const { routing } = readSettings();
  ui.family.disabled = routing !== "family";
  ui.model.disabled = routing !== "model";
}

// --- the request ---------------------------------------------------------------------------

/** The whole history, as the API wants it: failed turns with no text are left out. */
function historyMessages() {
  return chat.turns
    .filter((turn) => turn.content !== "")
    .map((turn) => ({ role: turn.role, content: turn.content }));
}

function requestBody() {
  const settings = readSettings();
  const body = { messages: historyMessages() };
  // At most one routing mechanism, as the API asks. None at all lets the proxy apply its
  // default (GLOO_MODEL), or Gloo's auto-routing when it has none.
  const model = settings.model.trim();
  if (settings.routing === "family") body.model_family = settings.family;
  else if (settings.routing === "model" && model) body.model = model;
  if (settings.tradition) body.tradition = settings.tradition;
  return body;
}

function requestHeaders() {
  const key = readSettings().apiKey.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

// --- turns in the DOM ----------------------------------------------------------------------

function userTurnView(turn) {
  const item = document.createElement("li");
  item.className = "turn user";
  const who = document.createElement("h2");
  who.className = "visually-hidden";
  who.textContent = "You said";
  const text = document.createElement("div");
  text.className = "bubble";
  text.textContent = turn.content; // user text is never interpreted as markup
  item.append(who, text);
  return item;
}

function assistantTurnView() {
  const item = document.createElement("li");
  item.className = "turn assistant";
  const who = document.createElement("h2");
  who.className = "visually-hidden";
  who.textContent = "Gloo answered";
  const answer = document.createElement("div");
  answer.className = "answer markdown";
  // Announced politely, and only once the answer settles (aria-busy), not token by token.
  answer.setAttribute("aria-live", "polite");
  const notice = document.createElement("div");
  notice.className = "notice";
  notice.hidden = true;
  const meta = document.createElement("p");
  meta.className = "meta";
  item.append(who, answer, notice, meta);
  return { item, answer, notice, meta };
}

const STATE_LABELS = {
  connecting: "Connecting…",
  streaming: "Streaming…",
  done: "Done",
  stopped: "Stopped",
  error: "Error",
  cut: "Cut off",
  filtered: "Filtered",
};

function statsText(turn) {
  const parts = [STATE_LABELS[turn.state] ?? turn.state];
  const stats = turn.stats ?? {};
  if (stats.ttftMs != null) parts.push(`TTFT ${Math.round(stats.ttftMs)} ms`);
  if (stats.tokens) parts.push(`${stats.tokens} token${stats.tokens === 1 ? "" : "s"}`);
  if (stats.tokensPerSecond) parts.push(`${stats.tokensPerSecond.toFixed(1)} tok/s`);
  if (stats.model) parts.push(stats.model);
  return parts.join(" · ");
}

function noticeFor(turn) {
  switch (turn.state) {
    case "error":
      return { text: turn.error?.message ?? "The answer failed.", kind: "error", retry: true };
    case "cut":
      return {
        text: "The answer was cut off: the stream ended before the model finished.",
        kind: "error",
        retry: true,
      };
    case "stopped":
      return { text: "You stopped this answer; what arrived is kept.", kind: "info", retry: true };
    case "filtered":
      return { text: "The answer was stopped by the content filter.", kind: "error", retry: false };
    case "done":
      if (turn.finishReason === "length")
        return { text: "The answer reached the token limit.", kind: "info", retry: false };
      if (turn.content === "")
        return { text: "The model returned an empty answer.", kind: "info", retry: true };
      return null;
    default:
      return null;
  }
}

function showNotice(view, turn, isLast) {
  const notice = noticeFor(turn);
  view.notice.replaceChildren();
  view.notice.hidden = notice === null;
  view.item.dataset.state = turn.state;
  if (notice === null) return;
  view.notice.className = `notice ${notice.kind}`;
  view.notice.setAttribute("role", notice.kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = notice.text;
  view.notice.append(text);
  if (notice.retry && isLast) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", retryLast);
    view.notice.append(" ", retry);
  }
}

/** The libraries did not load: plain text, safe as it is, laid out by its own line breaks. */
function showPlain(element, content) {
  element.classList.add("plain");
  element.textContent = content;
}

/** Stopped, failed or cut by the token limit: the text may end mid-markup. */
const wasCut = ({ state, finishReason }) => state !== "done" || finishReason === "length";

function renderMarkdownInto(element, content, cut) {
  if (!formatter) {
    showPlain(element, content);
    return null;
  }
  const md = new StreamingMarkdown(element, formatter, { schedule: afterFrame });
  md.append(content);
  md.flush(true, { cut });
  return md;
}

function renderConversation() {
  ui.conversation.replaceChildren();
  chat.turns.forEach((turn, index) => {
    if (turn.role === "user") {
      ui.conversation.append(userTurnView(turn));
      return;
    }
    const view = assistantTurnView();
    renderMarkdownInto(view.answer, turn.content, wasCut(turn));
    view.meta.textContent = statsText(turn);
    showNotice(view, turn, index === chat.turns.length - 1);
    turn.view = view;
    ui.conversation.append(view.item);
  });
  ui.empty.hidden = chat.turns.length > 0;
}

// --- scrolling -----------------------------------------------------------------------------

function afterFrame(render) {
  requestAnimationFrame(() => {
    render();
    keepScrolled();
  });
}

function keepScrolled() {
  if (chat.stickToBottom) ui.main.scrollTop = ui.main.scrollHeight;
}

ui.main.addEventListener("scroll", () => {
  // Follow the answer only while the reader is at the bottom; scrolling up to read stops it.
  const gap = ui.main.scrollHeight - ui.main.scrollTop - ui.main.clientHeight;
  chat.stickToBottom = gap < 48;
});

// --- asking --------------------------------------------------------------------------------

function setBusy(busy) {
  const stopHadFocus = document.activeElement === ui.stop;
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  document.body.classList.toggle("busy", busy);
  // A disabled button drops focus to <body>; give keyboard users the message box instead.
  if (!busy && stopHadFocus) ui.prompt.focus();
}

function setStatus(text) {
  ui.status.textContent = text;
}

async function ask() {
  const turn = { role: "assistant", content: "", state: "connecting", error: null, stats: {} };
  const body = requestBody(); // built before the new (empty) turn joins the history
  chat.turns.push(turn);
  saveHistory();
  const view = assistantTurnView();
  turn.view = view;
  ui.conversation.append(view.item);
  ui.empty.hidden = true;
  view.answer.setAttribute("aria-busy", "true");
  view.meta.textContent = statsText(turn);
  view.item.dataset.state = turn.state;
  chat.stickToBottom = true;
  keepScrolled();

  const md = formatter ? new StreamingMarkdown(view.answer, formatter, { schedule: afterFrame }) : null;
  const controller = new AbortController();
  chat.busy = { controller, turn };
  setBusy(true);
  setStatus("Connecting…");
  let lastMeta = 0;
  const outcome = await streamAnswer({
    url: API_URL,
    body,
    headers: requestHeaders(),
    signal: controller.signal,
    onOpen: () => setStatus("Waiting for the first token…"),
    onText: (text, progress) => {
      if (turn.state !== "streaming") {
        turn.state = "streaming";
        view.item.dataset.state = "streaming";
        setStatus("Streaming…");
      }
      turn.content += text;
      if (md) md.append(text);
      else showPlain(view.answer, turn.content);
      const now = performance.now();
      if (now - lastMeta > 100) {
        // Live figures, a few times a second: cheap, and readable while they change.
        lastMeta = now;
        turn.stats = liveStats(progress, now);
        view.meta.textContent = statsText(turn);
      }
    },
  });
  md?.flush(true, { cut: wasCut(outcome) });
  finishTurn(turn, view, outcome);
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
  saveHistory();
  keepScrolled();
}

function send() {
  const text = ui.prompt.value.trim();
  if (!text) return;
  if (chat.busy) {
    setStatus("Still answering: wait, or press Stop (Esc).");
    return;
  }
  // An earlier failed turn loses its Retry button once the conversation moves on.
  const last = chat.turns.at(-1);
  if (last?.view) showNotice(last.view, last, false);
  chat.turns.push({ role: "user", content: text });
  ui.conversation.append(userTurnView({ content: text }));
  ui.prompt.value = "";
  resizePrompt();
  ask();
}

function stop() {
  chat.busy?.controller.abort();
}

function retryLast() {
  if (chat.busy) return;
  const last = chat.turns.at(-1);
  if (last?.role !== "assistant") return;
  chat.turns.pop();
  last.view?.item.remove();
  ui.prompt.focus();
  ask();
}

function newChat() {
  stop();
  chat.busy = null;
  setBusy(false);
  chat.turns = [];
  saveHistory();
  renderConversation();
  setStatus("New chat");
  ui.prompt.focus();
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

ui.conversation.addEventListener("click", async (event) => {
  const button = event.target.closest?.(".copy-code");
  if (!button) return;
  const code = button.closest(".codeblock")?.querySelector("pre")?.textContent ?? "";
  const ok = await copyText(code);
  button.textContent = ok ? "Copied" : "Copy failed";
  setStatus(ok ? "Code copied to the clipboard" : "Could not copy the code");
  setTimeout(() => (button.textContent = "Copy"), 1500);
});

// --- input ---------------------------------------------------------------------------------

function resizePrompt() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 200)}px`;
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

ui.prompt.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; never while an IME is composing a character.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
ui.prompt.addEventListener("input", resizePrompt);

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && chat.busy) {
    event.preventDefault();
    stop();
  }
});

ui.stop.addEventListener("click", stop);
ui.newChat.addEventListener("click", newChat);

ui.settingsToggle.addEventListener("click", () => {
  const open = ui.settings.hidden;
  ui.settings.hidden = !open;
  ui.settingsToggle.setAttribute("aria-expanded", String(open));
});

// Enter in a settings field must not submit (and reload) anything: settings apply on change.
ui.settings.addEventListener("submit", (event) => event.preventDefault());

ui.settings.addEventListener("change", () => {
  enableRoutingFields();
  store(SETTINGS_KEY, readSettings());
});

// --- start ---------------------------------------------------------------------------------

function start() {
  applySettings(load(SETTINGS_KEY, {}));
  const saved = load(HISTORY_KEY, { turns: [] });
  chat.turns = (Array.isArray(saved.turns) ? saved.turns : [])
    .filter((turn) => turn && (turn.role === "user" || turn.role === "assistant"))
    .map((turn) => {
      const copy = { ...turn, content: String(turn.content ?? "") };
      delete copy.view;
      // A reload mid-answer: that answer will never finish, say so.
      if (copy.role === "assistant" && ["connecting", "streaming"].includes(copy.state))
        copy.state = "cut";
      return copy;
    });
  renderConversation();
  if (!formatter) {
    ui.markdownOff.hidden = false;
    setStatus("Markdown is off: answers show as plain text.");
  }
  keepScrolled();
  ui.prompt.focus();
}

start();

// Exposed for the browser tests and the benchmark (they drive the renderer directly).
globalThis.glooChat = { chat, formatter, StreamingMarkdown, MarkdownFormatter };
