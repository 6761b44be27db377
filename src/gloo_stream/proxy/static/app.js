// The chat page's wiring: which key and which button does what, and the start-up. The work
// itself lives in the modules: chat.js (the turns and the actions on them), conversation.js
// and turn-view.js (what the conversation looks like), composer.js (the message box),
// settings.js and storage.js (what is kept), completion.js (streaming one answer).

import { answering, newChat, restoreChat, retryLast, send, stop } from "./chat.js";
import { focusPrompt, resizePrompt, setStatus } from "./composer.js";
import { copyCode, formatter, keepScrolled, readerScrolled } from "./conversation.js";
import { ui } from "./elements.js";
import { restoreSettings, settingsChanged, toggleSettings } from "./settings.js";

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
  if (event.key === "Escape" && answering()) {
    event.preventDefault();
    stop();
  }
});

ui.stop.addEventListener("click", stop);
ui.newChat.addEventListener("click", newChat);

// The buttons inside answers come and go with the turns: one listener for all of them.
ui.conversation.addEventListener("click", (event) => {
  const copy = event.target.closest?.(".copy-code");
  if (copy) copyCode(copy);
  else if (event.target.closest?.(".retry")) retryLast();
});
ui.main.addEventListener("scroll", readerScrolled);

ui.settingsToggle.addEventListener("click", toggleSettings);
// Enter in a settings field must not submit (and reload) anything: settings apply on change.
ui.settings.addEventListener("submit", (event) => event.preventDefault());
ui.settings.addEventListener("change", settingsChanged);

function start() {
  restoreSettings();
  restoreChat();
  if (!formatter) {
    ui.markdownOff.hidden = false;
    setStatus("Markdown is off: answers show as plain text.");
  }
  keepScrolled();
  focusPrompt();
}

start();
