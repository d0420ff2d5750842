/**
 * The visit screen's repeats and its capture questions (forms/README.md, "Repeats").
 *
 * A repeat seeded from the household's people reads as the list of those people: each
 * person's name, then their questions; nothing to add or remove. Any other repeat has one
 * entry per tap on 添加, each removable, or exactly as many as its `repeat_count` gives.
 * Each entry is an object of the repeat's field ids → answers (and `person` when seeded),
 * the child questions drawn by the visit screen's own `input`, so they look and behave as
 * every other question. Also here: audio/video/file (a file input that captures where the
 * browser can; the answer is the file's sha256, CONTRACT §11), barcode (the browser's
 * BarcodeDetector when it has one, else typing) and rank (choices moved up and down).
 *
 * @module screens/entries
 */

import {
  answerContext, calculateEntry, entryContext, isAnswered, isRelevant, offeredChoicesIn,
  parseExpression,
} from "../forms.js";
import { pick } from "../i18n.js";
import { sha256Hex } from "../photos.js";
import { localIso } from "../time.js";
import { h, labelled } from "../ui.js";

/** The words of this module, Chinese first (kept here so the shared word list stays small). */
const WORDS = {
  add: { "zh-CN": "添加一条", en: "Add an entry" },
  remove: { "zh-CN": "删除这一条", en: "Remove this entry" },
  entry: { "zh-CN": "第 {n} 条", en: "Entry {n}" },
  nobody: { "zh-CN": "本户还没有人员信息", en: "No people recorded for this household" },
  taken: { "zh-CN": "已选择文件（待上传）", en: "File chosen (to upload)" },
  scan: { "zh-CN": "扫码", en: "Scan" },
  scanFailed: { "zh-CN": "没有识别到条码，请手动输入", en: "No barcode found: type it in" },
  up: { "zh-CN": "上移", en: "Move up" },
  down: { "zh-CN": "下移", en: "Move down" },
  unranked: { "zh-CN": "未排序", en: "Not ranked" },
};
const word = (key, n) => pick(WORDS[key]).replace("{n}", String(n));
const ACCEPT = { audio: "audio/*", video: "video/*", file: "" };

/**
 * A repeat question: its entries, each a small card.
 * @param {object} form the form version
 * @param {object} f the repeat's definition
 * @param {object} state the visit screen's state (`answers`, `photos`)
 * @param {object[]} people the household's people ({id, name})
 * @param {Function} changed called after every change
 * @param {Function} input the visit screen's control for one field: (f, state, people, changed)
 * @param {Function} [outer] what the repeat's own conditions read (the form's answers, or
 *   for a repeat inside an entry, that entry's context)
 * @param {string} [key] the repeat's key in validation codes (`member[0].kids` when nested)
 * @returns {{element: Element, update: Function, rows: Function}} `update` re-reads relevance
 *   and the entry count; `rows` lists each entry field's row for error messages, keyed as
 *   validateAnswers keys them (`member[0].income`), those of nested repeats included
 */
export function repeatInput(
  form, f, state, people, changed, input,
  outer = () => answerContext(form, state.answers), key = f.id,
) {
  const list = h("div", { class: "entries" });
  const element = h("fieldset", { class: "repeat" }, h("legend", {}, pick(f.label)), list);
  let rows = [];
  let nested = [];
  state.photos ??= new Map(); // shared with every entry: files taken in an entry are kept too
  const entries = () => {
    if (!Array.isArray(state.answers[f.id])) state.answers[f.id] = [];
    return state.answers[f.id];
  };
  const draw = () => {
    list.replaceChildren();
    rows = [];
    nested = [];
    entries().forEach((entry, index) => list.append(entryCard(index, entry)));
    if (f.seed && people.length === 0) list.append(h("p", { class: "muted" }, word("nobody")));
    addButton.hidden = Boolean(f.seed) || wantedCount() !== null;
    update();
  };
  const entryCard = (index, entry) => {
    const person = f.seed ? people.find((p) => p.id === entry.person) : null;
    const title = person ? person.name : word("entry", index + 1);
    const card = h("section", { class: "entry" }, h("h3", {}, title));
    const sub = { ...state, answers: entry };
    for (const child of f.fields) {
      const where = `${key}[${index}].${child.id}`;
      const error = h("p", { class: "error", id: `error-${where}`, role: "alert", hidden: true });
      const row = h("div", { class: "field" });
      const rowChanged = () => {
        row.classList.remove("invalid");
        error.hidden = true;
        changed();
      };
      if (child.type === "repeat") {
        const inner = repeatInput(
          form, child, sub, people, rowChanged, input, () => entryContext(f, outer(), entry), where,
        );
        nested.push(inner);
        row.append(inner.element);
        row.append(error);
        card.append(row);
        rows.push({ id: where, field: child, element: row, error, entry, entries: inner.rows });
        continue;
      }
      row.append(input(child, sub, people, rowChanged));
      if (child.hint) row.append(h("p", { class: "hint" }, pick(child.hint)));
      row.append(error);
      card.append(row);
      rows.push({ id: where, field: child, element: row, error, entry });
    }
    if (!f.seed && wantedCount() === null) {
      card.append(h("button", {
        type: "button",
        class: "secondary",
        on: {
          click: () => {
            entries().splice(index, 1);
            draw();
            changed();
          },
        },
      }, word("remove")));
    }
    return card;
  };
  /** A new entry: each of the repeat's own fields with a `default` starts with it. */
  const fresh = () => Object.fromEntries(f.fields
    .filter((child) => child.default !== undefined && child.default !== null)
    .map((child) => [child.id, JSON.parse(JSON.stringify(child.default))]));
  /** The number of entries `repeat_count` asks for given the answers so far, else null. */
  const wantedCount = () => {
    if (f.repeat_count === undefined || f.repeat_count === null) return null;
    const n = parseExpression(String(f.repeat_count)).evaluate(outer());
    return Number.isInteger(n) && n >= 0 && n <= 100 ? n : null;
  };
  /** Entries follow the household's people or the count; children follow their relevance. */
  const update = () => {
    const current = entries();
    if (f.seed) {
      const ids = new Set(people.map((p) => p.id));
      const have = new Set(current.map((entry) => entry.person));
      const missing = people.filter((p) => !have.has(p.id)).map((p) => ({ person: p.id, ...fresh() }));
      const kept = current.filter((entry) => ids.has(entry.person));
      if (missing.length || kept.length !== current.length) {
        state.answers[f.id] = [...kept, ...missing];
        return draw();
      }
    } else {
      const n = wantedCount();
      if (n !== null && n !== current.length) {
        while (current.length < n) current.push(fresh());
        current.length = n;
        return draw();
      }
    }
    const context = outer();
    const clock = localIso().slice(0, 19);
    current.forEach((entry, index) => {
      // each entry's calculations, live (the visit screen shows them; saving recomputes)
      const inside = entryContext(f, context, entry);
      Object.assign(entry, calculateEntry(f, inside, { clock, position: index + 1 }));
    });
    for (const row of rows) {
      const inside = entryContext(f, context, row.entry);
      row.element.hidden = !parseExpression(row.field.relevant ?? "true").holds(inside);
      if (row.field.choice_filter) offerInEntry(row, offeredChoicesIn(row.field, inside));
    }
    for (const inner of nested) inner.update();
  };
  const addButton = h("button", {
    type: "button",
    class: "secondary",
    on: {
      click: () => {
        entries().push(fresh());
        draw();
        changed();
      },
    },
  }, word("add"));
  element.append(addButton);
  draw();
  return { element, update, rows: () => rows.flatMap((row) => [row, ...(row.entries?.() ?? [])]) };
}

/** A cascading list in an entry shows only what the entry's answers offer, and drops an
 *  answer they no longer offer (as the visit screen does for its own questions). */
function offerInEntry(row, offered) {
  const offers = new Set(offered);
  for (const box of row.element.querySelectorAll("input[type=radio], input[type=checkbox]")) {
    box.closest("label").hidden = !offers.has(box.value);
    if (!offers.has(box.value)) box.checked = false;
  }
  const current = row.entry[row.field.id];
  if (Array.isArray(current)) row.entry[row.field.id] = current.filter((v) => offers.has(v));
  else if (isAnswered(current) && !offers.has(current)) row.entry[row.field.id] = null;
}

/**
 * The entries to send: each entry's relevant, answered fields (and its person), in order.
 * @param {object} form
 * @param {object} f the repeat's definition
 * @param {object} answers the visit's answers
 * @returns {object[]}
 */
export function relevantEntries(form, f, answers) {
  return keptEntries(f, answers[f.id], answerContext(form, answers));
}

/** Each entry's relevant, answered fields, a nested repeat's entries likewise. */
function keptEntries(f, value, context) {
  const entries = Array.isArray(value) ? value : [];
  return entries.map((entry) => {
    const kept = f.seed ? { person: entry.person } : {};
    const inside = entryContext(f, context, entry);
    for (const child of f.fields) {
      if (!isAnswered(entry[child.id])) continue;
      if (!parseExpression(child.relevant ?? "true").holds(inside)) continue;
      kept[child.id] = child.type === "repeat" ? keptEntries(child, entry[child.id], inside) : entry[child.id];
    }
    return kept;
  });
}

/** Whether a repeat's entries are to be sent: the repeat applies and holds some entry. */
export function sendsEntries(form, f, answers) {
  return isRelevant(form, f, answers) && Array.isArray(answers[f.id]) && answers[f.id].length > 0;
}

/**
 * An audio, video or file question: the phone's recorder or camera where the browser offers
 * one (`capture`), else a file picker. The answer is the file's sha256; its bytes wait in
 * `taken` (the visit screen's photos, sent after the visit as photos are, CONTRACT §11).
 */
export function mediaInput(f, label, current, set, taken) {
  const status = h("span", { class: "muted" }, current ? word("taken") : "");
  const picker = h("input", {
    type: "file",
    accept: ACCEPT[f.type] || null,
    capture: f.type === "file" ? null : "environment",
    on: {
      change: async (event) => {
        const file = event.target.files?.[0];
        if (!file) return;
        const bytes = new Uint8Array(await file.arrayBuffer());
        const sha256 = await sha256Hex(bytes);
        taken.set(sha256, { bytes, sha256, type: file.type });
        status.textContent = word("taken");
        set(sha256);
      },
    },
  });
  const row = labelled(label, picker, "capture");
  row.append(status);
  return row;
}

/**
 * A barcode question: the text typed, or read by the camera with the browser's
 * BarcodeDetector when there is one (Chrome on Android); typing always works.
 */
export function barcodeInput(label, current, set) {
  const text = h("input", {
    type: "text",
    inputmode: "numeric",
    autocomplete: "off",
    value: current ?? "",
    on: { input: (e) => set(e.target.value || null) },
  });
  const row = labelled(label, text, "barcode");
  if ("BarcodeDetector" in globalThis) {
    const note = h("span", { class: "muted" });
    const camera = h("input", {
      type: "file",
      accept: "image/*",
      capture: "environment",
      hidden: true,
      on: {
        change: async (event) => {
          const file = event.target.files?.[0];
          if (!file) return;
          try {
            const found = await new globalThis.BarcodeDetector().detect(await createImageBitmap(file));
            if (!found.length) throw new Error("none");
            text.value = found[0].rawValue;
            note.textContent = "";
            set(text.value);
          } catch {
            note.textContent = word("scanFailed");
          }
        },
      },
    });
    row.append(h("button", { type: "button", class: "secondary", on: { click: () => camera.click() } }, word("scan")), camera, note);
  }
  return row;
}

/**
 * A rank question: every choice in a list, moved up or down by a tap; the answer is the
 * order shown once the cadre has moved one (a rank left untouched is unanswered).
 */
export function rankInput(f, label, current, set) {
  const order = Array.isArray(current) && current.length
    ? [...current, ...f.choices.map((c) => c.value).filter((v) => !current.includes(v))]
    : f.choices.map((c) => c.value);
  const labels = new Map(f.choices.map((c) => [c.value, pick(c.label)]));
  const list = h("ol", { class: "rank" });
  const status = h("p", { class: "muted" }, Array.isArray(current) && current.length ? "" : word("unranked"));
  const move = (index, by) => {
    const target = index + by;
    if (target < 0 || target >= order.length) return;
    [order[index], order[target]] = [order[target], order[index]];
    status.textContent = "";
    draw();
    set([...order]);
  };
  const draw = () => {
    list.replaceChildren(...order.map((value, index) => h(
      "li",
      {},
      h("span", {}, labels.get(value) ?? value),
      h("button", { type: "button", class: "secondary", "aria-label": `${word("up")} ${labels.get(value)}`, disabled: index === 0, on: { click: () => move(index, -1) } }, "↑"),
      h("button", { type: "button", class: "secondary", "aria-label": `${word("down")} ${labels.get(value)}`, disabled: index === order.length - 1, on: { click: () => move(index, 1) } }, "↓"),
    )));
  };
  draw();
  return h("fieldset", { class: "rank-field" }, h("legend", {}, label), list, status);
}

/** Forms longer than this many questions, in at least PAGED_GROUPS groups, page by group. */
const PAGED_FIELDS = 24;
const PAGED_GROUPS = 3;
const PAGE_WORDS = {
  previous: { "zh-CN": "上一页", en: "Previous" },
  next: { "zh-CN": "下一页", en: "Next" },
  page: { "zh-CN": "第 {n} 页，共 {m} 页", en: "Page {n} of {m}" },
};

/** Questions at any depth, as `forms list` counts them (a repeat itself is none). */
function questionCount(docs) {
  return docs.reduce((n, doc) => n + (doc.type === "repeat" ? questionCount(doc.fields) : 1), 0);
}

/**
 * The form's group cards, one page per group when the form is long (a short form, such as
 * the weekly visit, stays one page, so a routine visit is still three taps). 保存 stays on
 * every page; a question found invalid on another page brings its page up (the `reveal`
 * event the visit screen sends from it).
 * @param {object} form
 * @param {Element[]} cards one per group, in order
 * @returns {Element | Element[]}
 */
export function pagedCards(form, cards) {
  if (cards.length < PAGED_GROUPS || questionCount(form.fields) <= PAGED_FIELDS) return cards;
  let page = 0;
  const status = h("span", { class: "muted", "aria-live": "polite" });
  const previous = h("button", { type: "button", class: "secondary", on: { click: () => show(page - 1) } }, pick(PAGE_WORDS.previous));
  const next = h("button", { type: "button", class: "secondary", on: { click: () => show(page + 1) } }, pick(PAGE_WORDS.next));
  const show = (index) => {
    page = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach((card, i) => {
      card.hidden = i !== page;
    });
    previous.disabled = page === 0;
    next.disabled = page === cards.length - 1;
    status.textContent = pick(PAGE_WORDS.page).replace("{n}", page + 1).replace("{m}", cards.length);
  };
  const pages = h("div", { class: "pages", on: {
    reveal: (event) => show(cards.findIndex((card) => card.contains(event.target))),
  } }, cards, h("nav", { class: "pager card" }, previous, status, next));
  show(0);
  return pages;
}
