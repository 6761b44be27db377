// The chat's model: the turns as plain data (what was said, how each answer ended, its
// figures) and the answer in flight. It holds no DOM node, as TodoMVC's model holds items and
// leaves their <li> to the view: a turn is saved as it is, and the view finds its drawing by
// the turn's `id`.

import { loadHistory, saveHistory } from "./storage.js";

/**
 * @typedef {{id: number, role: "user"|"assistant", content: string, state?: string,
 *   error?: object|null, finishReason?: string|null, stats?: object, streamId?: string,
 *   lastEventId?: string}} Turn
 */

export class ChatModel {
  constructor() {
    /** @type {Turn[]} */
    this.turns = [];
    /** The answer in flight: `{controller, turn}` (an AbortController and its turn), or null. */
    this.busy = null;
    // Ids only ever grow, even across New chat: a late ending of a dropped answer can never
    // be mistaken for a turn of the new conversation.
    this._nextId = 1;
  }

  /** Add a turn at the end (given an id), save, and return it. */
  add(fields) {
    const turn = { id: this._nextId++, ...fields };
    this.turns.push(turn);
    this.save();
    return turn;
  }

  /** The last turn, if any. */
  last() {
    return this.turns.at(-1);
  }

  /** Is `turn` the last one? */
  isLast(turn) {
    return this.turns.at(-1) === turn;
  }

  /** Drop the last turn (an answer about to be asked again). */
  dropLast() {
    return this.turns.pop();
  }

  /** Forget every turn. */
  clear() {
    this.turns = [];
    this.save();
  }

  /** The whole history, as the API wants it: failed turns with no text are left out. */
  messages() {
    return this.turns
      .filter((turn) => turn.content !== "")
      .map((turn) => ({ role: turn.role, content: turn.content }));
  }

  /** Keep the turns in this browser (storage.js). */
  save() {
    saveHistory(this.turns);
  }

  /** Take the turns saved in this browser, with fresh ids. */
  load() {
    this.turns = loadHistory().map((turn) => ({ ...turn, id: this._nextId++ }));
  }
}
