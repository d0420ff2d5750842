// The sign-in form both admin pages share: register this browser as a device, then start.
import { signIn } from "./api.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";

/** A submit handler for #signin that calls `start` once the user is signed in. */
export function signInHandler(start) {
  return async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    $("#signin-error").textContent = "";
    try {
      await signIn(form.username.value.trim(), form.password.value);
      form.password.value = "";
      await start();
    } catch (error) {
      $("#signin-error").textContent = t("signin.failed", { message: error.message });
    }
  };
}
