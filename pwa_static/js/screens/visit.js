/**
 * Record a visit: mode, people seen, the form of the household's visit policy, notes, and a
 * location when the phone can give one. Everything is prefilled — the form's defaults, every
 * person seen, a home visit, the time now — so a routine "all fine" visit is one tap on 保存.
 * A visit made earlier gets its real time (走访时间), never in the future and at most the
 * server's backdate bound before (CONTRACT §10).
 *
 * `?corrects=<visit id>` records a correction: a new visit prefilled from the earlier one
 * (visits are never edited in place, CONTRACT §5).
 *
 * @module screens/visit
 */

import {
  calculate,
  defaults,
  formatNumber,
  isAnswered,
  isRelevant,
  messageFor,
  offeredChoices,
  problemsFound,
  validateAnswers,
  withCalculations,
} from "../forms.js";
import { known, lang, pick, t } from "../i18n.js";
import * as outbox from "../outbox.js";
import { keepPhotos, photoInput } from "../photos.js";
import { formVersion, get, householdDetail, latestForm } from "../queries.js";
import {
  barcodeInput, mediaInput, pagedCards, rankInput, relevantEntries, repeatInput, sendsEntries,
} from "./entries.js";
import { localIso } from "../time.js";
import { field, h, labelled, toast } from "../ui.js";

const MODES = ["home", "phone", "wechat", "video"];
const FORM_OF_POLICY = { weekly: "weekly_visit", monthly: "monthly_monitoring" };

export async function render(ctx, [householdId], query) {
  const detail = await householdDetail(ctx.db, householdId);
  if (!detail) {
    ctx.title(t("visit.title"), "#/");
    return h("div", { class: "screen" }, h("p", { class: "empty" }, t("household.missing")));
  }
  const { household, people } = detail;
  const original = detail.visits.find((v) => v.id === query.get("corrects")) ?? null;
  const form = await formFor(ctx.db, household, original);
  const backdate = await ctx.db.read(["meta"], (tx) => tx.get("meta", "backdate_days"));
  const when = whenRow(original, Number.isInteger(backdate) ? backdate : BACKDATE_DAYS);
  ctx.title(
    t(original ? "visit.correctTitle" : "visit.title", { name: household.head_name }),
    `#/h/${householdId}`,
  );

  const state = {
    mode: original?.mode ?? "home",
    seen: new Set(original ? (original.people_seen ?? []) : people.map((p) => p.id)),
    answers: original ? { ...(original.answers ?? {}) } : form ? defaults(form) : {},
    location: null,
    photos: new Map(), // sha256 → a photo taken on this screen, kept when the visit is saved
  };
  const notes = h("textarea", { rows: 3, maxlength: 2000, value: original?.notes ?? "" });
  const fields = form ? formFields(form, state, people) : { rows: [], cards: [] };
  const peopleIds = people.map((p) => p.id);

  const save = async (event) => {
    event.preventDefault();
    const visitedAt = when.value();
    if (!visitedAt) return;
    // today() and now() read the visit's own time, as the server does (forms/README.md).
    const context = { clock: visitedAt.slice(0, 19) };
    const answers = form
      ? withCalculations(form, relevantAnswers(form, state.answers, context), context)
      : {};
    const errors = form ? validateAnswers(form, answers, peopleIds, context) : {};
    if (showErrors(fields.rows, errors)) return;
    const visit = {
      household_id: householdId,
      visited_at: visitedAt,
      mode: state.mode,
      ...(form && { form_id: form.form_id, form_version: form.version, answers }),
      people_seen: [...state.seen],
      ...(state.location && { location: state.location }),
      ...(notes.value.trim() && { notes: notes.value.trim() }),
      ...(original && { corrects: original.id }),
    };
    await keepPhotos(ctx.db, state.photos, answers, householdId);
    const id = await outbox.create(ctx.db, "visit", visit);
    const found = form ? problemsFound(form, answers, context) : [];
    toast(t("saved.pending"));
    ctx.navigate(found.length ? `#/found/${id}` : original ? `#/h/${householdId}` : "#/");
  };

  return h(
    "form",
    { class: "screen form visit", novalidate: true, on: { submit: save } },
    when.element,
    modePicker(state),
    people.length > 0 && peoplePicker(people, state),
    form ? pagedCards(form, fields.cards) : h("p", { class: "card muted" }, t("visit.noForm")),
    h("section", { class: "card" }, field(t("visit.notes"), notes)),
    locationRow(state),
    h(
      "div",
      { class: "sticky-action" },
      h("button", { type: "submit", class: "primary big" }, t("action.save")),
    ),
  );
}

/** The bound until the first sync brings the server's (ZOUFANG_BACKDATE_DAYS). */
const BACKDATE_DAYS = 7;
const DAY = 86_400_000;

/** "2026-11-24T09:31", the phone's own clock and zone, as a datetime-local input holds it. */
function localMinute(date) {
  return localIso(date).slice(0, 16);
}

/**
 * 走访时间: prefilled, so a routine visit needs no tap — now, or for a correction the corrected
 * visit's time, sent unchanged so the visit keeps its week (CONTRACT §10). A time the cadre
 * picks may not be later than now nor more than `days` before, read on the phone's own clock
 * as the server reads it (sync/effective.py); the picker offers nothing outside that.
 */
function whenRow(original, days) {
  const now = new Date();
  const prefill = localMinute(original ? new Date(original.visited_at) : now);
  const input = h("input", {
    type: "datetime-local",
    name: "visited_at",
    value: prefill,
    min: localMinute(new Date(now.getTime() - days * DAY)),
    max: localMinute(now),
    required: true,
  });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  input.addEventListener("input", () => {
    error.hidden = true;
  });
  return {
    element: h("section", { class: "card when" }, field(t("visit.when"), input), error),
    /** The visited_at to send, or null once it has shown why the chosen time cannot be. */
    value() {
      if (input.value === prefill) return original?.visited_at ?? localIso();
      const chosen = new Date(input.value).getTime(); // datetime-local: the phone's zone
      let problem = null;
      if (Number.isNaN(chosen)) problem = "visit.whenMissing";
      else if (chosen > Date.now()) problem = "visit.whenFuture";
      else if (chosen < Date.now() - days * DAY - 60_000) problem = "visit.whenTooOld";
      error.textContent = problem ? t(problem, { n: days }) : "";
      error.hidden = !problem;
      if (problem) {
        input.focus();
        return null;
      }
      return localIso(new Date(chosen));
    },
  };
}

/** The household's form: the version the corrected visit used, else the policy's latest. */
async function formFor(db, household, original) {
  if (original?.form_id) {
    const used = await formVersion(db, original.form_id, original.form_version);
    if (used) return used;
  }
  return latestForm(db, FORM_OF_POLICY[household.visit_policy] ?? "weekly_visit");
}

/** The answers to send: relevant and answered fields only (CONTRACT §9, forms/README.md). */
function relevantAnswers(form, answers, context) {
  const kept = {};
  for (const f of form.fields) {
    if (f.type === "repeat") {
      if (sendsEntries(form, f, answers)) kept[f.id] = relevantEntries(form, f, answers);
    } else if (isAnswered(answers[f.id]) && isRelevant(form, f, answers, context)) kept[f.id] = answers[f.id];
  }
  return kept;
}

/** Every invalid field says which it is and what is wrong, its controls are marked invalid and
 *  described by that message, and focus goes to the first, so a screen reader reads it. */
function showErrors(rows, errors) {
  let first = null;
  for (const row of rows.flatMap((each) => [each, ...(each.entries?.() ?? [])])) {
    const codes = errors[row.id];
    const problem = codes?.map((code) => messageFor(row.field, code, lang())).join("；");
    row.error.textContent = codes ? t("visit.fieldError", { field: pick(row.field.label), problem }) : "";
    markInvalid(row.element, row.error, Boolean(codes));
    if (codes && !first) first = row.element;
  }
  first?.dispatchEvent(new Event("reveal", { bubbles: true })); // its page, if the form pages
  first?.scrollIntoView({ block: "center" });
  first?.querySelector("input, select, textarea")?.focus({ preventScroll: true });
  return first !== null;
}

function markInvalid(element, error, invalid) {
  error.hidden = !invalid;
  element.classList.toggle("invalid", invalid);
  for (const control of element.querySelectorAll("input, select, textarea")) {
    if (invalid) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", error.id);
    } else {
      control.removeAttribute("aria-invalid");
      control.removeAttribute("aria-describedby");
    }
  }
}

function segmented(name, legend, options, current, onChange, className = "segmented") {
  return h(
    "fieldset",
    { class: className },
    h("legend", {}, legend),
    options.map(([value, text]) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name,
          value: String(value),
          checked: value === current,
          on: { change: () => onChange(value) },
        }),
        h("span", {}, text),
      ),
    ),
  );
}

function modePicker(state) {
  return h(
    "section",
    { class: "card" },
    segmented(
      "mode",
      t("visit.mode"),
      MODES.map((m) => [m, t(`mode.${m}`)]),
      state.mode,
      (m) => {
        state.mode = m;
      },
    ),
  );
}

function peoplePicker(people, state) {
  return h(
    "section",
    { class: "card" },
    h(
      "fieldset",
      { class: "checks" },
      h("legend", {}, t("visit.seen")),
      people.map((person) =>
        h(
          "label",
          { class: "check" },
          h("input", {
            type: "checkbox",
            checked: state.seen.has(person.id),
            on: {
              change: (e) => (e.target.checked ? state.seen.add(person.id) : state.seen.delete(person.id)),
            },
          }),
          person.name,
        ),
      ),
    ),
  );
}

/** The form's fields in one card per group; a field is hidden while it is not relevant.
 *  Also the admin page's preview of a form (admin/form-preview.js). */
export function formFields(form, state, people) {
  const rows = [];
  const cards = [];
  const repeats = [];
  const context = () => ({ clock: localIso().slice(0, 19) });
  const update = () => {
    for (const repeat of repeats) repeat.update();
    for (const row of repeats.flatMap((repeat) => repeat.rows())) {
      if (row.field.type === "calculate") {
        row.element.querySelector("output").textContent = shownValue(row.entry[row.field.id]);
      }
    }
    const now = context();
    const calculated = calculate(form, state.answers, now);
    for (const row of rows) {
      row.element.hidden = row.field.type === "hidden" || !isRelevant(form, row.field, state.answers, now);
      if (row.field.choice_filter) offerChoices(form, row, state.answers);
      if (Object.hasOwn(calculated, row.id)) {
        state.answers[row.id] = calculated[row.id];
        row.element.querySelector("output").textContent = shownValue(calculated[row.id]);
      }
    }
  };
  /** A changed answer says at once what is wrong with it (not that it is missing: that waits
   *  for 保存), in the cadre's language, next to the question. */
  const recheck = (row) => {
    const codes = validateAnswers(form, state.answers, null, context())[row.id];
    const shown = codes && codes[0] !== "required" && !row.element.hidden;
    row.error.textContent = shown ? codes.map((code) => messageFor(row.field, code, lang())).join("；") : "";
    markInvalid(row.element, row.error, Boolean(shown));
  };
  for (const f of form.fields) {
    if (cards.length === 0 || f.group !== cards.at(-1).group) {
      const heading = f.group && (f.group_label ? pick(f.group_label) : known(`group.${f.group}`));
      cards.push({
        group: f.group,
        element: h("section", { class: "card" }, heading && h("h2", {}, heading)),
      });
    }
    const error = h("p", { class: "error", id: `error-${f.id}`, role: "alert", hidden: true });
    const element = h("div", { class: f.problem ? "field problem-field" : "field" });
    const changed = () => {
      markInvalid(element, error, false);
      update();
      recheck(rows.find((row) => row.id === f.id));
    };
    const repeat = f.type === "repeat" ? repeatInput(form, f, state, people, changed, input) : null;
    if (repeat) repeats.push(repeat);
    const control = repeat ? repeat.element : input(f, state, people, changed);
    if (f.read_only) {
      for (const each of control.querySelectorAll?.("input, select, textarea, button") ?? []) each.disabled = true;
      if ("disabled" in control) control.disabled = true;
    }
    element.append(control);
    if (f.hint) element.append(h("p", { class: "hint" }, pick(f.hint)));
    element.append(error);
    cards.at(-1).element.append(element);
    rows.push({ id: f.id, field: f, element, error, entries: repeat?.rows });
  }
  update();
  return { rows, cards: cards.map((c) => c.element) };
}

/** A cascading list shows only the choices the earlier answers offer, and drops an answer
 *  they no longer offer (a village of the township chosen before). */
function offerChoices(form, row, answers) {
  const offers = new Set(offeredChoices(form, row.field, answers));
  for (const box of row.element.querySelectorAll("input[type=radio], input[type=checkbox]")) {
    box.closest("label").hidden = !offers.has(box.value);
    if (!offers.has(box.value)) box.checked = false;
  }
  const current = answers[row.id];
  if (Array.isArray(current)) answers[row.id] = current.filter((value) => offers.has(value));
  else if (isAnswered(current) && !offers.has(current)) answers[row.id] = null;
}

/** The control of one field type, bound to `state.answers`. */
function input(f, state, people, changed) {
  const label = pick(f.label);
  const set = (value) => {
    state.answers[f.id] = value;
    changed();
  };
  const current = state.answers[f.id];
  switch (f.type) {
    case "boolean":
      return segmented(
        `answer-${f.id}`,
        label,
        [
          [true, t("answer.yes")],
          [false, t("answer.no")],
        ],
        current,
        set,
        "segmented yes-no",
      );
    case "single_choice":
      return segmented(
        `answer-${f.id}`,
        label,
        f.choices.map((c) => [c.value, pick(c.label)]),
        current,
        set,
      );
    case "multiple_choice": {
      const chosen = new Set(Array.isArray(current) ? current : []);
      return h(
        "fieldset",
        { class: "checks" },
        h("legend", {}, label),
        f.choices.map((c) =>
          h(
            "label",
            { class: "check" },
            h("input", {
              type: "checkbox",
              value: c.value,
              checked: chosen.has(c.value),
              on: {
                change: (e) => {
                  if (e.target.checked) chosen.add(c.value);
                  else chosen.delete(c.value);
                  set(f.choices.map((x) => x.value).filter((v) => chosen.has(v)));
                },
              },
            }),
            pick(c.label),
          ),
        ),
      );
    }
    case "person":
      return labelled(
        label,
        h(
          "select",
          { on: { change: (e) => set(e.target.value || null) } },
          h("option", { value: "" }, t("visit.nobody")),
          people.map((p) => h("option", { value: p.id, selected: current === p.id }, p.name)),
        ),
      );
    case "note":
      return h("p", { class: "note" }, label);
    case "hidden":
      return h("span", {});
    case "calculate":
      // Computed from the other answers as they change; read-only, stored with the visit.
      return labelled(label, h("output", { class: "calculated" }, shownValue(current)));
    case "geopoint":
    case "geotrace":
    case "geoshape":
      return locationInput(f, label, current, set);
    case "range": {
      const shown = h("output", {}, current ?? "—");
      return labelled(
        label,
        h(
          "span",
          { class: "range" },
          h("input", {
            type: "range",
            min: f.min,
            max: f.max,
            step: f.step,
            value: current ?? f.min,
            on: {
              input: (e) => {
                shown.textContent = e.target.value;
                set(Number(e.target.value));
              },
            },
          }),
          shown,
        ),
      );
    }
    case "time":
    case "datetime":
      return labelled(
        label,
        h("input", {
          type: f.type === "time" ? "time" : "datetime-local",
          value: current ?? "",
          on: { input: (e) => set(e.target.value || null) },
        }),
      );
    case "integer":
    case "number":
      return labelled(
        label,
        h("input", {
          type: "number",
          inputmode: f.type === "integer" ? "numeric" : "decimal",
          step: f.type === "integer" ? "1" : "any",
          min: f.min,
          max: f.max,
          value: current ?? "",
          on: { input: (e) => set(e.target.value === "" ? null : Number(e.target.value)) },
        }),
      );
    case "date":
      return labelled(
        label,
        h("input", { type: "date", value: current ?? "", on: { input: (e) => set(e.target.value || null) } }),
      );
    case "photo":
      return photoInput(label, current, set, (state.photos ??= new Map()));
    case "audio":
    case "video":
    case "file":
      return mediaInput(f, label, current, set, (state.photos ??= new Map()));
    case "barcode":
      return barcodeInput(label, current, set);
    case "rank":
      return rankInput(f, label, current, set);
    default:
      return labelled(
        label,
        h("textarea", { rows: 2, value: current ?? "", on: { input: (e) => set(e.target.value) } }),
      );
  }
}

/** A calculated value as the cadre reads it: numbers as the server writes them, 是/否. */
function shownValue(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "boolean") return t(value ? "answer.yes" : "answer.no");
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** The phone's position with its accuracy, as a geopoint answer (forms/README.md). */
function here(coords) {
  return {
    lat: Math.round(coords.latitude * 1e6) / 1e6,
    lon: Math.round(coords.longitude * 1e6) / 1e6,
    accuracy: Math.round(coords.accuracy * 10) / 10,
    ...(Number.isFinite(coords.altitude) && { altitude: Math.round(coords.altitude * 10) / 10 }),
  };
}

/** A location question: one tap takes the position (geopoint) or adds a point to the line or
 *  area (geotrace, geoshape); the accuracy or the number of points shows what was taken. */
function locationInput(f, label, current, set) {
  const single = f.type === "geopoint";
  let points = single ? [] : Array.isArray(current) ? [...current] : [];
  const status = h("span", { class: "muted" });
  const show = (answer) => {
    if (single) status.textContent = answer ? t("visit.located", { m: Math.round(answer.accuracy ?? 0) }) : "";
    else status.textContent = points.length ? t("visit.points", { n: points.length }) : "";
  };
  const take = () => {
    if (!navigator.geolocation) return;
    status.textContent = t("visit.locating");
    navigator.geolocation.getCurrentPosition(
      ({ coords }) => {
        if (single) {
          set(here(coords));
          show(here(coords));
        } else {
          points = [...points, here(coords)];
          set(points);
          show();
        }
      },
      () => {
        status.textContent = t("visit.locationFailed");
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 0 },
    );
  };
  const clear = () => {
    points = [];
    set(single ? null : []);
    show(null);
  };
  show(single ? current : null);
  return h(
    "fieldset",
    { class: "location-field" },
    h("legend", {}, label),
    h("button", { type: "button", class: "small", on: { click: take } }, t(single ? "visit.locateHere" : "visit.addPoint")),
    " ",
    h("button", { type: "button", class: "small", on: { click: clear } }, t("visit.clearPoints")),
    " ",
    status,
  );
}

/** GPS when the phone allows it: asked for only on a tap unless already granted; never blocks saving. */
function locationRow(state) {
  const status = h("span", { class: "muted" }, t("visit.locationNone"));
  const locate = () => {
    if (!navigator.geolocation) return;
    status.textContent = t("visit.locating");
    navigator.geolocation.getCurrentPosition(
      ({ coords }) => {
        const { lat, lon, accuracy } = here(coords);
        state.location = { lat, lon, accuracy };
        status.textContent = t("visit.located", { m: Math.round(coords.accuracy) });
      },
      () => {
        status.textContent = t("visit.locationFailed");
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 300_000 },
    );
  };
  const ask = h("button", { type: "button", class: "small", on: { click: locate } }, t("visit.locate"));
  navigator.permissions
    ?.query({ name: "geolocation" })
    .then((permission) => {
      if (permission.state === "granted") locate();
    })
    .catch(() => {});
  return h("section", { class: "card location" }, h("span", {}, t("visit.location"), " "), status, " ", ask);
}

/**
 * 发现问题: after a visit whose answers point at problems (a check answered 否), offer to
 * register each one, prefilled with the form's category and a description from the answers.
 */
export async function renderFound(ctx, [visitId]) {
  const visit = await get(ctx.db, "visit", visitId);
  const form = visit && (await formVersion(ctx.db, visit.form_id, visit.form_version));
  ctx.title(t("found.title"), "#/");
  if (!visit || !form)
    return h("div", { class: "screen" }, h("p", { class: "empty" }, t("household.missing")));
  const detail = await householdDetail(ctx.db, visit.household_id);
  const registered = new Set(detail.problems.filter((p) => p.visit_id === visitId).map((p) => p.category));
  const found = problemsFound(form, visit.answers ?? {});
  return h(
    "div",
    { class: "screen found" },
    h(
      "section",
      { class: "card" },
      h("p", {}, t("found.intro", { name: detail.household.head_name })),
      h(
        "ul",
        { class: "list" },
        found.map(({ field: fieldId, category }) => {
          const description = problemDescription(form, visit.answers, fieldId);
          const query = new URLSearchParams({
            hh: visit.household_id,
            visit: visitId,
            category,
            description,
          });
          return h(
            "li",
            { class: "found-item" },
            h("p", {}, h("b", {}, t(`category.${category}`)), " · ", description),
            registered.has(category)
              ? h("p", { class: "done-note" }, t("found.registered"))
              : h("a", { class: "button primary", href: `#/problem/new?${query}` }, t("found.register")),
          );
        }),
      ),
    ),
    h("div", { class: "sticky-action" }, h("a", { class: "button big", href: "#/" }, t("found.done"))),
  );
}

/** "饮水安全有保障：否；水量不足": the question, the answer, and the details the form asked for
 *  because of it (fields relevant exactly when the problem holds). */
function problemDescription(form, answers, fieldId) {
  const source = form.fields.find((f) => f.id === fieldId);
  const parts = [`${pick(source.label)}：${answerText(source, answers[fieldId])}`];
  for (const f of form.fields) {
    if (f.relevant && f.relevant === source.problem?.when && answers[f.id])
      parts.push(answerText(f, answers[f.id]));
  }
  return parts.join("；");
}

function answerText(f, value) {
  if (value === true) return t("answer.yes");
  if (value === false) return t("answer.no");
  if (f.choices) {
    const labels = new Map(f.choices.map((c) => [c.value, pick(c.label)]));
    return (Array.isArray(value) ? value : [value]).map((v) => labels.get(v) ?? v).join("、");
  }
  return String(value);
}
