/**
 * One household: how to reach it, its people (flags, ages), its last visits (correct, void),
 * open problems, help-plan measures, and any open conflict on its records with both values.
 * Also the household's edit form and the flags editor of a person.
 *
 * @module screens/household
 */

import { FLAGS, t } from "../i18n.js";
import * as outbox from "../outbox.js";
import { visitPhotos } from "../photos.js";
import { get, householdDetail } from "../queries.js";
import { visitTime } from "../records.js";
import { isoDate, shanghaiParts } from "../time.js";
import { ask, button, field, formatTime, h, section, toast } from "../ui.js";
import { conflictNotes } from "./conflicts.js";

const SHOWN_VISITS = 5;

export async function render(ctx, [id]) {
  const detail = await householdDetail(ctx.db, id);
  if (!detail) return notFound(ctx);
  const { household } = detail;
  ctx.title(household.head_name, "#/");
  const me = ctx.session.user.id;
  return h(
    "div",
    { class: "screen household" },
    h(
      "section",
      { class: "card" },
      h(
        "p",
        { class: "muted" },
        [household.code, detail.village, household.address, household.category].filter(Boolean).join(" · "),
      ),
      household.phone &&
        h(
          "a",
          { class: "button call", href: `tel:${household.phone}` },
          t("household.call", { phone: household.phone }),
        ),
      household.notes && h("p", {}, household.notes),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: `#/h/${id}/edit` }, t("household.edit")),
      ),
    ),
    conflictNotes(detail.conflicts, ctx.session),
    people(ctx, detail),
    visits(ctx, detail, me),
    problems(detail, id),
    measures(detail),
    h(
      "div",
      { class: "sticky-action" },
      h("a", { class: "button primary big", href: `#/visit/${id}` }, t("visit.record")),
    ),
  );
}

function notFound(ctx) {
  ctx.title(t("household.title"), "#/");
  return h("div", { class: "screen" }, h("p", { class: "empty" }, t("household.missing")));
}

function people(ctx, { people: list }) {
  const year = shanghaiParts(Date.now()).year;
  return section(
    t("household.people", { n: list.length }),
    list.length === 0 && h("p", { class: "muted" }, t("household.noPeople")),
    h(
      "ul",
      { class: "list" },
      list.map((person) =>
        h(
          "li",
          { class: "person" },
          h(
            "div",
            {},
            h("b", {}, person.name),
            " ",
            h(
              "span",
              { class: "muted" },
              [
                person.relation,
                person.gender,
                person.birth_year && t("household.age", { n: year - person.birth_year }),
              ]
                .filter(Boolean)
                .join(" · "),
            ),
          ),
          h(
            "div",
            { class: "flags" },
            (person.flags ?? []).map((f) => h("span", { class: "flag" }, t(`flag.${f}`))),
          ),
          button(t("household.editFlags"), () => editFlags(ctx, person), "small"),
        ),
      ),
    ),
  );
}

async function editFlags(ctx, person) {
  const boxes = FLAGS.map((flag) =>
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", value: flag, checked: (person.flags ?? []).includes(flag) }),
      t(`flag.${flag}`),
    ),
  );
  const choice = await ask(
    t("household.flagsOf", { name: person.name }),
    h("div", { class: "checks" }, boxes),
    [
      { name: "cancel", text: t("action.cancel") },
      { name: "save", text: t("action.save"), primary: true },
    ],
  );
  if (choice !== "save") return;
  const flags = boxes
    .map((b) => b.firstChild)
    .filter((input) => input.checked)
    .map((input) => input.value)
    .sort();
  if (await outbox.update(ctx.db, "person", person.id, { flags })) toast(t("saved.pending"));
  ctx.rerender();
}

function visits(ctx, { visits: list, corrected, users }, me) {
  const shown = list.slice(0, SHOWN_VISITS);
  return section(
    t("household.visits"),
    list.length === 0 && h("p", { class: "muted" }, t("household.noVisits")),
    h(
      "ul",
      { class: "list" },
      shown.map((visit) => {
        const voided = visit.voided;
        const status = voided
          ? t("visit.voided", { reason: visit.void_reason ?? "" })
          : corrected.has(visit.id)
            ? t("visit.corrected")
            : "";
        const mine = visit.visitor_id === me || visit.visitor_id === undefined;
        return h(
          "li",
          { class: voided ? "visit voided" : "visit" },
          h(
            "div",
            {},
            h("b", {}, formatTime(visitTime(visit))),
            " · ",
            t(`mode.${visit.mode}`),
            " · ",
            mine ? t("visit.byMe") : (users.get(visit.visitor_id) ?? t("visit.byOther")),
            visit.corrects && h("span", { class: "tag" }, t("visit.correction")),
          ),
          status && h("p", { class: "muted" }, status),
          photoSlot(ctx, visit),
          !voided &&
            !corrected.has(visit.id) &&
            h(
              "div",
              { class: "actions" },
              h(
                "a",
                { class: "button small", href: `#/visit/${visit.household_id}?corrects=${visit.id}` },
                t("visit.correct"),
              ),
              button(t("visit.void"), () => voidVisit(ctx, visit), "small danger"),
            ),
        );
      }),
    ),
  );
}

/** The visit's photos this phone holds, and 照片待上传 while one has not reached the server. */
function photoSlot(ctx, visit) {
  const slot = h("div", { class: "visit-photos" });
  visitPhotos(ctx.db, visit.answers).then((shown) => shown && slot.replaceChildren(shown));
  return slot;
}

async function voidVisit(ctx, visit) {
  const reason = h("textarea", { rows: 2, required: true, maxlength: 500 });
  const choice = await ask(t("visit.voidTitle"), field(t("visit.voidReason"), reason), [
    { name: "cancel", text: t("action.cancel") },
    { name: "void", text: t("visit.void"), primary: true },
  ]);
  if (choice !== "void") return;
  if (!reason.value.trim()) {
    toast(t("visit.voidNeedsReason"));
    return;
  }
  await outbox.voidVisit(ctx.db, visit.id, reason.value.trim());
  toast(t("saved.pending"));
  ctx.rerender();
}

function problems({ problems: list }, householdId) {
  const open = list.filter((p) => p.status === "open" || p.status === "in_progress");
  return section(
    t("household.problems", { n: open.length }),
    open.length === 0 && h("p", { class: "muted" }, t("household.noProblems")),
    h(
      "ul",
      { class: "list" },
      open.map((p) => h("li", {}, problemLink(p))),
    ),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button small", href: `#/problem/new?hh=${householdId}` }, t("household.newProblem")),
    ),
  );
}

/** A problem as a tappable line: category, status, due date, description. */
export function problemLink(problem, household = "") {
  const closed = problem.status === "resolved" || problem.status === "verified";
  const late = problem.due_date && problem.due_date < isoDate(Date.now()) && !closed;
  return h(
    "a",
    { class: "row", href: `#/problem/${problem.id}` },
    h(
      "div",
      { class: "row-main" },
      h("b", {}, [household, t(`category.${problem.category}`)].filter(Boolean).join(" · ")),
      h("span", { class: `status ${problem.status}` }, t(`status.${problem.status}`)),
    ),
    h("div", { class: "row-sub" }, problem.description),
    problem.due_date &&
      h(
        "div",
        { class: late ? "row-when late" : "row-when" },
        t("problem.dueOn", { date: problem.due_date }),
      ),
  );
}

function measures({ measures: list }) {
  return section(
    t("household.measures"),
    list.length === 0 && h("p", { class: "muted" }, t("household.noMeasures")),
    h(
      "ul",
      { class: "list" },
      list.map((m) =>
        h(
          "li",
          {},
          h("b", {}, t(`measure.${m.category}`)),
          " · ",
          t(`measureStatus.${m.status}`),
          m.due_date && h("span", { class: "muted" }, " · ", t("problem.dueOn", { date: m.due_date })),
          h("p", {}, m.description),
        ),
      ),
    ),
  );
}

const EDITABLE = ["phone", "address", "notes"];

/** Edit the household's contact fields; only what changed is sent (CONTRACT §5 update). */
export async function renderEdit(ctx, [id]) {
  const household = await get(ctx.db, "household", id);
  if (!household) return notFound(ctx);
  ctx.title(t("household.editTitle", { name: household.head_name }), `#/h/${id}`);
  const inputs = Object.fromEntries(
    EDITABLE.map((name) => [
      name,
      name === "notes"
        ? h("textarea", { rows: 3, maxlength: 2000, value: household.notes ?? "" })
        : h("input", {
            type: name === "phone" ? "tel" : "text",
            maxlength: name === "phone" ? 40 : 200,
            value: household[name] ?? "",
          }),
    ]),
  );
  const save = async (event) => {
    event.preventDefault();
    const fields = Object.fromEntries(EDITABLE.map((name) => [name, inputs[name].value.trim() || null]));
    const op = await outbox.update(ctx.db, "household", id, fields);
    toast(op ? t("saved.pending") : t("saved.nothing"));
    ctx.navigate(`#/h/${id}`);
  };
  return h(
    "form",
    { class: "screen form", on: { submit: save } },
    EDITABLE.map((name) => field(t(`household.field.${name}`), inputs[name])),
    h(
      "div",
      { class: "sticky-action" },
      h("button", { type: "submit", class: "primary big" }, t("action.save")),
    ),
  );
}
