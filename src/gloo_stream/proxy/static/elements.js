// The page's elements, looked up once. Module scripts run after the document is parsed, so
// every element in index.html is there by the time this module is evaluated.

const $ = (id) => document.getElementById(id);

export const ui = {
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

/** The streaming endpoint: index.html's data-api, so the page can be served from elsewhere. */
export const API_URL = document.body.dataset.api || "/api/stream";
