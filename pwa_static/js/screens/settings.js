/**
 * 设置: language, who is signed in on which device, whether the browser keeps the data for
 * good, the app version (and a check for a new one), and signing out.
 *
 * @module screens/settings
 */

import { LANGUAGES, setLang, t } from "../i18n.js";
import { waiting } from "../outbox.js";
import { exportUnsent, signOut } from "../session.js";
import * as update from "../update.js";
import { ask, button, contrast, h, section, setContrast, toast } from "../ui.js";

export async function render(ctx) {
  ctx.title(t("settings.title"));
  const { user, device_id: deviceId } = ctx.session;
  const persisted = (await navigator.storage?.persisted?.()) ?? false;
  const version = await update.version();
  const storage = h("p", {}, persisted ? t("settings.persisted") : t("settings.notPersisted"));
  return h(
    "div",
    { class: "screen settings" },
    section(
      t("settings.language"),
      h(
        "div",
        { class: "segmented", role: "group", "aria-label": t("settings.language") },
        LANGUAGES.map(([code, name]) =>
          button(
            name,
            async () => {
              await setLang(ctx.db, code);
              ctx.rerender();
            },
            "",
            { "aria-pressed": String(document.documentElement.lang === code) },
          ),
        ),
      ),
    ),
    section(
      t("settings.display"),
      button(
        t("settings.contrast"),
        (event) => {
          setContrast(!contrast());
          event.currentTarget.setAttribute("aria-pressed", String(contrast()));
        },
        "toggle",
        { "aria-pressed": String(contrast()) },
      ),
      h("p", { class: "hint" }, t("settings.contrastHint")),
    ),
    section(
      t("settings.account"),
      h("p", {}, h("b", {}, user.name), ` (${user.username}) · ${t(`role.${user.role}`)}`),
      h("p", { class: "muted" }, t("settings.device", { id: deviceId })),
    ),
    section(
      t("settings.storage"),
      storage,
      !persisted &&
        button(
          t("settings.persist"),
          async () => {
            const granted = await navigator.storage?.persist?.();
            storage.textContent = granted ? t("settings.persisted") : t("settings.persistRefused");
          },
          "small",
        ),
    ),
    section(
      t("settings.version"),
      h("p", {}, version ?? t("settings.noWorker")),
      button(
        t("settings.checkUpdate"),
        async () => {
          await update.check();
          toast(t("settings.checked"));
        },
        "small",
      ),
    ),
    section(
      t("settings.signOut"),
      h("p", { class: "hint" }, t("settings.signOutHint")),
      button(t("settings.signOut"), () => leave(ctx), "danger"),
    ),
  );
}

async function leave(ctx) {
  const { total } = await waiting(ctx.db);
  const actions = [{ name: "cancel", text: t("action.cancel") }];
  if (total) actions.push({ name: "export", text: t("revoked.export", { n: total }) });
  actions.push({ name: "leave", text: t("settings.signOut"), primary: !total });
  const body = h("p", {}, total ? t("settings.unsentWarning", { n: total }) : t("settings.signOutConfirm"));
  const choice = await ask(t("settings.signOut"), body, actions);
  if (choice === "export") await exportUnsent(ctx.db, ctx.session);
  if (choice === "leave" || choice === "export") {
    await signOut(ctx.db, ctx.session);
    ctx.restart();
  }
}
