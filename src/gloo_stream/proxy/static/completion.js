// One streamed answer from POST /api/stream: fetch() + ReadableStream (EventSource cannot
// POST), the SSE parser, and the rules for how an answer ends. Knows nothing about the DOM.
//
// Every way an answer can end is told apart, so an error never looks like an empty success:
//   done      a chunk carried finish_reason (stop, length, tool_calls), or [DONE] arrived
//   filtered  finish_reason content_filter (terminal: never retried)
//   stopped   the user pressed Stop (the partial answer stays)
//   error     HTTP status before the stream, an error event or chunk during it, network loss
//   cut       the stream ended with neither a finish_reason nor [DONE]

import { RECONNECT_BUDGET_MS, pause, reconnectDelay, reopen, streamIdOf } from "./resume.js";
import { SSEParser } from "./sse.js";

/** What readAnswer returns when the connection broke under it (a resumable answer goes on). */
const LOST = Symbol("connection lost");

/**
 * @typedef {{message: string, code: string, status?: number, retryable: boolean}} AnswerError
 * @typedef {{state: "done"|"filtered"|"stopped"|"error"|"cut", finishReason: string|null,
 *   error: AnswerError|null, model: string|null, ttftMs: number|null, tokens: number,
 *   usageTokens: number|null, streamMs: number|null}} Outcome
 */

const STATUS_SENTENCES = {
  400: "The request was refused",
  401: "The proxy needs an API key (set one in Settings)",
  403: "This API key may not use the proxy",
  404: "The chat endpoint was not found",
  408: "The request timed out",
  413: "The conversation is too long for the proxy",
  429: "Too many requests right now",
  500: "The proxy failed",
  502: "The upstream model service failed",
  503: "The service is unavailable right now",
  504: "The model service did not answer in time",
};

/**
 * Stream one answer. When the proxy makes it resumable (an X-Stream-Id header), a dropped
 * connection is reopened with Last-Event-ID and backoff until RECONNECT_BUDGET_MS has passed;
 * with `resume: {streamId, lastEventId}` an answer begun earlier (before a reload) is
 * continued instead of asked for.
 * @param {{url: string, body?: object, headers?: object, signal: AbortSignal,
 *   resume?: {streamId: string, lastEventId: string},
 *   onOpen?: () => void, onText: (text: string, progress: object) => void,
 *   onReasoning?: (text: string, progress: object) => void,
 *   onCitations?: (items: object[], progress: object) => void,
 *   onToolCall?: (delta: object, progress: object) => void,
 *   onSeam?: (continuation: object, progress: object) => void,
 *   onStreamId?: (id: string) => void, onReconnecting?: (attempt: number) => void,
 *   onResumed?: () => void, now?: () => number, fetchImpl?: typeof fetch}} options
 * @returns {Promise<Outcome>}
 */
export async function streamAnswer(options) {
  const answer = new AnswerRecord(options.now ?? (() => performance.now()));
  let streamId = options.resume?.streamId ?? null;
  let response;
  if (streamId) {
    answer.lastEventId = options.resume.lastEventId ?? "";
    const back = await reconnect(streamId, answer, options);
    if (back.outcome) return back.outcome;
    response = back.response;
  } else {
    try {
      response = await post(options);
    } catch {
      if (options.signal.aborted) return answer.finish("stopped");
      return answer.finish(
        "error",
        networkError("Could not reach the server. Check your connection and that the proxy is running."),
      );
    }
    if (!response.ok) return answer.finish("error", await httpError(response));
    streamId = streamIdOf(response);
    if (streamId) options.onStreamId?.(streamId);
  }
  options.onOpen?.();
  for (;;) {
    const outcome = await readAnswer(response.body.getReader(), answer, options);
    if (outcome !== LOST) return outcome;
    if (!streamId)
      return answer.finish("error", networkError("The connection was lost before the answer finished."));
    const back = await reconnect(streamId, answer, options);
    if (back.outcome) return back.outcome;
    response = back.response;
  }
}

/**
 * Reopen a resumable answer after the last event received: at once, then with backoff.
 * Resolves to `{response}` (the rest of the answer) or `{outcome}` (it cannot be had).
 */
async function reconnect(streamId, answer, options) {
  const started = performance.now();
  for (let attempt = 0; ; attempt += 1) {
    options.onReconnecting?.(attempt);
    if (attempt > 0) await pause(reconnectDelay(attempt - 1), options.signal);
    if (options.signal.aborted) return { outcome: answer.finish("stopped") };
    let response = null;
    try {
      response = await reopen({ ...options, apiUrl: options.url, streamId, lastEventId: answer.lastEventId });
    } catch {
      if (options.signal.aborted) return { outcome: answer.finish("stopped") };
    }
    if (response?.ok) {
      options.onResumed?.();
      return { response };
    }
    if (response && response.status < 500 && response.status !== 429) {
      const error = await httpError(response);
      error.message = `The answer could not be resumed: ${error.message}`;
      return { outcome: answer.finish("error", error) };
    }
    if (performance.now() - started > RECONNECT_BUDGET_MS)
      return { outcome: answer.finish("error", networkError("The connection was lost and did not come back.")) };
  }
}

/** The outcome of one answer as it is built: what arrived, and when. */
class AnswerRecord {
  constructor(now) {
    this._now = now;
    this._started = now();
    this._firstAt = null;
    this._lastAt = null;
    this.sawDone = false;
    /** The id of the last event received: where a resumed answer picks up. */
    this.lastEventId = "";
    /** @type {Outcome} */
    this.outcome = {
      state: "error",
      finishReason: null,
      error: null,
      model: null,
      ttftMs: null,
      tokens: 0,
      usageTokens: null,
      streamMs: null,
    };
  }

  /** A piece of text arrived: count and time it; returns the progress so far. */
  addText() {
    const t = this._now();
    if (this._firstAt === null) {
      this._firstAt = t;
      this.outcome.ttftMs = t - this._started;
    }
    this._lastAt = t;
    this.outcome.tokens += 1;
    return { ...this.outcome, firstAt: this._firstAt, lastEventId: this.lastEventId };
  }

  /** Something other than answer text arrived (reasoning, sources, a tool call, a seam):
   * the progress so far, without counting a token. */
  progress() {
    return { ...this.outcome, firstAt: this._firstAt, lastEventId: this.lastEventId };
  }

  /** The answer ended with `state` (and `error`, for "error"). */
  finish(state, error = null) {
    this.outcome.state = state;
    this.outcome.error = error;
    if (this._firstAt !== null) this.outcome.streamMs = this._lastAt - this._firstAt;
    return this.outcome;
  }

  /** The stream ended cleanly: done, filtered, or cut when nothing said the answer was over. */
  end() {
    if (this.outcome.finishReason === "content_filter") return this.finish("filtered");
    if (this.outcome.finishReason || this.sawDone) return this.finish("done");
    return this.finish("cut");
  }
}

function post(options) {
  const doFetch = options.fetchImpl ?? ((...args) => fetch(...args));
  return doFetch(options.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...options.headers },
    body: JSON.stringify(options.body),
    signal: options.signal,
    cache: "no-store",
  });
}

/** Read the event stream to its end, or to the event that ends the answer. */
async function readAnswer(reader, answer, options) {
  const parser = new SSEParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        parser.close();
        return answer.end();
      }
      for (const event of parser.feed(value)) {
        const outcome = onEvent(event, answer, options);
        if (outcome) return outcome;
      }
    }
  } catch {
    if (options.signal.aborted) return answer.finish("stopped");
    return LOST;
  } finally {
    // Release the connection whichever way we leave (a no-op once the body has ended).
    reader.cancel().catch(() => {});
  }
}

/** One event: the outcome when it ends the answer, else null. */
function onEvent(event, answer, options) {
  // First: the text this event adds and the id it carries are kept (and saved) together.
  if (event.id) answer.lastEventId = event.id;
  if (event.event === "error") {
    const error = eventError(event.data);
    // The replica relaying the answer is going away: another one carries on.
    return error.code === "resume_elsewhere" ? LOST : answer.finish("error", error);
  }
  if (event.event !== "message") return null; // unknown event types are not ours to handle
  if (event.data.trim() === "[DONE]") {
    answer.sawDone = true;
    return answer.end();
  }
  let chunk;
  try {
    chunk = JSON.parse(event.data);
  } catch {
    return answer.finish("error", {
      message: "The server sent a malformed chunk; the answer is incomplete.",
      code: "malformed_chunk",
      retryable: true,
    });
  }
  // An error object with no choice is an error event; a chunk with `choices: []` (the usage
  // chunk, sent last) carries no text and ends nothing.
  if (chunk && chunk.error && !chunk.choices?.length)
    return answer.finish("error", eventError(event.data));
  return onChunk(chunk, answer, options);
}

/** One completion chunk: what it carries goes to its callback, in the order it reads (the
 * sources first, a seam before the text after it); an "error" finish_reason ends the answer. */
function onChunk(chunk, answer, options) {
  const choice = chunk?.choices?.[0];
  if (chunk?.model) answer.outcome.model = chunk.model;
  if (chunk?.usage?.completion_tokens != null)
    answer.outcome.usageTokens = chunk.usage.completion_tokens;
  // Grounded answers: the proxy relays the sources as `citations`; some upstreams say `sources`.
  const citations = chunk?.citations ?? chunk?.sources;
  if (Array.isArray(citations) && citations.length) options.onCitations?.(citations, answer.progress());
  const seam = chunk?.gloo_continuation;
  if (seam && typeof seam === "object") options.onSeam?.(seam, answer.progress());
  const delta = choice?.delta ?? {};
  // Both spellings are in the wild; reasoning is never part of the answer's text.
  const reasoning = delta.reasoning_content ?? delta.reasoning;
  if (typeof reasoning === "string" && reasoning !== "") options.onReasoning?.(reasoning, answer.progress());
  if (Array.isArray(delta.tool_calls))
    for (const call of delta.tool_calls) if (call) options.onToolCall?.(call, answer.progress());
  const text = delta.content;
  if (typeof text === "string" && text !== "") options.onText(text, answer.addText());
  const reason = choice?.finish_reason;
  if (!reason) return null;
  answer.outcome.finishReason = reason;
  if (reason !== "error") return null;
  const detail = chunk.error ?? {};
  return answer.finish("error", {
    message: `The model failed mid-answer (${detail.name ?? detail.code ?? "error"}); the answer is incomplete.`,
    code: String(detail.name ?? "upstream_error"),
    retryable: true,
  });
}

function networkError(message) {
  return { message, code: "network_error", retryable: true };
}

async function httpError(response) {
  let detail = "";
  let code = `http_${response.status}`;
  try {
    const body = await response.json();
    const error = body?.error;
    if (typeof error === "string") detail = error;
    else if (error && typeof error.message === "string") {
      detail = error.message;
      if (error.code) code = String(error.code);
    } else if (Array.isArray(body?.detail)) detail = body.detail.map((d) => d.msg).join("; ");
  } catch {
    // Not JSON (an HTML error page from something in between): the status says enough.
  }
  const sentence = STATUS_SENTENCES[response.status] ?? "The server answered with an error";
  const retryAfter = response.headers.get("retry-after");
  let message = `${sentence} (HTTP ${response.status})`;
  if (detail) message += `: ${detail}`;
  if (!/[.!?]$/.test(message)) message += ".";
  if (retryAfter && /^\d+$/.test(retryAfter)) message += ` Try again in ${retryAfter} s.`;
  const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
  return { message, code, status: response.status, retryable };
}

function eventError(data) {
  let error = null;
  try {
    error = JSON.parse(data)?.error;
  } catch {
    // fall through to the generic sentence
  }
  const message =
    (error && typeof error.message === "string" && error.message) ||
    (typeof error === "string" && error) ||
    "The answer failed part-way through; it is incomplete.";
  const code = String((error && (error.code ?? error.type)) || "stream_error");
  return { message, code, retryable: code !== "content_filter" };
}
