/**
 * Building the page without innerHTML: every text from the server goes in as a text node.
 *
 * @module admin/dom
 */

/** `h("td", {className: "num"}, "3", child)`: an element with properties and children. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element[name] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Replace the children of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  for (const child of children.flat()) if (child) element.append(child);
}

/** The sections fill in as their answers arrive, in any order: keep them out of sight until
 *  all have, so that nothing moves under the pointer (layout shift) on opening the page. */
export async function opening(loadSections) {
  document.body.classList.add("opening");
  $("#main").ariaBusy = "true";
  try {
    await loadSections();
  } finally {
    document.body.classList.remove("opening");
    $("#main").ariaBusy = null;
  }
}

let toastTimer = 0;
export function toast(message, kind = "info") {
  const element = document.getElementById("toast");
  element.textContent = message;
  element.className = `toast ${kind}`;
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    element.hidden = true;
  }, 4000);
}
