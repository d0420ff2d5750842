/**
 * The management page's notice channels (通知渠道): a county's or township's WeCom robot,
 * DingTalk robot and e-mail recipients, through /api/v1/admin/regions/<id>/notices. The server
 * never sends a webhook URL or secret back whole: a field left empty keeps what is stored.
 *
 * @module admin/notices
 */

import { call } from "./api.js";
import { $, fill, h, toast } from "./dom.js";
import { t } from "./i18n.js";

const CHANNEL_NAMES = { wecom: "n.wecom", dingtalk: "n.dingtalk", email: "n.email" };
let region = null;

function forms() {
  return [...document.querySelectorAll("#notices form.notice")];
}

/** Fill the region list (counties and townships) and show the first region's channels. */
export async function loadNotices(regions) {
  const select = $("#notice-region");
  const choices = regions.filter((r) => r.level === "county" || r.level === "township");
  fill(
    select,
    choices.map((r) => h("option", { value: r.id }, `${"\u3000".repeat(r.depth)}${r.name}`)),
  );
  if (region && choices.some((r) => r.id === region)) select.value = region;
  region = select.value || null;
  $("#notices").hidden = !region;
  if (region) await showRegion();
}

async function showRegion() {
  const answer = await call(`/admin/regions/${region}/notices`);
  $("#notice-smtp").hidden = answer.smtp_configured;
  for (const form of forms()) {
    const channel = form.dataset.channel;
    const stored = answer.channels.find((c) => c.channel === channel);
    form.reset();
    form.querySelector(".remove").disabled = !stored;
    if (form.url) {
      form.url.placeholder = stored ? t("n.kept", { value: stored.url }) : "https://";
      form.url.required = !stored;
    }
    if (form.secret) form.secret.placeholder = stored?.secret_set ? t("n.secret.kept") : "";
    if (form.recipients) {
      form.recipients.value = (stored?.recipients ?? []).join("\n");
      form.querySelector("[type=submit]").disabled = !answer.smtp_configured;
    }
    const jobs = stored?.jobs ?? answer.jobs;
    fill(
      form.querySelector(".jobs"),
      answer.jobs.map((job) =>
        h(
          "label",
          { className: "check" },
          h("input", { type: "checkbox", name: "jobs", value: job, checked: jobs.includes(job) }),
          t(`n.job.${job}`),
        ),
      ),
    );
  }
}

async function save(form) {
  const body = {
    jobs: [...form.querySelectorAll("[name=jobs]:checked")].map((box) => box.value),
  };
  if (form.url?.value.trim()) body.url = form.url.value.trim();
  if (form.secret?.value) body.secret = form.secret.value;
  if (form.recipients) {
    body.recipients = form.recipients.value.split(/\s+/).filter(Boolean);
  }
  await call(`/admin/regions/${region}/notices/${form.dataset.channel}`, { method: "PUT", body });
  await showRegion();
  toast(t("n.saved"));
}

async function remove(form) {
  const channel = t(CHANNEL_NAMES[form.dataset.channel]);
  if (!window.confirm(t("n.confirm", { channel }))) return;
  await call(`/admin/regions/${region}/notices/${form.dataset.channel}`, { method: "DELETE" });
  await showRegion();
  toast(t("n.removed"));
}

/** Wire the section; `report` shows an error the way the rest of the page does. */
export function wireNotices(report) {
  $("#notice-region").addEventListener("change", (event) => {
    region = event.currentTarget.value;
    showRegion().catch(report);
  });
  for (const form of forms()) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(form).catch(report);
    });
    form.querySelector(".remove").addEventListener("click", () => remove(form).catch(report));
  }
}
