/**
 * 本周走访: my households this week — overdue, due, done — with counts, search and filters.
 *
 * The list is built once per visit to the screen; searching and filtering only hide rows,
 * so typing stays smooth with hundreds of households on a slow phone.
 *
 * @module screens/week
 */

import { FLAGS, t } from "../i18n.js";
import { weekOverview } from "../queries.js";
import { isoWeek } from "../time.js";
import { formatTime, h } from "../ui.js";

const GROUPS = ["overdue", "due", "done", "other"];

/** Kept across visits to the screen: coming back from a household keeps the filters. */
const filters = { text: "", village: "", category: "", flags: new Set() };

export async function render(ctx) {
  const now = Date.now();
  const households = await weekOverview(ctx.db, now);
  const { week } = isoWeek(now);
  ctx.title(t("week.title", { week }));
  if (households.length === 0) {
    return h("div", { class: "screen" }, h("p", { class: "empty" }, t("week.none")));
  }
  const rows = households.map((household) => ({ household, element: row(household) }));
  const groups = new Map(GROUPS.map((g) => [g, group(g)]));
  for (const { household, element } of rows) groups.get(household.state ?? "other").list.append(element);

  const refresh = () => {
    const counts = Object.fromEntries(GROUPS.map((g) => [g, 0]));
    for (const { household, element } of rows) {
      element.hidden = !matches(household);
      if (!element.hidden) counts[household.state ?? "other"] += 1;
    }
    for (const [name, g] of groups) {
      g.count.textContent = counts[name];
      g.element.hidden = counts[name] === 0;
    }
  };
  const screen = h(
    "div",
    { class: "screen week" },
    summary(households),
    controls(households, refresh),
    [...groups.values()].map((g) => g.element),
  );
  refresh();
  return screen;
}

function matches(household) {
  const text = filters.text.trim().toLowerCase();
  if (text) {
    const haystack = [household.head_name, household.code, ...household.names].join(" ").toLowerCase();
    if (!haystack.includes(text)) return false;
  }
  if (filters.village && household.village_id !== filters.village) return false;
  if (filters.category && household.category !== filters.category) return false;
  for (const flag of filters.flags) if (!household.flags.has(flag)) return false;
  return true;
}

/** The counts of all my households, whatever the filters. */
function summary(households) {
  const count = (state) => households.filter((x) => x.state === state).length;
  return h(
    "div",
    { class: "counts" },
    ["overdue", "due", "done"].map((state) =>
      h(
        "a",
        { class: `count ${state}`, href: `#/`, dataset: { group: state }, on: { click: jump } },
        h("b", {}, String(count(state))),
        h("span", {}, t(`state.${state}`)),
      ),
    ),
  );
}

function jump(event) {
  event.preventDefault();
  const target = document.getElementById(`group-${event.currentTarget.dataset.group}`);
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  target?.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
}

function controls(households, refresh) {
  const villages = new Map(households.map((x) => [x.village_id, x.village]));
  const categories = [...new Set(households.map((x) => x.category).filter(Boolean))].sort();
  let timer = null;
  const search = h("input", {
    type: "search",
    class: "search",
    placeholder: t("week.search"),
    "aria-label": t("week.search"),
    value: filters.text,
    on: {
      input: (event) => {
        filters.text = event.target.value;
        clearTimeout(timer);
        timer = setTimeout(refresh, 120);
      },
    },
  });
  const select = (name, label, options) =>
    h(
      "select",
      {
        "aria-label": label,
        on: {
          change: (e) => {
            filters[name] = e.target.value;
            refresh();
          },
        },
      },
      h("option", { value: "" }, label),
      options.map(([value, text]) => h("option", { value, selected: filters[name] === value }, text)),
    );
  const flagButtons = FLAGS.map((flag) =>
    h(
      "button",
      {
        type: "button",
        class: "chip",
        "aria-pressed": String(filters.flags.has(flag)),
        on: {
          click: (event) => {
            if (filters.flags.has(flag)) filters.flags.delete(flag);
            else filters.flags.add(flag);
            event.currentTarget.setAttribute("aria-pressed", String(filters.flags.has(flag)));
            refresh();
          },
        },
      },
      t(`flag.${flag}`),
    ),
  );
  return h(
    "div",
    { class: "filters" },
    search,
    h(
      "div",
      { class: "selects" },
      villages.size > 1 && select("village", t("week.allVillages"), [...villages]),
      categories.length > 1 &&
        select(
          "category",
          t("week.allCategories"),
          categories.map((c) => [c, c]),
        ),
    ),
    h("div", { class: "chips", role: "group", "aria-label": t("week.flags") }, flagButtons),
  );
}

function group(state) {
  const count = h("span", { class: "group-count" });
  const list = h("div", { class: "rows" });
  const element = h(
    "section",
    { class: `group ${state}`, id: `group-${state}` },
    h("h2", {}, t(`state.${state}`), " ", count),
    list,
  );
  return { element, list, count };
}

function row(household) {
  const flags = [...household.flags].map((f) => h("span", { class: "flag" }, t(`flag.${f}`)));
  let when = "";
  if (household.state === "done") when = t("week.visitedOn", { when: formatTime(household.last, false) });
  else if (household.last !== undefined) when = t("week.lastOn", { when: formatTime(household.last, false) });
  else if (household.state === "overdue")
    when = t(household.visit_policy === "monthly" ? "week.notTwoMonths" : "week.notTwoWeeks");
  return h(
    "a",
    { class: `row ${household.state ?? ""}`, href: `#/h/${household.id}` },
    h(
      "div",
      { class: "row-main" },
      h("b", {}, household.head_name),
      h("span", { class: "muted" }, household.code ?? ""),
    ),
    h(
      "div",
      { class: "row-sub" },
      h(
        "span",
        {},
        [household.village, household.category, household.visit_policy === "monthly" && t("policy.monthly")]
          .filter(Boolean)
          .join(" · "),
      ),
      flags,
    ),
    when && h("div", { class: "row-when" }, when),
  );
}
