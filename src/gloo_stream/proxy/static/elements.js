// The page's elements, looked up once by app.js and handed to the views that draw into them
// (as TodoMVC's app.js builds its View over the document): no module keeps its own copy, so a
// view can be given another document, or a fragment, as easily as the page.

/** The elements of index.html the views draw into, by role. */
export function findElements(doc = document) {
  const $ = (id) => doc.getElementById(id);
  return {
    main: $("main"),
    conversation: $("conversation"),
    empty: $("empty"),
    form: $("composer"),
    prompt: $("prompt"),
    send: $("send"),
    stop: $("stop"),
    status: $("status"),
    newChat: $("new-chat"),
    settingsToggle: $("settings-toggle"),
    settings: $("settings"),
    family: $("model-family"),
    model: $("model"),
    tradition: $("tradition"),
    apiKey: $("api-key"),
    markdownOff: $("markdown-off"),
  };
}

/** The streaming endpoint: index.html's data-api, so the page can be served from elsewhere. */
export function apiUrlOf(doc = document) {
  return doc.body.dataset.api || "/api/stream";
}

/** The host the proxy sends answers to, as the server wrote it into index.html's
 * `<meta name="gloo-upstream">` ("" when it did not: then the answers are Gloo's). */
export function upstreamOf(doc = document) {
  return doc.querySelector('meta[name="gloo-upstream"]')?.content ?? "";
}
