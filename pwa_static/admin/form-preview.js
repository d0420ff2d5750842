/**
 * The preview of a form on the administration page: the phone's own rendering of a form
 * (screens/visit.js formFields, the app's stylesheet), run in a 360 px frame, so what the
 * admin sees before publishing is what a cadre's phone will show. The page holding the frame
 * posts {form, lang}: the form record's data, as phones pull it.
 *
 * @module admin/form-preview
 */

import { defaults } from "/app/js/forms.js";
import { pick, useLang } from "/app/js/i18n.js";
import { formFields } from "/app/js/screens/visit.js";
import { h } from "/app/js/ui.js";

/** The people of an imagined household, for person questions. */
const PEOPLE = [
  { id: "preview-1", name: "张桂兰" },
  { id: "preview-2", name: "李建国" },
];

function render({ form, lang }) {
  useLang(lang);
  document.getElementById("title").textContent = pick(form.title);
  const state = { answers: defaults(form), seen: new Set(), mode: "home", location: null };
  const { cards } = formFields(form, state, PEOPLE);
  document
    .getElementById("main")
    .replaceChildren(h("form", { class: "screen form visit", novalidate: true }, cards));
}

window.addEventListener("message", (event) => {
  if (event.origin !== location.origin || event.source !== window.parent) return;
  if (event.data?.form) render(event.data);
});
