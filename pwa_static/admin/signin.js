// Sign-in and sign-out as both admin pages do them: a signed-in browser is a registered device.
import { call, session, signIn } from "./api.js";
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

/** A click handler for #signout: this browser's device is not needed any more, so it is
 * revoked (failures ignored: the token is forgotten either way), then `showSignIn`. */
export function signOutHandler(showSignIn) {
  return () => {
    const answer = session();
    if (answer?.device_id) {
      call(`/devices/${answer.device_id}`, { method: "DELETE" }).catch(() => {});
    }
    showSignIn();
  };
}
