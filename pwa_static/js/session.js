/**
 * Sign-in is device registration (CONTRACT §3): the token, device id and user are kept in
 * IndexedDB, and the device's op counter and clock start here. Leaving — signing out, or a
 * device revoked by an admin — offers the unsent records as a file, then wipes the phone.
 *
 * @module session
 */

import { request } from "./api.js";
import { Clock, ZERO } from "./hlc.js";
import { unsent } from "./outbox.js";

/** Register this phone for the user; resolves to the session. */
export async function signIn(db, username, password) {
  const body = { username, password, label: deviceLabel() };
  const answer = await request("/api/v1/devices", { method: "POST", body });
  const session = { token: answer.token, device_id: answer.device_id, user: answer.user };
  await db.write(["meta"], async (t) => {
    const clock = new Clock((await t.get("meta", "hlc")) ?? ZERO);
    clock.observe(answer.server_hlc);
    t.put("meta", session, "session");
    t.put("meta", 1, "next_seq"); // device_seq counts from 1 for every new device
    t.put("meta", clock.last, "hlc");
  });
  return session;
}

/** Supervisors and admins work from the dashboard (/admin), cadres in the app. A supervisor
 *  who also visits households opens the app on purpose, from the dashboard's link (/?app=1). */
export function goesToDashboard(session) {
  const onPurpose = new URLSearchParams(location.search).has("app");
  return ["supervisor", "admin"].includes(session.user?.role) && !onPurpose;
}

/** Hand the sign-in just made to the dashboard (its tab session, as its own sign-in keeps it)
 *  and leave; the app keeps no copy of the township's households on an office computer. */
export async function toDashboard(db, session) {
  sessionStorage.setItem("zoufang.admin.session", JSON.stringify(session));
  await db.wipe();
  location.assign("/admin");
}

/** "红米 9A · Android 10" when the browser says so; the admin sees it in the device list. */
function deviceLabel() {
  const android = navigator.userAgent.match(/Android [\d.]+(?:; ([^;)]+))?/);
  return `走访 PWA · ${android ? android[0] : navigator.platform || "browser"}`.slice(0, 100);
}

/** Revoke this device on the server if it can be reached (a lost connection is no reason to
 *  keep the data), then wipe. */
export async function signOut(db, session) {
  try {
    await request(`/api/v1/devices/${session.device_id}`, { method: "DELETE", token: session.token });
  } catch {
    // offline or already revoked: the token leaves the phone with the wipe all the same
  }
  await db.wipe();
}

/** Download what the server has not stored (queued and rejected ops) as a JSON file. */
export async function exportUnsent(db, session) {
  const { outbox, rejected } = await unsent(db);
  const file = {
    exported_at: new Date().toISOString(),
    device_id: session?.device_id ?? null,
    user: session?.user ?? null,
    outbox,
    rejected,
  };
  const blob = new Blob([JSON.stringify(file, null, 2)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `zoufang-unsent-${file.exported_at.slice(0, 19).replaceAll(":", "")}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return outbox.length + rejected.length;
}
