// One streamed answer from POST /api/stream: fetch() + ReadableStream (EventSource cannot
// POST), the SSE parser, and the rules for how an answer ends. Knows nothing about the DOM.
//
// Every way an answer can end is told apart, so an error never looks like an empty success:
//   done      a chunk carried finish_reason (stop, length, tool_calls), or [DONE] arrived
//   filtered  finish_reason content_filter (terminal: never retried)
//   stopped   the user pressed Stop (the partial answer stays)
//   error     HTTP status before the stream, an error event or chunk during it, network loss
//   cut       the stream ended with neither a finish_reason nor [DONE]

import { SSEParser } from "./sse.js";

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
 * Stream one answer.
 * @param {{url: string, body: object, headers?: object, signal: AbortSignal,
 *   onOpen?: () => void, onText: (text: string) => void, now?: () => number,
 *   fetchImpl?: typeof fetch}} options
 * @returns {Promise<Outcome>}
 */
export async function streamAnswer(options) {
  const now = options.now ?? (() => performance.now());
  const doFetch = options.fetchImpl ?? ((...args) => fetch(...args));
  const started = now();
  const out = {
    state: "error",
    finishReason: null,
    error: null,
    model: null,
    ttftMs: null,
    tokens: 0,
    usageTokens: null,
    streamMs: null,
  };
  let firstAt = null;
  let lastAt = null;
  const finish = (state, error = null) => {
    out.state = state;
    out.error = error;
    if (firstAt !== null) out.streamMs = lastAt - firstAt;
    return out;
  };

  let response;
  try {
    response = await doFetch(options.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", ...options.headers },
      body: JSON.stringify(options.body),
      signal: options.signal,
      cache: "no-store",
    });
  } catch (err) {
    if (options.signal.aborted) return finish("stopped");
    return finish("error", {
      message: "Could not reach the server. Check your connection and that the proxy is running.",
      code: "network_error",
      retryable: true,
    });
  }
  if (!response.ok) return finish("error", await httpError(response));
  options.onOpen?.();

  const reader = response.body.getReader();
  const parser = new SSEParser();
  let sawDone = false;
  try {
    reading: for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        parser.close();
        break;
      }
      for (const event of parser.feed(value)) {
        if (event.event === "error") return finish("error", eventError(event.data));
        if (event.event !== "message") continue; // unknown event types are not ours to handle
        if (event.data.trim() === "[DONE]") {
          sawDone = true;
          break reading;
        }
        let chunk;
        try {
          chunk = JSON.parse(event.data);
        } catch {
          return finish("error", {
            message: "The server sent a malformed chunk; the answer is incomplete.",
            code: "malformed_chunk",
            retryable: true,
          });
        }
        if (chunk && chunk.error && !chunk.choices) return finish("error", eventError(event.data));
        const choice = chunk?.choices?.[0];
        if (chunk?.model) out.model = chunk.model;
        if (chunk?.usage?.completion_tokens != null) out.usageTokens = chunk.usage.completion_tokens;
        const text = choice?.delta?.content;
        if (typeof text === "string" && text !== "") {
          const t = now();
          if (firstAt === null) {
            firstAt = t;
            out.ttftMs = t - started;
          }
          lastAt = t;
          out.tokens += 1;
          options.onText(text, { ...out, firstAt });
        }
        const reason = choice?.finish_reason;
        if (reason) {
          out.finishReason = reason;
          if (reason === "error") {
            const detail = chunk.error ?? {};
            return finish("error", {
              message: `The model failed mid-answer (${detail.name ?? detail.code ?? "error"}); the answer is incomplete.`,
              code: String(detail.name ?? "upstream_error"),
              retryable: true,
            });
          }
        }
      }
    }
  } catch (err) {
    if (options.signal.aborted) return finish("stopped");
    return finish("error", {
      message: "The connection was lost before the answer finished.",
      code: "network_error",
      retryable: true,
    });
  } finally {
    // Release the connection whichever way we leave (a no-op once the body has ended).
    reader.cancel().catch(() => {});
  }
  if (out.finishReason === "content_filter") return finish("filtered");
  if (out.finishReason || sawDone) return finish("done");
  return finish("cut");
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
