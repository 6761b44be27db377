// The Settings panel: model routing (default, family or exact model), tradition and the proxy
// API key, saved on every change, and what they add to each request. The panel's fields are
// its state: the controller asks it for params() and authHeaders() when it sends.

import { loadSettings, saveSettings } from "./storage.js";

export class SettingsPanel {
  /** @param {ReturnType<import("./elements.js").findElements>} ui */
  constructor(ui) {
    this.ui = ui;
    ui.settingsToggle.addEventListener("click", () => this.toggle());
    // Enter in a settings field must not submit (and reload) anything: settings apply on change.
    ui.settings.addEventListener("submit", (event) => event.preventDefault());
    ui.settings.addEventListener("change", () => this.changed());
  }

  /** The panel's current values. */
  read() {
    const { ui } = this;
    const routing = ui.settings.querySelector('input[name="routing"]:checked')?.value ?? "auto";
    return {
      routing,
      family: ui.family.value,
      model: ui.model.value,
      tradition: ui.tradition.value,
      apiKey: ui.apiKey.value,
    };
  }

  /** Put the saved settings back into the panel (at start-up). */
  restore() {
    const { ui } = this;
    const saved = loadSettings();
    const radio = ui.settings.querySelector(`input[name="routing"][value="${saved.routing}"]`);
    if (radio) radio.checked = true;
    if (saved.family) ui.family.value = saved.family;
    if (typeof saved.model === "string") ui.model.value = saved.model;
    if (saved.tradition !== undefined) ui.tradition.value = saved.tradition;
    if (saved.apiKey) ui.apiKey.value = saved.apiKey;
    this._enableRoutingFields();
  }

  /** Only the chosen routing's own field can be edited (and reached with Tab). */
  _enableRoutingFields() {
    const { routing } = this.read();
    this.ui.family.disabled = routing !== "family";
    this.ui.model.disabled = routing !== "model";
  }

  /** A field changed: settings apply (and are saved) at once, there is no Save button. */
  changed() {
    this._enableRoutingFields();
    saveSettings(this.read());
  }

  /** Open or close the panel. */
  toggle() {
    const open = this.ui.settings.hidden;
    this.ui.settings.hidden = !open;
    this.ui.settingsToggle.setAttribute("aria-expanded", String(open));
  }

  /** The request fields the settings decide: routing and tradition. */
  params() {
    const settings = this.read();
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
  authHeaders() {
    const key = this.read().apiKey.trim();
    return key ? { authorization: `Bearer ${key}` } : {};
  }
}
