/**
 * 表单 on the administration page: upload an XLSForm, see every problem by sheet and row, or
 * the form as a phone will show it (the preview frame runs the app's own form rendering,
 * /admin/form-preview), then publish it as the next version; every version listed with its
 * field count and downloadable back as an XLSForm. Publishing is for an admin of every county.
 *
 * @module admin/forms
 */

import { call, download, upload } from "./api.js";
import { $, fill, h, toast } from "./dom.js";
import { lang, pick, t } from "./i18n.js";

const state = { form: null, previewLang: "zh-CN" };

/** POST the chosen file to `/admin/forms{path}`; 422 answers come back, not thrown. */
async function send(path) {
  const file = $("#form-upload [name=file]").files[0];
  if (!file) return null;
  return upload(`/admin/forms${path}`, file, lang(), (status) => [403, 413, 422].includes(status));
}

function problemRow(problem) {
  return h(
    "tr",
    {},
    h("td", {}, problem.sheet),
    h("td", { className: "num" }, problem.row ?? "—"),
    h("td", {}, problem.column ?? ""),
    h("td", {}, problem.message),
  );
}

function showRefusal(answer) {
  const summary = $("#form-summary");
  summary.textContent = answer.status === 403 ? t("f.onlyGlobal") : answer.error.message;
  summary.className = "summary error";
  const problems = answer.error.details?.problems ?? [];
  const fields = answer.error.details?.fields?.file ?? [];
  const rows = problems.length
    ? problems
    : fields.map((message) => ({ sheet: "", row: null, column: "", message }));
  $("#form-problems").hidden = rows.length === 0;
  fill($("#form-problems tbody"), rows.map(problemRow));
}

async function onPreview(event) {
  event.preventDefault();
  $("#form-publish").disabled = true;
  $("#form-preview").hidden = true;
  $("#form-problems").hidden = true;
  state.form = null;
  const answer = await send("/preview");
  if (!answer) return;
  if (!answer.ok) return showRefusal(answer);
  const result = answer.body;
  const summary = $("#form-summary");
  summary.textContent = t(result.status === "new" ? "f.would" : "f.unchanged", {
    form: result.form_id,
    version: result.version,
    n: result.fields,
  });
  summary.className = "summary ok";
  state.form = result.form;
  $("#form-publish").disabled = result.status !== "new";
  $("#form-preview").hidden = false;
  showPreview();
}

/** Load the preview frame afresh and hand it the form and the language to show it in. */
function showPreview() {
  const frame = $("#form-preview-frame");
  for (const button of document.querySelectorAll("#form-preview [data-lang]"))
    button.ariaPressed = String(button.dataset.lang === state.previewLang);
  const render = () =>
    frame.contentWindow.postMessage({ form: state.form, lang: state.previewLang }, location.origin);
  frame.addEventListener("load", render, { once: true });
  frame.src = `/admin/form-preview?${Date.now()}`;
}

async function onPublish() {
  $("#form-publish").disabled = true;
  const answer = await send("");
  if (!answer) return;
  if (!answer.ok) return showRefusal(answer);
  const result = answer.body;
  const summary = $("#form-summary");
  summary.textContent = t(result.status === "published" ? "f.published" : "f.unchanged", {
    form: result.form_id,
    version: result.version,
    n: result.fields,
  });
  await loadForms();
  summary.className = "summary done"; // once the list shows the new version
  toast(summary.textContent);
}

/** Every published version with its field count and a download of it as an XLSForm. */
export async function loadForms() {
  const answer = await call("/admin/forms");
  fill(
    $("#form-versions tbody"),
    answer.forms.map((form) =>
      h(
        "tr",
        {},
        h("td", {}, form.form_id),
        h("td", { className: "num" }, form.version),
        h("td", {}, pick(form.title)),
        h("td", { className: "num" }, form.fields),
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              className: "link",
              onclick: () =>
                download(`/admin/forms/${form.form_id}/${form.version}.xlsx`, `${form.form_id}.xlsx`),
            },
            t("f.download"),
          ),
        ),
      ),
    ),
  );
}

export function wireForms(report) {
  const guarded = (fn) => (event) => fn(event).catch(report);
  $("#form-upload").addEventListener("submit", guarded(onPreview));
  $("#form-upload [name=file]").addEventListener("change", () => {
    $("#form-publish").disabled = true;
  });
  $("#form-publish").addEventListener("click", guarded(onPublish));
  for (const button of document.querySelectorAll("#form-preview [data-lang]")) {
    button.addEventListener("click", () => {
      state.previewLang = button.dataset.lang;
      if (state.form) showPreview();
    });
  }
}
