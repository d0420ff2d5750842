/**
 * The administration page (管理) at /admin/manage: roster import, households, users, 包保 and
 * its transfer, the visit policy, the form versions and the notice channels (notices.js) — all
 * through /api/v1/admin, admins only.
 *
 * @module admin/manage
 */

import { call, forget, query, session, upload } from "./api.js";
import { signInHandler, signOutHandler } from "./signin.js";
import { $, fill, h, opening, toast } from "./dom.js";
import { applyStatic, lang, pick, setLang, t } from "./i18n.js";
import { loadForms, wireForms } from "./forms.js";
import { loadNotices, wireNotices } from "./notices.js";

const PER_PAGE = 20;
const POLICIES = ["weekly", "monthly", "none"];
const state = {
  page: 1,
  q: "",
  total: 0,
  regions: [],
  names: new Map(),
  users: [],
  household: null,
};

function report(error) {
  if (error?.status === 401) return showSignIn();
  if (error?.status === 403) return deny();
  toast(t("error", { message: error?.message ?? String(error) }), "error");
}

function relabel() {
  applyStatic();
  document.title = `${t("m.title")} · ${lang() === "en" ? "Zoufang" : "走访"}`;
  for (const element of document.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
}

// ---- sign-in ----------------------------------------------------------------------------

function showSignIn() {
  forget();
  $("#main").hidden = true;
  $("#denied").hidden = true;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  $("#signin").hidden = false;
}

function deny() {
  // a supervisor or cadre: no admin data on the page
  $("#main").hidden = true;
  for (const body of document.querySelectorAll("#main tbody")) body.replaceChildren();
  $("#denied").hidden = false;
}

async function start() {
  const user = session()?.user;
  if (!session()?.token || !user) return showSignIn();
  $("#signin").hidden = true;
  $("#signout").hidden = false;
  $("#who").textContent = user.name || user.username;
  if (user.role !== "admin") return deny();
  $("#denied").hidden = true;
  $("#main").hidden = false;
  await opening(loadAll);
}

async function loadAll() {
  document.body.classList.add("loading");
  try {
    await loadRegions();
    const results = await Promise.allSettled([
      loadHouseholds(),
      loadUsers(),
      loadPolicy(),
      loadForms(),
      loadNotices(state.regions),
    ]);
    for (const result of results) if (result.status === "rejected") report(result.reason);
  } catch (error) {
    report(error);
  } finally {
    document.body.classList.remove("loading");
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
  }
}

// ---- regions ----------------------------------------------------------------------------

async function loadRegions() {
  const answer = await call("/admin/regions");
  const flat = [];
  const walk = (node, depth) => {
    flat.push({ ...node, depth });
    for (const child of node.children ?? []) walk(child, depth + 1);
  };
  for (const root of answer.regions) walk(root, 0);
  state.regions = flat;
  state.names = new Map(flat.map((region) => [region.id, region.name]));
  const option = (region) =>
    h("option", { value: region.id }, `${"\u3000".repeat(region.depth)}${region.name}`);
  fill($("#user-create [name=regions]"), flat.map(option));
  fill(
    $("#assign-form [name=regions]"),
    flat.filter((region) => region.level === "village").map(option),
  );
}

function selected(select) {
  return [...select.selectedOptions].map((option) => option.value);
}

// ---- roster -----------------------------------------------------------------------------

async function uploadRoster(dryRun) {
  const file = $("#roster-form [name=file]").files[0];
  if (!file) return;
  return upload(
    `/admin/roster?${query({ dry_run: dryRun })}`,
    file,
    lang(),
    (status, error) => status === 422 && Boolean(error.details?.errors),
  );
}

function counts(part) {
  return t("m.roster.counts", {
    created: part?.created ?? 0,
    updated: part?.updated ?? 0,
    unchanged: part?.unchanged ?? 0,
  });
}

/** One row of the roster's errors or warnings: the file's row number, the column, the reason. */
function issueRow(issue, className) {
  return h(
    "tr",
    { className },
    h("td", { className: "num" }, issue.row ?? "—"),
    h("td", {}, issue.column ?? ""),
    h("td", {}, issue.message),
  );
}

async function onRoster(dryRun) {
  const summary = $("#roster-summary");
  const table = $("#roster-errors");
  $("#roster-import").disabled = true;
  summary.textContent = "";
  summary.className = "summary";
  try {
    const answer = await uploadRoster(dryRun);
    if (!answer) return;
    if (!answer.ok) {
      summary.textContent = answer.error.message;
      summary.classList.add("error");
      table.hidden = false;
      fill($("tbody", table), answer.error.details.errors.map((row) => issueRow(row, "")));
      return;
    }
    const result = answer.body;
    const rows = [...(result.warnings ?? [])];
    table.hidden = rows.length === 0;
    fill($("tbody", table), rows.map((row) => issueRow(row, "warning")));
    summary.textContent = t(dryRun ? "m.roster.would" : "m.roster.done", {
      rows: result.rows,
      households: counts(result.households),
      people: counts(result.people),
      regions: result.regions?.created ?? 0,
    });
    if (rows.length) summary.append(" ", t("m.roster.warnings", { n: rows.length }));
    summary.classList.add(dryRun ? "ok" : "done");
    $("#roster-import").disabled = !dryRun;
    if (!dryRun) {
      toast(t("m.roster.imported"));
      await loadRegions();
      await loadHouseholds();
    }
  } catch (error) {
    report(error);
  }
}

// ---- households -------------------------------------------------------------------------

let householdsAsked = 0;

async function loadHouseholds() {
  // only the latest search is shown, whichever answer comes last
  const asked = ++householdsAsked;
  const answer = await call(
    `/admin/households?${query({ q: state.q, page: state.page, per_page: PER_PAGE })}`,
  );
  if (asked !== householdsAsked) return;
  state.total = answer.total;
  const pages = Math.max(1, Math.ceil(answer.total / answer.per_page));
  $("#households-count").textContent = String(answer.total);
  $("#page").textContent = t("m.page", { page: answer.page, pages });
  $("#prev").disabled = answer.page <= 1;
  $("#next").disabled = answer.page >= pages;
  fill(
    $("#households tbody"),
    answer.households.map((household) =>
      h(
        "tr",
        { dataset: { id: household.id }, className: household.status === "archived" ? "revoked" : "" },
        h("td", {}, household.code),
        h("td", {}, household.head_name),
        h("td", {}, household.village ?? state.names.get(household.village_id) ?? ""),
        h("td", {}, household.category ?? ""),
        h("td", {}, t(`hstatus.${household.status}`)),
        h("td", {}, h("button", { type: "button", onclick: () => openHousehold(household.id) }, t("m.edit"))),
      ),
    ),
  );
}

async function openHousehold(id) {
  try {
    const answer = await call(`/admin/households/${id}`);
    const household = answer.household;
    state.household = household;
    const form = $("#household-edit");
    for (const name of ["head_name", "phone", "address", "category", "notes"]) {
      form[name].value = household[name] ?? "";
    }
    $("#household-title").textContent = `${household.code} · ${household.head_name}`;
    $("#household-archive").disabled = household.status === "archived";
    form.hidden = false;
    form.head_name.focus();
  } catch (error) {
    report(error);
  }
}

async function onSaveHousehold(event) {
  event.preventDefault();
  const household = state.household;
  if (!household) return;
  const form = event.currentTarget;
  const changes = {};
  for (const name of ["head_name", "phone", "address", "category", "notes"]) {
    const value = form[name].value.trim();
    if (value !== (household[name] ?? "")) changes[name] = value === "" ? null : value;
  }
  if (Object.keys(changes).length === 0) return toast(t("m.nochange"));
  try {
    await call(`/admin/households/${household.id}`, { method: "PATCH", body: changes });
    toast(t("m.saved"));
    await openHousehold(household.id);
    await loadHouseholds();
  } catch (error) {
    report(error);
  }
}

async function onArchive() {
  const household = state.household;
  if (!household || !window.confirm(t("m.archive.confirm", { name: household.head_name }))) return;
  try {
    await call(`/admin/households/${household.id}/archive`, { method: "POST" });
    toast(t("m.archived"));
    await openHousehold(household.id);
    await loadHouseholds();
  } catch (error) {
    report(error);
  }
}

// ---- users ------------------------------------------------------------------------------

async function loadUsers() {
  const answer = await call("/admin/users");
  state.users = answer.users;
  const me = session()?.user?.id;
  fill(
    $("#users tbody"),
    answer.users.map((user) => {
      const toggle = h(
        "button",
        {
          type: "button",
          className: user.active ? "danger" : "",
          disabled: user.id === me,
          onclick: () => setActive(user, !user.active),
        },
        t(user.active ? "m.deactivate" : "m.activate"),
      );
      const reset = h("button", { type: "button", onclick: () => resetPassword(user) }, t("m.reset"));
      return h(
        "tr",
        { dataset: { username: user.username }, className: user.active ? "" : "revoked" },
        h("td", {}, user.username),
        h("td", {}, user.name ?? ""),
        h("td", {}, t(`role.${user.role}`)),
        h("td", {}, user.region_ids.map((id) => state.names.get(id) ?? id).join("、")),
        h("td", {}, t(user.active ? "m.active" : "m.inactive")),
        h("td", { className: "actions" }, toggle, reset),
      );
    }),
  );
  const options = () =>
    answer.users
      .filter((user) => user.active)
      .map((user) => h("option", { value: user.id }, `${user.name || user.username}（${user.username}）`));
  for (const select of document.querySelectorAll("select.users")) {
    const before = select.value;
    fill(select, options());
    if (before) select.value = before;
  }
  await showAssignment();
}

async function setActive(user, active) {
  if (!active && !window.confirm(t("m.deactivate.confirm", { name: user.name || user.username }))) {
    return;
  }
  try {
    await call(`/admin/users/${user.id}/${active ? "activate" : "deactivate"}`, { method: "POST" });
    toast(t(active ? "m.activated" : "m.deactivated"));
    await loadUsers();
  } catch (error) {
    report(error);
  }
}

async function resetPassword(user) {
  const password = window.prompt(t("m.reset.prompt", { name: user.name || user.username }));
  if (!password) return;
  try {
    const answer = await call(`/admin/users/${user.id}/password`, {
      method: "POST",
      body: { password },
    });
    toast(t("m.reset.done", { n: answer.devices_revoked }));
  } catch (error) {
    report(error);
  }
}

async function onCreateUser(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    username: form.username.value.trim(),
    name: form.name.value.trim() || undefined,
    role: form.role.value,
    password: form.password.value,
    region_ids: selected(form.regions),
    household_ids: [],
  };
  try {
    await call("/admin/users", { method: "POST", body });
    toast(t("m.created", { name: body.username }));
    form.reset();
    await loadUsers();
  } catch (error) {
    report(error);
  }
}

// ---- 包保 -------------------------------------------------------------------------------

async function showAssignment() {
  const form = $("#assign-form");
  const user = state.users.find((u) => u.id === form.user.value);
  if (!user) return;
  for (const option of form.regions.options) option.selected = user.region_ids.includes(option.value);
  const codes = await Promise.all(
    user.household_ids.map((id) =>
      call(`/admin/households/${id}`)
        .then((answer) => answer.household.code)
        .catch(() => id),
    ),
  );
  // another user may have been chosen meanwhile
  if (form.user.value === user.id) form.codes.value = codes.join("\n");
}

async function householdIds(codes) {
  const ids = [];
  for (const code of codes) {
    const answer = await call(`/admin/households?${query({ q: code, per_page: 200 })}`);
    const found = answer.households.find((household) => household.code === code);
    if (!found) throw new Error(t("m.nocode", { code }));
    ids.push(found.id);
  }
  return ids;
}

async function onAssign(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const codes = form.codes.value.split(/[\s,，、]+/).filter(Boolean);
  try {
    const body = { region_ids: selected(form.regions), household_ids: await householdIds(codes) };
    await call(`/admin/users/${form.user.value}/assignment`, { method: "PUT", body });
    toast(t("m.assigned"));
    await loadUsers();
  } catch (error) {
    report(error);
  }
}

async function onTransfer(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = (id) => {
    const user = state.users.find((u) => u.id === id);
    return user ? user.name || user.username : id;
  };
  const from = form.from_user.value;
  const to = form.to_user.value;
  if (!window.confirm(t("m.transfer.confirm", { from: name(from), to: name(to) }))) return;
  try {
    await call("/admin/assignments/transfer", {
      method: "POST",
      body: { from_user: from, to_user: to },
    });
    toast(t("m.transferred", { from: name(from), to: name(to) }));
    await loadUsers();
  } catch (error) {
    report(error);
  }
}

// ---- visit policy and forms -------------------------------------------------------------

/** A policy dropdown; `label` names it for screen readers where no <label> wraps it. */
function policySelect(name, value, label = null) {
  return h(
    "select",
    { name, className: "policy", ...(label && { ariaLabel: label }) },
    POLICIES.map((policy) => h("option", { value: policy, selected: policy === value }, t(`policy.${policy}`))),
  );
}

async function loadPolicy() {
  const answer = await call("/admin/visit-policy");
  const { policy } = answer;
  const form = $("#policy-form");
  for (const name of ["flagged", "default"]) form[name].replaceWith(policySelect(name, policy[name]));
  const categories = new Map(answer.categories.map((row) => [row.category, row.households]));
  for (const category of Object.keys(policy.categories)) {
    if (!categories.has(category)) categories.set(category, 0);
  }
  fill(
    $("#policy tbody"),
    [...categories].map(([category, households]) =>
      h(
        "tr",
        { dataset: { category } },
        h("td", {}, category || t("empty")),
        h("td", { className: "num" }, households),
        h(
          "td",
          {},
          policySelect(
            "category",
            policy.categories[category] ?? policy.default,
            `${category || t("empty")} · ${t("m.col.policy")}`,
          ),
        ),
      ),
    ),
  );
}

async function onSavePolicy(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const categories = {};
  for (const row of form.querySelectorAll("tbody tr")) {
    const value = $("select", row).value;
    if (row.dataset.category && value !== form.default.value) categories[row.dataset.category] = value;
  }
  const body = { flagged: form.flagged.value, default: form.default.value, categories };
  try {
    const answer = await call("/admin/visit-policy", { method: "PUT", body });
    toast(t("m.policy.saved", { n: answer.households_updated }));
    await loadPolicy();
  } catch (error) {
    report(error);
  }
}

// ---- wiring -----------------------------------------------------------------------------

function wire() {
  relabel();
  $("#signin").addEventListener("submit", signInHandler(start));
  $("#signout").addEventListener("click", signOutHandler(showSignIn));
  $("#lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    relabel();
    if (session()?.user?.role === "admin") loadAll();
  });
  $("#roster-form").addEventListener("submit", (event) => {
    event.preventDefault();
    onRoster(true);
  });
  $("#roster-form [name=file]").addEventListener("change", () => {
    $("#roster-import").disabled = true;
  });
  $("#roster-import").addEventListener("click", () => onRoster(false));
  $("#household-search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = event.currentTarget.q.value.trim();
    state.page = 1;
    loadHouseholds().catch(report);
  });
  $("#prev").addEventListener("click", () => {
    state.page = Math.max(1, state.page - 1);
    loadHouseholds().catch(report);
  });
  $("#next").addEventListener("click", () => {
    state.page += 1;
    loadHouseholds().catch(report);
  });
  $("#household-edit").addEventListener("submit", onSaveHousehold);
  $("#household-archive").addEventListener("click", onArchive);
  $("#household-close").addEventListener("click", () => {
    $("#household-edit").hidden = true;
    state.household = null;
  });
  $("#user-create").addEventListener("submit", onCreateUser);
  $("#assign-form").addEventListener("submit", onAssign);
  $("#assign-form [name=user]").addEventListener("change", () => showAssignment().catch(report));
  $("#transfer-form").addEventListener("submit", onTransfer);
  $("#policy-form").addEventListener("submit", onSavePolicy);
  wireNotices(report);
  wireForms(report);
  start();
}

wire();
