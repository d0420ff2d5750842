/**
 * The supervisors' dashboard (督导台): coverage of a period (a week or a month, picked; the
 * address bar keeps region and period), the bulletins kept for the region, the 12-week trend,
 * overdue households, open problems and conflicts, devices and jobs, for one region at a time.
 *
 * @module admin/app
 */

import { call, download, forget, query, session } from "./api.js";
import { signInHandler, signOutHandler } from "./signin.js";
import { $, fill, h, opening, toast } from "./dom.js";
import { applyStatic, labelOf, lang, pick, setLang, t } from "./i18n.js";
import { drawTrend, trendTable } from "./trend.js";

const STAGES = ["open", "in_progress", "resolved", "verified"];
const PERIOD = /^\d{4}-(W\d{2}|\d{2})$/;
const MONTHS_SHOWN = 6;
const state = {
  region: null,
  period: null,
  timezone: "Asia/Shanghai",
  regions: new Map(),
  weeks: [],
};

function percent(value) {
  return `${(Math.round(value * 1000) / 10).toFixed(1)}%`;
}

function when(iso) {
  if (!iso) return t("never");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(lang(), {
    timeZone: state.timezone,
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

function bar(value) {
  return h("progress", { max: 1, value, title: percent(value), className: value < 0.9 ? "low" : "" });
}

function report(error) {
  if (error?.status === 401) {
    showSignIn();
    return;
  }
  toast(t("error", { message: error?.message ?? String(error) }), "error");
}

// ---- sign-in ----------------------------------------------------------------------------

function showSignIn() {
  forget();
  $("#main").hidden = true;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  $("#manage-link").hidden = true;
  $("#signin").hidden = false;
  $("#signin [name=username]").focus();
}

async function start() {
  const answer = session();
  if (!answer?.token) return showSignIn();
  const user = answer.user;
  $("#signin").hidden = true;
  $("#main").hidden = false;
  $("#signout").hidden = false;
  $("#who").textContent = user.name || user.username;
  $("#devices").hidden = user.role !== "admin";
  $("#manage-link").hidden = user.role !== "admin";
  $("#app-link").hidden = false;
  state.regions = new Map();
  const wanted = fromAddress();
  state.region = wanted.region ?? user.region_ids[0] ?? null;
  state.period = wanted.period;
  for (const id of user.region_ids) state.regions.set(id, { id, name: id, level: "", depth: 0 });
  await opening(load);
}

// ---- the period and the address bar ------------------------------------------------------

/** Region and period from the address (/admin?region=…&period=2026-W48): a link in a notice
 * opens the page it names. */
function fromAddress() {
  const params = new URLSearchParams(location.search);
  const period = params.get("period");
  return { region: params.get("region"), period: PERIOD.test(period ?? "") ? period : null };
}

function toAddress() {
  const params = new URLSearchParams(location.search);
  params.set("region", state.region);
  params.set("period", state.period);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

/** Today in the server's time zone, as YYYY-MM-DD. */
function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: state.timezone }).format(new Date());
}

/** The period the page opens on: this week, but last week on a Monday, when the new week has
 * hardly begun and the supervisor reads the week that ended. The trend's last week is the
 * server's current one. */
function openingPeriod(weeks) {
  const current = weeks.at(-1);
  if (!current) return null;
  return today() === current.start && weeks.length > 1 ? weeks.at(-2).period : current.period;
}

function weekOption(week) {
  const [year, number] = week.period.split("-W");
  const label = t("period.week", {
    year,
    week: Number(number),
    start: week.start.slice(5),
    end: week.end.slice(5),
  });
  return h("option", { value: week.period, selected: week.period === state.period }, label);
}

function monthOption(period) {
  const [year, month] = period.split("-");
  const label = t("period.month", { year, month: Number(month) });
  return h("option", { value: period, selected: period === state.period }, label);
}

/** The picker: the trend's weeks and the last months, newest first, and the period of the
 * address if it is older than those. */
function renderPeriods() {
  const weeks = [...state.weeks].reverse();
  const [year, month] = today().split("-").map(Number);
  const months = [];
  for (let back = 0; back < MONTHS_SHOWN; back++) {
    const date = new Date(Date.UTC(year, month - 1 - back, 1));
    months.push(`${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}`);
  }
  const known = new Set([...weeks.map((week) => week.period), ...months]);
  const older = state.period && !known.has(state.period);
  const other = older ? h("option", { value: state.period, selected: true }, state.period) : null;
  const week = state.period?.includes("W");
  fill(
    $("#period-pick"),
    h("optgroup", { label: t("period.weeks") }, weeks.map(weekOption), week && other),
    h("optgroup", { label: t("period.months") }, months.map(monthOption), !week && other),
  );
}

// ---- loading ----------------------------------------------------------------------------

async function load() {
  if (!state.region) return;
  document.body.classList.add("loading");
  try {
    const region = state.region;
    const trend = await call(`/reports/trend?${query({ region_id: region, weeks: 12 })}`);
    // the last week of the trend is the server's current week (its clock, its time zone)
    state.weeks = trend.weeks;
    state.period = state.period ?? openingPeriod(trend.weeks);
    renderPeriods();
    toAddress();
    const coverage = await call(
      `/reports/coverage?${query({ period: state.period, region_id: region })}`,
    );
    renderCoverage(coverage);
    renderTrend(trend);
    const user = session().user;
    // a province's page is its counties' weekly snapshots: no household lists of 100 counties
    const province = coverage.region.level === "province";
    for (const id of ["overdue", "bulletins", "problems"]) $(`#${id}`).hidden = province;
    const regional = province
      ? []
      : [
          call(`/reports/overdue?${query({ region_id: region })}`).then(renderOverdue),
          call(`/reports/bulletins?${query({ region_id: region })}`).then(renderBulletins),
          call(`/problems?${query({ region_id: region, status: "open,in_progress" })}`).then(
            renderProblems,
          ),
        ];
    const tasks = [
      ...regional,
      call("/conflicts").then(renderConflicts),
      call("/admin/jobs").then(renderJobs),
      call("/admin/notices/deliveries?limit=20").then(renderDeliveries),
    ];
    if (user.role === "admin") tasks.push(call("/admin/devices").then(renderDevices));
    const results = await Promise.allSettled(tasks);
    for (const result of results) if (result.status === "rejected") report(result.reason);
  } catch (error) {
    report(error);
    fallBack(error);
  } finally {
    document.body.classList.remove("loading");
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
  }
}

/** An address naming a region this user may not read (403) or one that is gone (404): show
 * their own region instead (the reason was shown). */
function fallBack(error) {
  const own = session()?.user?.region_ids ?? [];
  if (![403, 404].includes(error?.status) || !own.length || own.includes(state.region)) return;
  state.region = own[0];
  setTimeout(load);
}

// ---- coverage ---------------------------------------------------------------------------

function renderRegions(coverage) {
  const current = coverage.region;
  const known = state.regions.get(current.id);
  const depth = known?.depth ?? 0;
  state.regions.set(current.id, { ...current, depth, parent: known?.parent });
  // children go right after their parent, one level deeper
  const entries = [...state.regions.values()].filter((region) => region.parent !== current.id);
  const at = entries.findIndex((region) => region.id === current.id);
  const children = coverage.children.map((child) => ({
    id: child.region_id,
    name: child.name,
    level: child.level,
    depth: depth + 1,
    parent: current.id,
  }));
  entries.splice(at + 1, 0, ...children);
  state.regions = new Map(entries.map((region) => [region.id, region]));
  fill(
    $("#region"),
    entries.map((region) =>
      h(
        "option",
        { value: region.id, selected: region.id === current.id },
        `${"\u3000".repeat(region.depth)}${region.name}`,
      ),
    ),
  );
}

function renderCoverage(coverage) {
  state.timezone = coverage.timezone || state.timezone;
  renderRegions(coverage);
  const { summary } = coverage;
  $("#t-due").textContent = summary.due;
  $("#t-visited").textContent = summary.visited;
  $("#t-coverage").textContent = percent(summary.coverage);
  // a province's overdue figure is its counties' at their snapshots (renderOverdue otherwise)
  if (coverage.source === "snapshots") $("#t-overdue").textContent = summary.overdue;
  const missing = coverage.missing ?? [];
  $("#missing").hidden = !missing.length;
  $("#missing").textContent = missing.length
    ? t("missing", { n: missing.length, names: missing.map((c) => c.name).join("、") })
    : "";
  $("#period").textContent = t("period", {
    period: coverage.period,
    start: coverage.start,
    end: coverage.end,
  });
  // "W48：3 次走访在通报后补录": visits that changed a week after its bulletin went out
  const late = coverage.late?.visits ?? 0;
  const lateKey = coverage.late?.basis === "bulletin" ? "late" : "lateAfterEnd";
  $("#late").hidden = !late;
  $("#late").textContent = late
    ? t(lateKey, {
        period: coverage.period.replace(/^\d{4}-(?=W)/, ""),
        n: late,
        households: coverage.late.households,
      })
    : "";
  fill(
    $("#children tbody"),
    coverage.children.map((child) =>
      h(
        "tr",
        {},
        h("td", {}, childLink(child, coverage.period)),
        h("td", { className: "num" }, child.due ?? "—"),
        h("td", { className: "num" }, child.visited ?? "—"),
        child.missing
          ? h("td", { className: "cov muted" }, t("missing.county"))
          : h(
              "td",
              { className: "cov" },
              bar(child.coverage),
              h("span", {}, percent(child.coverage)),
            ),
      ),
    ),
  );
}

/** A township drills down in place; a village opens its visits of the period (visits.js). */
function childLink(child, period) {
  if (child.level === "village") {
    const href = `/admin/visits?${query({ region_id: child.region_id, period })}`;
    return h("a", { href }, child.name);
  }
  const drill = (event) => {
    event.preventDefault();
    state.region = child.region_id;
    load();
  };
  return h("a", { href: "#", onclick: drill }, child.name);
}

/** A household's name leads to its page: visits, problems, measures and people over time. */
function householdLink(row) {
  const href = `/admin/visits?${query({ household: row.household_id })}`;
  return h("a", { href }, h("b", {}, row.head_name));
}

function renderTrend(trend) {
  drawTrend($("#trend-canvas"), trend.weeks);
  trendTable($("#trend-table"), trend.weeks);
  $("#trend-canvas").dataset.weeks = trend.weeks.length;
}

// ---- overdue households -----------------------------------------------------------------

function renderOverdue(answer) {
  const rows = answer.households;
  // the tile and the list are one figure: households past due today (docs/reports.md)
  $("#t-overdue").textContent = rows.length;
  $("#overdue-count").textContent = rows.length;
  const body = $("#overdue tbody");
  if (!rows.length) {
    fill(body, h("tr", {}, h("td", { colSpan: 5, className: "muted" }, t("overdue.none"))));
    return;
  }
  fill(
    body,
    rows.map((row) =>
      h(
        "tr",
        { className: row.never_visited ? "never" : "" },
        h("td", {}, householdLink(row), h("small", {}, row.code)),
        h("td", {}, row.village?.name ?? ""),
        h(
          "td",
          { className: "num overdue" },
          row.never_visited ? t("overdue.never") : t("overdue.days", { n: row.days_overdue }),
        ),
        h("td", {}, row.cadres.map((cadre) => cadre.name).join("、")),
        h(
          "td",
          {},
          row.last_visit
            ? `${when(row.last_visit.visited_at)} ${row.last_visit.visitor_name ?? ""}`
            : "—",
        ),
      ),
    ),
  );
}

// ---- bulletins kept by the Monday job -----------------------------------------------------

function renderBulletins(answer) {
  const list = $("#bulletins ul");
  if (!answer.bulletins.length) {
    fill(list, h("li", { className: "muted" }, t("bulletins.none")));
    return;
  }
  fill(
    list,
    answer.bulletins.map((bulletin) => {
      const path = `/reports/bulletins/${bulletin.period}.xlsx?${query({ region_id: answer.region_id })}`;
      const action = bulletin.file
        ? h(
            "a",
            {
              href: "#",
              className: "button",
              onclick: (event) => {
                event.preventDefault();
                fetchFile(path, `bulletin-${bulletin.period}.xlsx`);
              },
            },
            t("bulletins.download"),
          )
        : h("span", { className: "muted" }, t("bulletins.missing"));
      return h(
        "li",
        { className: "bulletin", dataset: { period: bulletin.period } },
        h("b", {}, bulletin.title),
        " ",
        h("small", { className: "muted" }, t("bulletins.taken", { time: when(bulletin.taken_at) })),
        " ",
        action,
      );
    }),
  );
}

async function fetchFile(path, name) {
  toast(t("downloading"));
  try {
    await download(path, name);
  } catch (error) {
    report(error);
  }
}

// ---- problems ---------------------------------------------------------------------------

function renderProblems(answer) {
  const list = $("#problems ul");
  $("#problems-count").textContent = answer.problems.length;
  if (!answer.problems.length) {
    fill(list, h("li", { className: "muted" }, t("problems.none")));
    return;
  }
  fill(list, answer.problems.map(problemItem));
}

function problemItem(problem) {
  // nothing chosen until the supervisor chooses: no stage is the obvious next one
  const select = h(
    "select",
    { name: "status", ariaLabel: t("col.status"), required: true },
    h("option", { value: "", selected: true, disabled: true }, t("problems.pick")),
    STAGES.filter((stage) => stage !== problem.status).map((stage) =>
      h("option", { value: stage }, t(`status.${stage}`)),
    ),
  );
  const note = h("input", { name: "note", placeholder: t("problems.note") });
  const button = h("button", { type: "submit" }, t("problems.change"));
  const form = h(
    "form",
    {
      className: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        if (!select.value) return;
        button.disabled = true;
        try {
          const body = { status: select.value };
          if (note.value.trim()) body.note = note.value.trim();
          const changed = await call(`/problems/${problem.id}/status`, { method: "POST", body });
          toast(t("problems.changed", { status: t(`status.${changed.status}`) }));
          await load();
        } catch (error) {
          button.disabled = false;
          report(error);
        }
      },
    },
    select,
    note,
    button,
  );
  return h(
    "li",
    { className: `problem${problem.overdue ? " late" : ""}`, dataset: { id: problem.id } },
    h(
      "div",
      { className: "head" },
      h("span", { className: `pill ${problem.status}` }, t(`status.${problem.status}`)),
      h("b", {}, problem.household?.head_name ?? ""),
      h(
        "span",
        { className: "muted" },
        `${problem.village?.name ?? ""} · ${labelOf("category", problem.category)}`,
      ),
    ),
    h("p", {}, problem.description ?? ""),
    h(
      "p",
      { className: "muted" },
      problem.assignee ? `${problem.assignee.name} · ` : "",
      problem.due_date ? t("problems.due", { date: problem.due_date }) : "",
      problem.overdue ? h("span", { className: "overdue" }, ` ${t("problems.overdue")}`) : "",
    ),
    form,
  );
}

// ---- conflicts --------------------------------------------------------------------------

function shown(value, conflict = {}) {
  if (value === null || value === undefined || value === "") return t("empty");
  if (conflict.record_type === "problem" && conflict.field === "status") return labelOf("status", value);
  if (conflict.field === "category" && conflict.record_type === "problem") return labelOf("category", value);
  if (Array.isArray(value)) return value.join("、");
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Who wrote one side of a conflict, from which device, when (the server's local time). */
function writer(side) {
  return t("conflicts.by", {
    user: side.user_name ?? t("conflicts.unknown"),
    device: side.device_label || side.by || "",
    at: side.at ? side.at.slice(0, 16).replace("T", " ") : "",
  });
}

/** The household (and person) a conflict is about, and the field by its label. */
function conflictHeading(conflict) {
  const whose = [conflict.household_name, conflict.person_name].filter(Boolean).join(" · ");
  const field = lang() === "en" ? conflict.field : (conflict.field_label ?? conflict.field);
  return whose ? `${whose} · ${field}` : `${conflict.record_type} · ${field}`;
}

function renderConflicts(answer) {
  const open = answer.conflicts.filter((conflict) => conflict.status === "open");
  $("#conflicts-count").textContent = open.length;
  const list = $("#conflicts ul");
  if (!open.length) {
    fill(list, h("li", { className: "muted" }, t("conflicts.none")));
    return;
  }
  fill(list, open.map(conflictItem));
}

function conflictItem(conflict) {
  const choices = [
    { label: t("conflicts.kept"), ...conflict.kept },
    ...(conflict.lost ?? []).map((lost) => ({ label: t("conflicts.lost"), ...lost })),
  ];
  // by position: phone and ID numbers are shown masked, the server keeps the whole value
  const resolve = async (choice, button) => {
    button.disabled = true;
    try {
      await call(`/conflicts/${conflict.id}/resolve`, { method: "POST", body: { choice } });
      toast(t("conflicts.resolved"));
      await load();
    } catch (error) {
      button.disabled = false;
      report(error);
    }
  };
  return h(
    "li",
    { className: "conflict", dataset: { id: conflict.id } },
    h(
      "div",
      { className: "head" },
      h("b", {}, conflictHeading(conflict)),
    ),
    h(
      "div",
      { className: "choices" },
      choices.map((choice, index) => {
        const button = h("button", { type: "button" }, t("conflicts.choose"));
        button.addEventListener("click", () => resolve(index, button));
        return h(
          "div",
          { className: "choice" },
          h("small", { className: "muted" }, choice.label),
          h("div", { className: "value" }, shown(choice.value, conflict)),
          h("small", { className: "muted writer" }, writer(choice)),
          button,
        );
      }),
    ),
  );
}

// ---- devices and jobs -------------------------------------------------------------------

function renderDevices(answer) {
  fill(
    $("#devices tbody"),
    answer.devices.map((device) => {
      const button = h(
        "button",
        { type: "button", disabled: device.revoked, className: "danger" },
        device.revoked ? t("devices.revoked") : t("devices.revoke"),
      );
      button.addEventListener("click", async () => {
        if (!window.confirm(t("devices.confirm", { label: device.label }))) return;
        try {
          await call(`/admin/devices/${device.id}/revoke`, { method: "POST", body: {} });
          await load();
        } catch (error) {
          report(error);
        }
      });
      return h(
        "tr",
        { className: device.revoked ? "revoked" : "" },
        h("td", {}, device.label || "—"),
        h("td", {}, device.name || device.username),
        h("td", {}, when(device.last_sync_at)),
        h("td", {}, button),
      );
    }),
  );
}

function renderJobs(answer) {
  fill(
    $("#jobs tbody"),
    answer.jobs.map((job) =>
      h(
        "tr",
        {},
        h("td", {}, h("b", {}, pick(job.description) || job.name), h("small", {}, job.name)),
        h(
          "td",
          { className: `job ${job.last_status ?? "never"}`, title: job.last_message ?? "" },
          t(`job.${job.last_status ?? "never"}`),
        ),
        h("td", {}, when(job.last_finished_at ?? job.last_started_at)),
        h("td", {}, when(job.next_run_at)),
      ),
    ),
  );
}

/** Every notice the jobs queued: sent, waiting for a retry (and when), or given up. */
function renderDeliveries(answer) {
  const channels = { wecom: "n.wecom", dingtalk: "n.dingtalk", email: "n.email" };
  fill(
    $("#deliveries tbody"),
    answer.deliveries.map((delivery) =>
      h(
        "tr",
        {},
        h("td", {}, when(delivery.created_at)),
        h("td", {}, state.regions.get(delivery.region_id)?.name ?? delivery.title.split(" ")[0]),
        h("td", {}, t(channels[delivery.channel] ?? delivery.channel)),
        h("td", { title: delivery.title }, delivery.job),
        h("td", { className: `notice ${delivery.status}` }, t(`n.status.${delivery.status}`)),
        h("td", { className: "num" }, delivery.attempts),
        h(
          "td",
          {},
          delivery.last_error ?? "",
          delivery.next_attempt_at && delivery.status === "retrying"
            ? h("small", {}, t("n.retry", { when: when(delivery.next_attempt_at) }))
            : null,
        ),
      ),
    ),
  );
}

// ---- wiring -----------------------------------------------------------------------------

function wire() {
  applyStatic();
  $("#signin").addEventListener("submit", signInHandler(start));
  const signedOut = () => {
    history.replaceState(null, "", location.pathname); // the next user starts on their own region
    showSignIn();
  };
  $("#signout").addEventListener("click", signOutHandler(signedOut));
  $("#lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    if (session()?.token) load();
  });
  $("#region").addEventListener("change", (event) => {
    state.region = event.currentTarget.value;
    load();
  });
  $("#period-pick").addEventListener("change", (event) => {
    state.period = event.currentTarget.value;
    load();
  });
  $("#bulletin").addEventListener("click", (event) => {
    event.preventDefault();
    if (!state.period || !state.region) return;
    const path = `/reports/coverage.xlsx?${query({ period: state.period, region_id: state.region })}`;
    fetchFile(path, `bulletin-${state.period}.xlsx`);
  });
  start();
}

wire();
