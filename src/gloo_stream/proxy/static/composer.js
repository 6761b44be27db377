// The composer view: the message box, Send and Stop, and the status line under them. It
// draws and listens; what a send or a stop does is the controller's (chat.js), bound here
// with bindSend/bindStop as TodoMVC's View.bindAddItem hands events to its controller.

export class Composer {
  /** @param {ReturnType<import("./elements.js").findElements>} ui */
  constructor(ui) {
    this.ui = ui;
    ui.prompt.addEventListener("input", () => this.resizePrompt());
  }

  /** Call `handler` on Send: the button, or Enter (Shift+Enter is a new line). */
  bindSend(handler) {
    this.ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      handler();
    });
    this.ui.prompt.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; never while an IME is composing a character.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        handler();
      }
    });
  }

  /** Call `handler` on Stop: the button, or Esc anywhere while an answer streams. */
  bindStop(handler) {
    this.ui.stop.addEventListener("click", handler);
    this.ui.prompt.ownerDocument.addEventListener("keydown", (event) => {
      // Stop is enabled exactly while an answer streams (setBusy): Esc means nothing else.
      if (event.key === "Escape" && !this.ui.stop.disabled) {
        event.preventDefault();
        handler();
      }
    });
  }

  /** Call `handler` on New chat. */
  bindNewChat(handler) {
    this.ui.newChat.addEventListener("click", handler);
  }

  /** Say what the page is doing, in the status line (announced politely). */
  setStatus(text) {
    this.ui.status.textContent = text;
  }

  /** While an answer streams, Send is off and Stop is on; and back. */
  setBusy(busy) {
    const { ui } = this;
    const doc = ui.prompt.ownerDocument;
    const stopHadFocus = doc.activeElement === ui.stop;
    ui.send.disabled = busy;
    ui.stop.disabled = !busy;
    doc.body.classList.toggle("busy", busy);
    // A disabled button drops focus to <body>; give keyboard users the message box instead.
    if (!busy && stopHadFocus) ui.prompt.focus();
  }

  /** Grow the message box with its text, up to a limit (then it scrolls). */
  resizePrompt() {
    const { prompt } = this.ui;
    prompt.style.height = "auto";
    prompt.style.height = `${Math.min(prompt.scrollHeight, 200)}px`;
  }

  /** The message typed, trimmed ("" when there is none). */
  typedMessage() {
    return this.ui.prompt.value.trim();
  }

  /** Empty the message box once its message is sent. */
  clearPrompt() {
    this.ui.prompt.value = "";
    this.resizePrompt();
  }

  /** Back to the message box, for the next message. */
  focusPrompt() {
    this.ui.prompt.focus();
  }
}
