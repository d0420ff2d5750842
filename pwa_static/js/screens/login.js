/**
 * 登录 (device registration, needs signal once) and the revoked-device screen, which offers
 * the unsent records as a file before it wipes the phone.
 *
 * @module screens/login
 */

import { ApiError, NetworkError } from "../api.js";
import { t } from "../i18n.js";
import { waiting } from "../outbox.js";
import { exportUnsent, goesToDashboard, signIn, toDashboard } from "../session.js";
import { ask, button, field, h } from "../ui.js";

export function render(ctx) {
  ctx.title(t("login.title"));
  const username = h("input", { autocomplete: "username", autocapitalize: "none", required: true });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary big" }, t("login.submit"));
  const login = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const session = await signIn(ctx.db, username.value.trim(), password.value);
      if (goesToDashboard(session)) return toDashboard(ctx.db, session);
      ctx.restart({ sync: true });
    } catch (failure) {
      error.textContent = loginError(failure);
      error.hidden = false;
      submit.disabled = false;
    }
  };
  return h(
    "form",
    { class: "screen form login", on: { submit: login } },
    h("img", { src: "/app/icons/icon-192.png", alt: "", width: 96, height: 96, class: "logo" }),
    h("p", { class: "hint" }, t("login.hint")),
    h(
      "section",
      { class: "card" },
      field(t("login.username"), username),
      field(t("login.password"), password),
      error,
      submit,
    ),
  );
}

function loginError(failure) {
  if (failure instanceof NetworkError) return t("login.offline");
  if (failure instanceof ApiError && failure.status === 401) return t("login.wrong");
  return failure.message;
}

export async function renderRevoked(ctx, revoked) {
  ctx.title(t("revoked.title"));
  const { total } = await waiting(ctx.db);
  let exported = total === 0;
  const wipe = button(
    t("revoked.wipe"),
    async () => {
      if (!exported) {
        const choice = await ask(t("revoked.wipe"), h("p", {}, t("revoked.wipeUnexported", { n: total })), [
          { name: "cancel", text: t("action.cancel") },
          { name: "wipe", text: t("revoked.wipe") },
        ]);
        if (choice !== "wipe") return;
      }
      await ctx.db.wipe();
      ctx.restart();
    },
    "danger big",
  );
  return h(
    "div",
    { class: "screen revoked" },
    h(
      "section",
      { class: "card" },
      h("p", {}, t(revoked.code === "device_revoked" ? "revoked.revoked" : "revoked.expired")),
      h("p", {}, total ? t("revoked.unsent", { n: total }) : t("revoked.nothingUnsent")),
      total > 0 &&
        button(
          t("revoked.export", { n: total }),
          async () => {
            await exportUnsent(ctx.db, ctx.session);
            exported = true;
          },
          "primary big",
        ),
      wipe,
    ),
  );
}
