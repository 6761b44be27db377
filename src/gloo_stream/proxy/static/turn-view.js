// The DOM of one turn: the user's bubble, or an answer with its notice (why it ended, when
// that needs saying, with a Retry button) and its figures line.

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

/** An empty answer turn: `{item, answer, notice, meta}`, filled in as the answer streams. */
export function assistantTurnView() {
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

/** The figures line: state, time to first token, tokens, speed, model. */
export function statsText(turn) {
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
