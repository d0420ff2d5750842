/**
 * The app: opens the database, shows the sign-in or the screen the URL names (hash routes,
 * so every screen is the one cached page), keeps the header, tab bar and sync badge current,
 * and syncs when it opens and whenever the phone comes back online.
 *
 * @module app
 */

import { open } from "./db.js";
import { loadLang, t } from "./i18n.js";
import { waiting } from "./outbox.js";
import * as household from "./screens/household.js";
import * as login from "./screens/login.js";
import * as problems from "./screens/problems.js";
import * as settings from "./screens/settings.js";
import * as syncScreen from "./screens/sync.js";
import * as visit from "./screens/visit.js";
import * as week from "./screens/week.js";
import * as sync from "./sync.js";
import * as update from "./update.js";
import { contrast, h, hideToast, setContrast } from "./ui.js";

/** Route pattern (the hash without "#/" and query) → screen, the tab it belongs to, and
 *  whether it is a view to redraw when a sync brings news (never a form being filled in). */
const ROUTES = [
  [/^$/, week.render, "week", true],
  [/^h\/([^/]+)$/, household.render, "week", true],
  [/^h\/([^/]+)\/edit$/, household.renderEdit, "week", false],
  [/^visit\/([^/]+)$/, visit.render, "week", false],
  [/^found\/([^/]+)$/, visit.renderFound, "week", true],
  [/^problems$/, problems.renderList, "problems", true],
  [/^problem\/new$/, problems.renderNew, "problems", false],
  [/^problem\/([^/]+)$/, problems.renderDetail, "problems", false],
  [/^sync$/, syncScreen.render, "sync", false],
  [/^settings$/, settings.render, "settings", false],
];
/** Lists keep their scroll position when the user comes back to them. */
const REMEMBER_SCROLL = new Set(["", "problems"]);

const app = {
  db: null,
  session: null,
  revoked: null, // {code, at} once the server refused this device: only the revoked screen remains
  shown: null,
  renderId: 0,
  cleanups: [],
  scroll: new Map(),
  rendered: false,
};
const $ = (id) => document.getElementById(id);

async function start() {
  setContrast(contrast());
  app.db = await open();
  await loadLang(app.db);
  $("update-button").addEventListener("click", update.accept);
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => {
    showOffline();
    autoSync();
    update.check();
  });
  window.addEventListener("offline", showOffline);
  showOffline();
  sync.events.addEventListener("progress", refreshBadge);
  sync.events.addEventListener("done", ({ detail }) => {
    document.documentElement.dataset.sync = detail.ok ? "ok" : "failed";
    document.documentElement.dataset.syncedAt = detail.at;
    refreshBadge();
    const news = detail.received || detail.conflicts || detail.rejected;
    if (news && app.session && match(parseHash().path).live) route();
  });
  sync.events.addEventListener("revoked", ({ detail }) => {
    app.revoked = { code: detail.code };
    route();
  });
  await restart({ sync: true });
  update.register(() => {
    $("update-banner").hidden = false;
  });
}

/** Read the session again (after sign-in, sign-out, wipe) and show the right screen. */
async function restart({ sync: andSync = false } = {}) {
  [app.session, app.revoked] = await app.db.read(["meta"], (tx) =>
    Promise.all([tx.get("meta", "session"), tx.get("meta", "revoked")]),
  );
  if (!app.session && location.hash) history.replaceState(null, "", "/");
  await route();
  if (!app.session) return;
  // a week of unsent visits must survive the browser freeing space: ask, on every start,
  // since Chrome grants it by engagement (an installed app usually gets it)
  navigator.storage?.persist?.().catch(() => {});
  if (andSync) autoSync();
}

function autoSync() {
  if (app.session && navigator.onLine) startSync();
}

/** Start or join a sync. <html data-sync="running|ok|failed" data-synced-at="…"> show its
 *  state and when the last one ended, to CSS and to tests. */
function startSync() {
  document.documentElement.dataset.sync = "running";
  return sync.sync(app.db);
}

/** The route in the URL: "#/h/abc?x=1" → path "h/abc", query x=1. */
function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { path, query: new URLSearchParams(query) };
}

function match(path) {
  for (const [pattern, screen, tab, live] of ROUTES) {
    const found = path.match(pattern);
    if (found) return { screen, tab, live, params: found.slice(1).map(decodeURIComponent) };
  }
  return { screen: week.render, tab: "week", live: true, params: [] };
}

async function route() {
  const id = ++app.renderId;
  for (const cleanup of app.cleanups.splice(0)) cleanup();
  hideToast(500);
  if (app.shown !== null) app.scroll.set(app.shown, window.scrollY);
  const { path, query } = parseHash();
  let target = match(path);
  if (!app.session) target = { screen: login.render, tab: null, params: [] };
  else if (app.revoked)
    target = { screen: (ctx) => login.renderRevoked(ctx, app.revoked), tab: null, params: [] };
  let node;
  try {
    node = await target.screen(context(id), target.params, query);
  } catch (error) {
    console.error(error);
    node = h(
      "div",
      { class: "screen" },
      h("p", { class: "error" }, t("app.error"), " ", String(error.message ?? error)),
    );
  }
  if (id !== app.renderId) return; // the user moved on while this screen was loading
  $("main").replaceChildren(node);
  $("tabs").hidden = target.tab === null;
  for (const link of $("tabs").querySelectorAll("a")) {
    if (link.dataset.tab === target.tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const same = app.shown === path;
  window.scrollTo(0, same || REMEMBER_SCROLL.has(path) ? (app.scroll.get(path) ?? 0) : 0);
  // a new screen is announced by its heading; a redraw of the same one keeps the user's place
  if (!same && app.rendered) $("title").focus({ preventScroll: true });
  app.shown = path;
  if (!app.rendered) {
    app.rendered = true;
    performance.mark("zoufang:first-render");
  }
  refreshBadge();
}

/** What a screen gets: the database, the session, and a few ways to act on the app. */
function context(id) {
  return {
    db: app.db,
    session: app.session,
    title(text, back = null) {
      $("title").textContent = text;
      document.title = `${text} · ${t("app.name")}`;
      $("back").hidden = back === null;
      if (back !== null) $("back").href = back;
    },
    navigate(hash) {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
    rerender: () => route(),
    restart,
    sync: startSync,
    /** Listen while this screen is shown. */
    listen(target, type, listener) {
      if (id !== app.renderId) return;
      target.addEventListener(type, listener);
      app.cleanups.push(() => target.removeEventListener(type, listener));
    },
  };
}

/** 离线 in the header while the browser has no network: work goes on, records wait here. */
function showOffline() {
  const chip = $("offline");
  chip.textContent = t("offline.chip");
  chip.setAttribute("aria-label", t("offline.label"));
  chip.hidden = navigator.onLine;
}

/** The header chip and the tab badge: how many changes wait, or that a sync runs. */
async function refreshBadge() {
  showOffline();
  const chip = $("sync-chip");
  const badge = $("tab-badge");
  if (!app.session) {
    chip.hidden = badge.hidden = true;
    return;
  }
  const { total } = await waiting(app.db);
  badge.textContent = String(total);
  badge.hidden = total === 0;
  chip.textContent = sync.isRunning() ? t("chip.syncing") : t("chip.waiting", { n: total });
  chip.hidden = !sync.isRunning() && total === 0;
}

start();
