// Coming back to an answer whose connection dropped. When the proxy runs with
// PROXY_RESUME_WINDOW, an answer carries an X-Stream-Id header and every event an id:
// GET /api/stream/{id} with Last-Event-ID replays what was missed, then follows the rest;
// DELETE /api/stream/{id} stops it for good. Knows nothing about the DOM.

const FIRST_WAIT_MS = 250;
const LONGEST_WAIT_MS = 4000;
/** How long the page keeps trying to reconnect to one answer before giving up. */
export const RECONNECT_BUDGET_MS = 30000;
const STREAM_ID = /^[A-Za-z0-9_-]{16,128}$/;

/** The stream id a response carries, if it is one (else null: not resumable). */
export function streamIdOf(response) {
  const id = response.headers.get("x-stream-id");
  return id && STREAM_ID.test(id) ? id : null;
}

/**
 * Where a stream started at `apiUrl` is resumed: `/api/stream/{id}` next to it, whether it
 * was started at `/api/stream` or at `/v1/chat/completions` (mounted under any prefix).
 */
export function resumeUrl(apiUrl, streamId) {
  const base = apiUrl.replace(/\/+$/, "");
  const prefix = base.endsWith("/v1/chat/completions")
    ? base.slice(0, -"/v1/chat/completions".length)
    : base.endsWith("/api/stream")
      ? base.slice(0, -"/api/stream".length)
      : base;
  return `${prefix}/api/stream/${encodeURIComponent(streamId)}`;
}

/**
 * The wait before reconnect attempt `attempt` (0-based): 250 ms doubling up to 4 s, each
 * between half and all of that (so many pages dropped at once do not come back at once).
 */
export function reconnectDelay(attempt, random = Math.random) {
  const full = Math.min(LONGEST_WAIT_MS, FIRST_WAIT_MS * 2 ** attempt);
  return full * (0.5 + 0.5 * random());
}

/** The rest of a stream after event `lastEventId` ("" or null: from the start). */
export function reopen({ apiUrl, streamId, lastEventId, headers, signal, fetchImpl }) {
  const doFetch = fetchImpl ?? ((...args) => fetch(...args));
  const extra = lastEventId ? { "last-event-id": String(lastEventId) } : {};
  return doFetch(resumeUrl(apiUrl, streamId), {
    method: "GET",
    headers: { accept: "text/event-stream", ...headers, ...extra },
    signal,
    cache: "no-store",
  });
}

/** Stop a stream for good (the Stop button): a DELETE that outlives the page; never throws. */
export function cancelStream({ apiUrl, streamId, headers, fetchImpl }) {
  const doFetch = fetchImpl ?? ((...args) => fetch(...args));
  try {
    return doFetch(resumeUrl(apiUrl, streamId), {
      method: "DELETE",
      headers: { ...headers },
      keepalive: true,
    }).catch(() => null);
  } catch {
    return Promise.resolve(null);
  }
}

/** Wait `ms`, or less if `signal` aborts first. */
export function pause(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
