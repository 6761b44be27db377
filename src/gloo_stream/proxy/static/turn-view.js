// The DOM of one turn: the user's bubble, or an answer with its "Thinking" section, its text,
// its tool calls and sources (answer-parts-view.js), its notice (why it ended, when that needs
// saying, with a Retry button) and its figures line.

import { answeredBy, thinkingView } from "./answer-parts-view.js";

/** Words for each state an answer can be in, for its figures line and the status line. */
export const STATE_LABELS = {
  connecting: "Connecting…",
  streaming: "Streaming…",
  reconnecting: "Reconnecting…",
  done: "Done",
  stopped: "Stopped",
  error: "Error",
  cut: "Cut off",
  filtered: "Filtered",
  interrupted: "Interrupted",
  continued: "Continued",
};

/** A user's message: always plain text, never interpreted as markup. */
export function userTurnView(turn) {
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

/** An empty answer turn: `{item, thinking, answer, tools, sources, notice, meta}`, filled in
 * as the answer streams. */
export function assistantTurnView(turn) {
  const item = document.createElement("li");
  item.className = "turn assistant";
  const who = document.createElement("h2");
  who.className = "visually-hidden";
  // Who answered: Gloo, or the upstream's host when the proxy talks to another server.
  who.textContent = answeredBy(turn);
  const thinking = thinkingView();
  const answer = document.createElement("div");
  answer.className = "answer markdown";
  // Announced politely, and only once the answer settles (aria-busy), not token by token.
  answer.setAttribute("aria-live", "polite");
  const tools = document.createElement("div");
  tools.className = "tool-calls";
  tools.hidden = true;
  const sources = document.createElement("section");
  sources.className = "sources";
  sources.setAttribute("aria-label", "Sources");
  sources.hidden = true;
  const notice = document.createElement("div");
  notice.className = "notice";
  notice.hidden = true;
  const meta = document.createElement("p");
  meta.className = "meta";
  item.append(who, thinking.details, answer, tools, sources, notice, meta);
  return { item, thinking, answer, tools, sources, notice, meta };
}

/** The turn's outcome word for its figures line: a finished answer that was continued after
 * a cut says so (contracts.md's "continued"); any other says its state. */
export function outcomeLabel(turn) {
  const seams = turn.seams?.length ?? 0;
  if (turn.state === "done" && seams > 0)
    return `${STATE_LABELS.continued} (${seams} seam${seams === 1 ? "" : "s"})`;
  return STATE_LABELS[turn.state] ?? turn.state;
}

/** The figures line: outcome, time to first token, tokens, speed, model, upstream. */
export function statsText(turn) {
  const parts = [outcomeLabel(turn)];
  const stats = turn.stats ?? {};
  if (stats.ttftMs != null) parts.push(`TTFT ${Math.round(stats.ttftMs)} ms`);
  if (stats.tokens) parts.push(`${stats.tokens} token${stats.tokens === 1 ? "" : "s"}`);
  if (stats.tokensPerSecond) parts.push(`${stats.tokensPerSecond.toFixed(1)} tok/s`);
  if (stats.model) parts.push(stats.model);
  const by = answeredBy(turn);
  if (by !== "Gloo answered") parts.push(`from ${by.slice(0, -" answered".length)}`);
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
    case "interrupted":
      // The page went away (a reload, a crash, a closed tab), not the model: say which.
      return {
        text: "This answer was interrupted when the page was reloaded or closed; what arrived is kept.",
        kind: "info",
        retry: true,
      };
    case "filtered":
      return { text: "The answer was stopped by the content filter.", kind: "error", retry: false };
    case "done":
      if (turn.finishReason === "length")
        return { text: "The answer reached the token limit.", kind: "info", retry: false };
      if (turn.finishReason === "tool_calls" || turn.toolCalls?.length)
        return {
          text: "The model asked to call a tool. This page shows the call; it does not run tools.",
          kind: "info",
          retry: false,
        };
      if (turn.content === "")
        return { text: "The model returned an empty answer.", kind: "info", retry: true };
      return null;
    default:
      return null;
  }
}

/**
 * Show why the answer ended, when that needs saying. Only the last turn gets a Retry button
 * (a `.retry` click is handled by the conversation's listener, see app.js).
 */
export function showNotice(view, turn, isLast) {
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
    view.notice.append(" ", retry);
  }
}
