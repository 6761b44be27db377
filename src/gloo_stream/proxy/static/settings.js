// The Settings panel: model routing (default, family or exact model), tradition and the proxy
// API key, saved on every change, and what they add to each request.

import { ui } from "./elements.js";
import { loadSettings, saveSettings } from "./storage.js";

/** The panel's current values. */
export function readSettings() {
  const routing = document.querySelector('input[name="routing"]:checked')?.value ?? "auto";
  return {
    routing,
    family: ui.family.value,
    model: ui.model.value,
    tradition: ui.tradition.value,
    apiKey: ui.apiKey.value,
  };
}

function applySettings(saved) {
  const radio = document.querySelector(`input[name="routing"][value="${saved.routing}"]`);
  if (radio) radio.checked = true;
  if (saved.family) ui.family.value = saved.family;
  if (typeof saved.model === "string") ui.model.value = saved.model;
  if (saved.tradition !== undefined) ui.tradition.value = saved.tradition;
  if (saved.apiKey) ui.apiKey.value = saved.apiKey;
  enableRoutingFields();
}

/** Only the chosen routing's own field can be edited (and reached with Tab). */
function enableRoutingFields() {
  const { routing } = readSettings();
  ui.family.disabled = routing !== "family";
  ui.model.disabled = routing !== "model";
}

/** Put the saved settings back into the panel (at start-up). */
export function restoreSettings() {
  applySettings(loadSettings());
}

/** A field changed: settings apply (and are saved) at once, there is no Save button. */
export function settingsChanged() {
  enableRoutingFields();
  saveSettings(readSettings());
}

/** Open or close the panel. */
export function toggleSettings() {
  const open = ui.settings.hidden;
  ui.settings.hidden = !open;
  ui.settingsToggle.setAttribute("aria-expanded", String(open));
}

/** The request fields the settings decide: routing and tradition. */
export function settingsParams() {
  const settings = readSettings();
  const params = {};
  // At most one routing mechanism, as the API asks. None at all lets the proxy apply its
  // default (GLOO_MODEL), or Gloo's auto-routing when it has none.
  const model = settings.model.trim();
  if (settings.routing === "family") params.model_family = settings.family;
  else if (settings.routing === "model" && model) params.model = model;
  if (settings.tradition) params.tradition = settings.tradition;
  return params;
}

/** The proxy API key as an Authorization header, when one is set. */
export function authHeaders() {
  const key = readSettings().apiKey.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}
