// The composer: the message box, Send and Stop, and the status line under them.

import { ui } from "./elements.js";

/** Say what the page is doing, in the status line (announced politely). */
export function setStatus(text) {
  ui.status.textContent = text;
}

/** While an answer streams, Send is off and Stop is on; and back. */
export function setBusy(busy) {
  const stopHadFocus = document.activeElement === ui.stop;
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  document.body.classList.toggle("busy", busy);
  // A disabled button drops focus to <body>; give keyboard users the message box instead.
  if (!busy && stopHadFocus) ui.prompt.focus();
}

/** Grow the message box with its text, up to a limit (then it scrolls). */
export function resizePrompt() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 200)}px`;
}

/** The message typed, trimmed ("" when there is none). */
export function typedMessage() {
  return ui.prompt.value.trim();
}

/** Empty the message box once its message is sent. */
export function clearPrompt() {
  ui.prompt.value = "";
  resizePrompt();
}

/** Back to the message box, for the next message. */
export function focusPrompt() {
  ui.prompt.focus();
}
