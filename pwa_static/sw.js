/*
 * The service worker: keeps the app shell in a versioned cache so that the app opens with no
 * network, across reloads and browser restarts.
 *
 * - server/web.py fills in VERSION and SHELL when it serves this file; a changed shell is a
 *   changed sw.js, which the browser installs in the background.
 * - A new version precaches the whole shell, then waits: it takes over only when the page
 *   sends SKIP_WAITING, after the user tapped "更新" (js/update.js).
 * - It never touches IndexedDB, where unsent records live, and never handles /api/: an update
 *   can delete old caches without losing anything a cadre recorded.
 */
const VERSION = "__SHELL_VERSION__";
const SHELL = ["__SHELL_FILES__"];
const PREFIX = "zoufang-shell-";
const CACHE = PREFIX + VERSION;

self.addEventListener("install", (event) => {
  // cache: "reload" bypasses the HTTP cache, so a version never precaches an older file
  const requests = SHELL.map((url) => new Request(url, { cache: "reload" }));
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(requests)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "SKIP_WAITING") self.skipWaiting();
  if (event.data?.type === "VERSION") event.ports[0]?.postMessage(VERSION);
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/") {
    event.respondWith(cached("/", request));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(cached(url.pathname, request));
  }
});

/** The shell file from this version's cache; the network only if the cache lost it. */
async function cached(path, request) {
  const hit = await caches.match(path, { cacheName: CACHE });
  return hit ?? fetch(request);
}
