// Incremental text/event-stream parser (WHATWG HTML, "parsing an event stream"), the same
// rules as gloo_stream.sse.SSEDecoder: feed it bytes exactly as fetch() hands them over, in
// reads of any size, and it returns the events those bytes complete. The output depends only
// on the bytes, never on how they were split into reads.

const LINE_END = /\r\n|\r|\n/g;
const DIGITS = /^[0-9]+$/;

/**
 * One dispatched event. `event` is "message" when the stream set no type, `id` is the last
 * event id ("" when unset), `retry` the reconnection time in ms (null until the stream sets it).
 * @typedef {{event: string, data: string, id: string, retry: number | null}} ServerSentEvent
 */

export class SSEParser {
  constructor() {
    // Stream mode keeps a multi-byte character that is split across reads until its last byte
    // arrives; invalid UTF-8 becomes U+FFFD; one leading BOM is dropped (even if split).
    this._decoder = new TextDecoder("utf-8");
    this._pending = ""; // text of the unfinished line (never holds CR or LF)
    this._skipLF = false; // the last read ended in CR: a leading LF in the next one ends a CRLF
    this._closed = false;
    // Interpretation state, named as in the spec.
    this._data = [];
    this._eventType = "";
    this._idBuffer = "";
    this.lastEventId = "";
    /** @type {number | null} */
    this.retry = null;
    /** Comment lines seen (heartbeats): lets a caller know the connection is alive. */
    this.comments = 0;
  }

  /**
   * Consume the next read (a Uint8Array, or a string for already-decoded text).
   * @returns {ServerSentEvent[]} the events it completes, in order
   */
  feed(chunk) {
    if (this._closed) throw new Error("SSEParser.feed() called after close(); use a new parser");
    const text = typeof chunk === "string" ? chunk : this._decoder.decode(chunk, { stream: true });
    return this._feedText(text);
  }

  /** End of stream: an unfinished event is discarded (spec), so this returns []. */
  close() {
    this._closed = true;
    this._decoder.decode(); // flush (and drop) a dangling partial character
    this._pending = "";
    this._data = [];
    this._eventType = "";
    return [];
  }

  _feedText(text) {
    const events = [];
    if (!text) return events;
    let start = 0;
    if (this._skipLF) {
      this._skipLF = false;
      if (text.charCodeAt(0) === 10) start = 1; // second half of a CRLF split across reads
    }
    LINE_END.lastIndex = start;
    let match;
    while ((match = LINE_END.exec(text)) !== null) {
      let line = text.slice(start, match.index);
      if (this._pending) {
        line = this._pending + line;
        this._pending = "";
      }
      start = match.index + match[0].length;
      // A CR at the very end may be the first half of a CRLF: the line ends here either way
      // (so a CR-only stream dispatches without waiting), and a following LF is skipped.
      if (match[0] === "\r" && start === text.length) this._skipLF = true;
      this._line(line, events);
    }
    if (start < text.length) this._pending += text.slice(start);
    return events;
  }

  _line(line, events) {
    if (line === "") {
      this._dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* ":" */) {
      this.comments += 1;
      return;
    }
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1); // only one space is stripped
    }
    switch (field) {
      case "data":
        this._data.push(value);
        break;
      case "event":
        this._eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this._idBuffer = value;
        break;
      case "retry":
        // ASCII digits only; a value too large to be exact is ignored rather than rounded.
        if (DIGITS.test(value)) {
          const ms = Number(value);
          if (Number.isSafeInteger(ms)) this.retry = ms;
        }
        break;
      default: // unknown fields are ignored
    }
  }

  _dispatch(events) {
    this.lastEventId = this._idBuffer;
    if (this._data.length === 0) {
      this._eventType = "";
      return;
    }
    events.push({
      event: this._eventType || "message",
      data: this._data.join("\n"),
      id: this.lastEventId,
      retry: this.retry,
    });
    this._data = [];
    this._eventType = "";
  }
}
