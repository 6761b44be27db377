// What the page keeps in localStorage: the conversation and the settings. Storage can be full,
// disabled or corrupt; none of that may stop the chat, it only loses persistence.

import { seamOf, sourceOf } from "./answer-parts.js";

const HISTORY_KEY = "gloo-stream.chat.v1";
const SETTINGS_KEY = "gloo-stream.settings.v1";

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

/** Save the turns: plain data (model.js), stored as they are. */
export function saveHistory(turns) {
  store(HISTORY_KEY, { turns });
}

/** The parts of a saved answer beside its text, in the shapes the page draws (anything else
 * someone left in storage is dropped, never drawn). */
function cleanParts(turn) {
  const list = (value) => (Array.isArray(value) ? value : []);
  return {
    reasoning: typeof turn.reasoning === "string" ? turn.reasoning : "",
    sources: list(turn.sources).map(sourceOf),
    toolCalls: list(turn.toolCalls)
      .filter((call) => call && typeof call === "object")
      .map((call, index) => ({
        index: Number.isInteger(call.index) ? call.index : index,
        id: String(call.id ?? ""),
        type: String(call.type ?? "function"),
        name: String(call.name ?? ""),
        arguments: String(call.arguments ?? ""),
      })),
    seams: list(turn.seams)
      .filter((seam) => seam && Number.isInteger(seam.offset))
      .map((seam) => seamOf(seam, seam.offset)),
  };
}

/** The saved turns, cleaned up: unknown roles dropped, an answer a reload interrupted marked
 * so (it keeps what arrived). */
export function loadHistory() {
  const saved = load(HISTORY_KEY, { turns: [] });
  return (Array.isArray(saved.turns) ? saved.turns : [])
    .filter((turn) => turn && (turn.role === "user" || turn.role === "assistant"))
    .map((turn) => {
      const copy = { ...turn, content: String(turn.content ?? "") };
      if (copy.role !== "assistant") return copy;
      Object.assign(copy, cleanParts(turn));
      // A reload mid-answer: a resumable answer (it has a stream id) is picked up again
      // (chat.js); any other will never finish: it keeps what arrived, and reads as
      // interrupted by the reload (not cut off by the model).
      if (["connecting", "streaming", "reconnecting"].includes(copy.state))
        copy.state = copy.streamId ? "reconnecting" : "interrupted";
      return copy;
    });
}

/** Save the Settings panel's values (see settings.js). */
export function saveSettings(settings) {
  store(SETTINGS_KEY, settings);
}

/** The saved settings, `{}` when there are none. */
export function loadSettings() {
  return load(SETTINGS_KEY, {});
}
