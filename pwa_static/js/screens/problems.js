/**
 * 问题清单: the problems of my households — mine first, with status and due date — one
 * problem's status steps (open → in_progress → resolved; verified is a supervisor's), and
 * registering a new one, usually from a visit's failed check.
 *
 * @module screens/problems
 */

import { t } from "../i18n.js";
import * as outbox from "../outbox.js";
import { householdDetail, problemDetail, problemList } from "../queries.js";
import { isoDate } from "../time.js";
import { button, field, h, toast } from "../ui.js";
import { conflictNotes } from "./conflicts.js";
import { problemLink } from "./household.js";

const CATEGORIES = ["food", "clothing", "education", "medical", "housing", "water", "income", "other"];
const NEXT = { open: "in_progress", in_progress: "resolved" };
const OPEN = new Set(["open", "in_progress"]);
const DUE_IN_DAYS = 7;

const view = { mine: true, closed: false };

export async function renderList(ctx) {
  ctx.title(t("problems.title"));
  const all = await problemList(ctx.db);
  const me = ctx.session.user.id;
  const list = h("ul", { class: "list" });
  const refresh = () => {
    const shown = all
      .filter((p) => (!view.mine || p.assignee_id === me) && (view.closed || OPEN.has(p.status)))
      .sort((a, b) => (a.due_date ?? "9999").localeCompare(b.due_date ?? "9999"));
    list.replaceChildren(
      ...shown.map((p) => h("li", {}, problemLink(p, p.household))),
      ...(shown.length ? [] : [h("li", { class: "empty" }, t("problems.none"))]),
    );
  };
  const toggle = (name, text) =>
    h(
      "label",
      { class: "check inline" },
      h("input", {
        type: "checkbox",
        checked: view[name],
        on: {
          change: (e) => {
            view[name] = e.target.checked;
            refresh();
          },
        },
      }),
      text,
    );
  refresh();
  return h(
    "div",
    { class: "screen problems" },
    h(
      "div",
      { class: "filters" },
      toggle("mine", t("problems.mine")),
      toggle("closed", t("problems.showClosed")),
    ),
    h("section", { class: "card" }, list),
  );
}

export async function renderDetail(ctx, [id]) {
  const detail = await problemDetail(ctx.db, id);
  ctx.title(t("problem.title"), "#/problems");
  if (!detail) return h("div", { class: "screen" }, h("p", { class: "empty" }, t("problem.missing")));
  const { problem, household, people } = detail;
  const person = people.find((p) => p.id === problem.person_id);
  // a deadline is the supervisor's (督办): a cadre sees it, the server refuses their change
  const supervises = ctx.session.user.role !== "cadre";
  const due = h("input", { type: "date", value: problem.due_date ?? "", disabled: !supervises });
  const resolution = h("textarea", { rows: 3, maxlength: 2000, value: problem.resolution ?? "" });
  const save = async (fields) => {
    const op = await outbox.update(ctx.db, "problem", id, fields);
    toast(op ? t("saved.pending") : t("saved.nothing"));
    ctx.rerender();
  };
  const next = NEXT[problem.status] ?? (problem.status === "resolved" && supervises ? "verified" : null);
  return h(
    "div",
    { class: "screen problem" },
    h(
      "section",
      { class: "card" },
      h(
        "p",
        {},
        h("b", {}, t(`category.${problem.category}`)),
        " · ",
        h("span", { class: `status ${problem.status}` }, t(`status.${problem.status}`)),
      ),
      household &&
        h(
          "p",
          {},
          h("a", { class: "tap", href: `#/h/${household.id}` }, household.head_name),
          person && ` · ${person.name}`,
        ),
      h("p", {}, problem.description),
      problem.assignee_id &&
        h(
          "p",
          { class: "muted assignee" },
          t("problem.assignee", {
            name:
              problem.assignee_id === ctx.session.user.id
                ? t("visit.byMe")
                : (detail.assignee ?? t("visit.byOther")),
          }),
        ),
    ),
    conflictNotes(detail.conflicts, ctx.session),
    h(
      "section",
      { class: "card" },
      field(t("problem.due"), due),
      field(t("problem.resolution"), resolution),
      h(
        "div",
        { class: "actions" },
        button(t("action.save"), () =>
          save({ due_date: due.value || null, resolution: resolution.value.trim() || null }),
        ),
        next &&
          button(
            t(`problem.to.${next}`),
            () =>
              save({
                status: next,
                due_date: due.value || null,
                resolution: resolution.value.trim() || null,
              }),
            "primary",
          ),
      ),
      problem.status === "resolved" &&
        !supervises &&
        h("p", { class: "hint" }, t("problem.awaitsVerification")),
    ),
  );
}

/** A new problem; `?hh&visit&category&description` prefill it (from 发现问题). */
export async function renderNew(ctx, _params, query) {
  const householdId = query.get("hh");
  const detail = householdId && (await householdDetail(ctx.db, householdId));
  ctx.title(t("problem.newTitle"), householdId ? `#/h/${householdId}` : "#/problems");
  if (!detail) return h("div", { class: "screen" }, h("p", { class: "empty" }, t("household.missing")));
  const category = h(
    "select",
    {},
    CATEGORIES.map((c) =>
      h("option", { value: c, selected: c === (query.get("category") ?? "other") }, t(`category.${c}`)),
    ),
  );
  const description = h("textarea", { rows: 4, maxlength: 2000, value: query.get("description") ?? "" });
  const person = h(
    "select",
    {},
    h("option", { value: "" }, t("problem.wholeHousehold")),
    detail.people.map((p) => h("option", { value: p.id }, p.name)),
  );
  const due = h("input", { type: "date", value: isoDate(Date.now(), DUE_IN_DAYS) });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const save = async (event) => {
    event.preventDefault();
    if (!description.value.trim()) {
      error.textContent = t("problem.needsDescription");
      error.hidden = false;
      description.focus();
      return;
    }
    const visitId = query.get("visit");
    await outbox.create(ctx.db, "problem", {
      household_id: householdId,
      ...(person.value && { person_id: person.value }),
      ...(visitId && { visit_id: visitId }),
      category: category.value,
      description: description.value.trim(),
      status: "open",
      assignee_id: ctx.session.user.id,
      ...(due.value && { due_date: due.value }),
    });
    toast(t("saved.pending"));
    ctx.navigate(visitId ? `#/found/${visitId}` : `#/h/${householdId}`);
  };
  return h(
    "form",
    { class: "screen form", on: { submit: save } },
    h("p", { class: "card" }, t("problem.for", { name: detail.household.head_name })),
    h(
      "section",
      { class: "card" },
      field(t("problem.category"), category),
      field(t("problem.description"), description),
      error,
      field(t("problem.person"), person),
      field(t("problem.due"), due),
    ),
    h(
      "div",
      { class: "sticky-action" },
      h("button", { type: "submit", class: "primary big" }, t("action.save")),
    ),
  );
}
