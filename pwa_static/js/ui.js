/**
 * The few DOM helpers every screen uses: build elements, show a toast, ask in a dialog.
 * No framework: screens are functions that return elements, rebuilt when their data changes.
 * Listeners are attached as properties, never as inline attributes (the CSP forbids them).
 *
 * @module ui
 */

import { t } from "./i18n.js";
import { shanghaiParts } from "./time.js";

/**
 * An element: `h("button", {class: "primary", on: {click}}, "保存")`.
 * Props: `class`, `text`, `on` (event → listener), `dataset`, any attribute (true → present,
 * false/null/undefined → absent) and the properties `value`, `checked`, `disabled`.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "on")
      for (const [event, fn] of Object.entries(value)) element.addEventListener(event, fn);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "value" || name === "checked" || name === "disabled") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** A button: at least 48 px high (CSS), with an accessible name from its text. */
export function button(text, onClick, className = "", attrs = {}) {
  return h("button", { type: "button", class: className, on: { click: onClick }, ...attrs }, text);
}

let controls = 0;

/** A control under its visible label; the label also names it for screen readers. */
export function labelled(text, control, className = "") {
  control.id ||= `control-${++controls}`;
  return h("div", { class: className }, h("label", { for: control.id }, text), control);
}

/** A form row: a labelled control with the spacing of a field. */
export function field(text, control) {
  return labelled(text, control, "field");
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

let toastTimer = null;
let toastShown = 0;

/** A short message under the header; it outlives the navigation that follows it, no more. */
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  toastShown = Date.now();
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, 2500);
}

/** Called on every navigation: a message from the screen before last is stale. */
export function hideToast(minAgeMs = 0) {
  if (Date.now() - toastShown >= minAgeMs) document.getElementById("toast").hidden = true;
}

/**
 * Ask in a modal dialog; resolves to the name of the chosen action (or null when dismissed).
 * `body` is an element (a form, a text); `actions` [{name, text, primary}].
 */
export function ask(title, body, actions) {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    const choose = (name) => () => {
      dialog.close();
      resolve(name);
    };
    dialog.replaceChildren(
      h("h2", { id: "dialog-title" }, title),
      body,
      h(
        "div",
        { class: "actions" },
        actions.map((a) => button(a.text, choose(a.name), a.primary ? "primary" : "")),
      ),
    );
    dialog.onclose = () => resolve(null);
    dialog.showModal();
  });
}

const CONTRAST_KEY = "zoufang.contrast";

/** Whether 高对比度大字 is on. A setting of the phone, not of the account: localStorage, read
 *  synchronously before the first screen is drawn, and kept when someone signs out. */
export function contrast() {
  return localStorage.getItem(CONTRAST_KEY) === "on";
}

/** Turn 高对比度大字 on or off, now and on every later start. */
export function setContrast(on) {
  if (on) localStorage.setItem(CONTRAST_KEY, "on");
  else localStorage.removeItem(CONTRAST_KEY);
  document.documentElement.classList.toggle("contrast", on);
}

/** 11月24日 09:30 (zh) / 24 Nov 09:30 (en), on the Shanghai clock. */
export function formatTime(ms, withTime = true) {
  if (ms === undefined || Number.isNaN(ms)) return "";
  const p = shanghaiParts(ms);
  const clock = withTime ? ` ${String(p.hour).padStart(2, "0")}:${String(p.minute).padStart(2, "0")}` : "";
  return t("date.short", { month: p.month, day: p.day }) + clock;
}

/** "3 分钟前" / "昨天" … for the last sync. */
export function ago(iso) {
  const minutes = Math.round((Date.now() - Date.parse(iso)) / 60_000);
  if (minutes < 1) return t("ago.now");
  if (minutes < 60) return t("ago.minutes", { n: minutes });
  if (minutes < 24 * 60) return t("ago.hours", { n: Math.round(minutes / 60) });
  return t("ago.days", { n: Math.round(minutes / 1440) });
}
