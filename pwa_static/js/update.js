/**
 * Service worker registration and updates: a new version installs in the background and
 * waits; the banner "有新版本 · 更新" asks the user, and only their tap lets it take over.
 * Unsent records are in IndexedDB, which no version of the service worker touches.
 *
 * @module update
 */

let registration = null;
let accepted = false;

/** Register sw.js; `onWaiting()` is called whenever a new version is ready and waiting. */
export async function register(onWaiting) {
  if (!("serviceWorker" in navigator)) return;
  registration = await navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" });
  const announce = () => {
    // no controller yet: this is the first install, there is nothing to replace
    if (registration.waiting && navigator.serviceWorker.controller) onWaiting();
  };
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker?.addEventListener("statechange", () => {
      if (worker.state === "installed") announce();
    });
  });
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (accepted) location.reload();
  });
  announce();
}

/** The user tapped 更新: the waiting version takes over and the page reloads on it. */
export function accept() {
  if (!registration?.waiting) return;
  accepted = true;
  registration.waiting.postMessage({ type: "SKIP_WAITING" });
}

/** Ask the server for a new version now (on opening, when back online, from settings). */
export async function check() {
  if (!registration || !navigator.onLine) return;
  try {
    await registration.update();
  } catch {
    // the server is unreachable: the check runs again on the next occasion
  }
}

/** The version of the shell this page runs on, as its service worker names it. */
export function version() {
  const worker = navigator.serviceWorker?.controller;
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    worker.postMessage({ type: "VERSION" }, [channel.port2]);
    setTimeout(() => resolve(null), 1000);
  });
}
