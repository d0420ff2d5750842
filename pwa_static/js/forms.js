/**
 * Visit forms on the phone: answer validation, relevance, calculations, defaults and the
 * "problem found" path, by the same rules as the server's forms package (forms/README.md is the
 * specification; tests/vectors/forms_validation.json pins the two implementations together).
 *
 * A form version is the `data` of a pulled `form` record (FormVersion.to_record_data() in
 * Python): {form_id, version, title, policy, fields: [field definitions as written]}.
 * Definitions were checked by the server before any phone saw them, so nothing here checks
 * them again. Answers are a plain object of field id -> JSON value.
 *
 * @module forms
 */

import { answerOf, isAnswered, parseExpression } from "./expressions.js";

export { ExpressionError, isAnswered, parseExpression } from "./expressions.js";

const DEFAULT_MAX_LENGTH = 2000;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const TIME = /^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$/;
const DATETIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$/;
const SHA256 = /^[0-9a-f]{64}$/;
const POINT_KEYS = new Set(["lat", "lon", "accuracy", "altitude"]);
/** The fewest points of a line and of an area. */
const LEAST_POINTS = { geotrace: 2, geoshape: 3 };
/** How far from a whole number of steps a range answer may be, as in forms/answers.py. */
const STEP_TOLERANCE = 1e-9;
/** How far apart a stored and a recomputed calculation may be, relative to their size. */
const CALCULATION_TOLERANCE = 1e-9;

/** The wording of every validation code, as in forms/messages.py. */
export const MESSAGES = {
  "zh-CN": {
    unknown_field: "不是本表的字段",
    not_relevant: "根据其他回答，此项不应填写",
    required: "必填",
    "wrong_type:text": "应为文字",
    "wrong_type:number": "应为数字",
    "wrong_type:boolean": "应为“是”或“否”",
    "wrong_type:date": "应为日期（格式 YYYY-MM-DD）",
    "wrong_type:single_choice": "应为一个选项",
    "wrong_type:multiple_choice": "应为选项列表",
    "wrong_type:person": "应为本户人员",
    "wrong_type:photo": "应为照片（SHA-256 摘要）",
    invalid_date: "日历上没有这一天",
    not_a_choice: "不是可选的选项",
    duplicate_choice: "选项重复",
    unknown_person: "不是本户人员",
    too_small: "不能小于 {0}",
    too_large: "不能大于 {0}",
    too_long: "不能超过 {0} 个字",
    "wrong_type:integer": "应为整数",
    "wrong_type:range": "应为数字",
    "wrong_type:time": "应为时间（格式 HH:MM）",
    "wrong_type:datetime": "应为日期和时间（格式 YYYY-MM-DDTHH:MM）",
    "wrong_type:note": "此项是说明，不填写",
    "wrong_type:hidden": "应为文字",
    "wrong_type:geopoint": "应为一个位置（纬度、经度）",
    "wrong_type:geotrace": "应为至少 2 个位置连成的线",
    "wrong_type:geoshape": "应为至少 3 个位置围成的范围",
    invalid_time: "一天中没有这个时间",
    off_step: "须按 {0} 的间隔取值",
    not_offered: "根据前面的回答，不能选这一项",
    constraint: "不符合本题的要求",
    "wrong_type:repeat": "应为若干条记录",
    "wrong_type:audio": "应为录音（SHA-256 摘要）",
    "wrong_type:video": "应为视频（SHA-256 摘要）",
    "wrong_type:file": "应为文件（SHA-256 摘要）",
    "wrong_type:barcode": "应为条码文字",
    "wrong_type:rank": "应为排好顺序的选项列表",
    entry_count: "应有 {0} 条记录",
    duplicate_person: "同一人员出现了两次",
    calculation_mismatch: "计算结果与其他回答不一致",
    "wrong_type:calculate": "应为计算结果（文字、数字或是否）",
  },
  en: {
    unknown_field: "is not a field of this form",
    not_relevant: "does not apply given the other answers",
    required: "is required",
    "wrong_type:text": "must be text",
    "wrong_type:number": "must be a number",
    "wrong_type:boolean": "must be yes or no",
    "wrong_type:date": "must be a date written YYYY-MM-DD",
    "wrong_type:single_choice": "must be one choice",
    "wrong_type:multiple_choice": "must be a list of choices",
    "wrong_type:person": "must be a person of the household",
    "wrong_type:photo": "must be a photo (its SHA-256 digest)",
    invalid_date: "is not a day of the calendar",
    not_a_choice: "is not one of the choices",
    duplicate_choice: "lists the same choice twice",
    unknown_person: "is not a person of this household",
    too_small: "must be at least {0}",
    too_large: "must be at most {0}",
    too_long: "must be at most {0} characters",
    "wrong_type:integer": "must be a whole number",
    "wrong_type:range": "must be a number",
    "wrong_type:time": "must be a time written HH:MM",
    "wrong_type:datetime": "must be a date and time written YYYY-MM-DDTHH:MM",
    "wrong_type:note": "is a note and takes no answer",
    "wrong_type:hidden": "must be text",
    "wrong_type:geopoint": "must be a location (latitude, longitude)",
    "wrong_type:geotrace": "must be a line of at least 2 locations",
    "wrong_type:geoshape": "must be an area of at least 3 locations",
    invalid_time: "is not a time of the day",
    off_step: "must be in steps of {0}",
    not_offered: "is not offered given the earlier answers",
    constraint: "does not meet the question's condition",
    "wrong_type:repeat": "must be a list of entries",
    "wrong_type:audio": "must be a recording (its SHA-256 digest)",
    "wrong_type:video": "must be a video (its SHA-256 digest)",
    "wrong_type:file": "must be a file (its SHA-256 digest)",
    "wrong_type:barcode": "must be the text of a barcode",
    "wrong_type:rank": "must be a list of choices in order",
    entry_count: "must have {0} entries",
    duplicate_person: "names the same person twice",
    calculation_mismatch: "does not match the calculation from the other answers",
    "wrong_type:calculate": "should be a calculated value (text, a number or yes/no)",
  },
};

/**
 * The message of a validation code for people: `describe("too_small:0", "en")`.
 * @param {string} code a code from validateAnswers
 * @param {string} [lang="zh-CN"] any `en` or `en-*` is English, everything else Chinese
 * @returns {string}
 * @throws {Error} for a code that has no message
 */
export function describe(code, lang = "zh-CN") {
  const messages = MESSAGES[language(lang)];
  const plain = messages[code];
  if (Object.hasOwn(messages, code) && !plain.includes("{0}")) {
    return plain;
  }
  const colon = code.indexOf(":");
  const key = colon < 0 ? code : code.slice(0, colon);
  const argument = colon < 0 ? "" : code.slice(colon + 1);
  const template = Object.hasOwn(messages, key) ? messages[key] : "";
  if (!argument || !template.includes("{0}")) {
    throw new Error(`unknown message code ${JSON.stringify(code)}`);
  }
  return template.replace("{0}", () => argument);
}

/** Codes a field's constraint_message words in the form's own terms. */
const CONSTRAINT_CODES = /^(constraint$|(too_small|too_large|too_long|off_step):)/;

/**
 * The words for a field's validation code: the form's own `required_message` or
 * `constraint_message` (from the XLSForm) where it has one, else `describe(code, lang)`.
 * @param {object} field the field's definition from formVersion.fields
 * @param {string} code a code from validateAnswers
 * @param {string} [lang="zh-CN"]
 * @returns {string}
 */
export function messageFor(field, code, lang = "zh-CN") {
  let own;
  if (code === "required") {
    own = field.required_message;
  } else if (CONSTRAINT_CODES.test(code)) {
    own = field.constraint_message;
  }
  return own ? own[language(lang)] : describe(code, lang);
}

function language(lang) {
  if (Object.hasOwn(MESSAGES, lang)) {
    return lang;
  }
  return lang.toLowerCase().split("-")[0] === "en" ? "en" : "zh-CN";
}

/** Form versions with their conditions parsed, built once per form record object. */
const compiled = new WeakMap();
/** repeat definition -> the repeat compiled on its own (calculateEntry, at any depth) */
const compiledRepeats = new WeakMap();

/**
 * The fields of a form version, in order, ready to evaluate.
 * @returns {Map<string, object>} id -> {id, type, doc, required, relevant, choices, problem}
 */
function fieldsOf(formVersion) {
  let fields = compiled.get(formVersion);
  if (fields === undefined) {
    fields = new Map(formVersion.fields.map((doc) => [doc.id, compileField(doc)]));
    fields.calculations = calculationOrder(fields);
    compiled.set(formVersion, fields);
  }
  return fields;
}

/**
 * The calculate fields, each after every calculation it reads, otherwise in form order (as
 * calculation_order in forms/model.py; definitions have no cycles).
 */
function calculationOrder(fields) {
  const calculated = new Map([...fields].filter(([, field]) => field.calculation !== null));
  const ordered = new Map();
  const visit = (field, path) => {
    if (ordered.has(field.id) || path.has(field.id)) {
      return;
    }
    const reads = new Set([...field.calculation.references, ...field.relevant.references]);
    const inner = new Set([...path, field.id]);
    for (const name of [...reads].filter((each) => calculated.has(each)).sort()) {
      visit(calculated.get(name), inner);
    }
    ordered.set(field.id, field);
  };
  for (const field of calculated.values()) {
    visit(field, new Set());
  }
  return [...ordered.values()];
}

function compileField(doc) {
  const required = doc.required ?? false;
  const condition = typeof required === "boolean" ? String(required) : required;
  const count = doc.repeat_count;
  const fields = new Map((doc.type === "repeat" ? doc.fields : []).map((child) =>
    [child.id, compileField(child)]));
  return {
    id: doc.id,
    type: doc.type,
    doc,
    fields,
    calculations: calculationOrder(fields), // a repeat's, computed in each entry
    repeatCount: count === undefined || count === null ? null : parseExpression(String(count)),
    required: parseExpression(condition),
    relevant: parseExpression(doc.relevant ?? "true"),
    constraint: parseExpression(doc.constraint ?? "true"),
    calculation: doc.calculation === undefined ? null : parseExpression(doc.calculation),
    choices: new Set((doc.choices ?? []).map((choice) => choice.value)),
    problem: doc.problem && {
      when: parseExpression(doc.problem.when),
      category: doc.problem.category,
    },
  };
}

/** A field of the form by id or definition; asking about a field it lacks is a bug. */
function fieldOf(formVersion, field) {
  const id = typeof field === "string" ? field : field.id;
  const found = fieldsOf(formVersion).get(id);
  if (found === undefined) {
    throw new Error(`form ${formVersion.form_id} has no field ${JSON.stringify(id)}`);
  }
  return found;
}

/**
 * Whether a field applies given the answers so far (hide it when not).
 * @param {object} formVersion
 * @param {string | object} field its id, or its definition from formVersion.fields
 * @param {object} answers
 * @returns {boolean}
 */
export function isRelevant(formVersion, field, answers, env = {}) {
  return fieldOf(formVersion, field).relevant.holds(answerContext(formVersion, answers), env);
}

/**
 * Whether the field must be answered given the answers so far: it is relevant and its
 * `required` condition holds (an irrelevant field is never required).
 * @param {object} formVersion
 * @param {string | object} field its id, or its definition from formVersion.fields
 * @param {object} answers
 * @returns {boolean}
 */
export function isRequired(formVersion, field, answers, env = {}) {
  const compiledField = fieldOf(formVersion, field);
  const context = answerContext(formVersion, answers);
  return compiledField.relevant.holds(context, env) && compiledField.required.holds(context, env);
}

/**
 * What a condition outside any repeat reads: the answers, and for each field of a repeat the
 * list of its values across the entries (as answer_context in forms/answers.py).
 * @param {object} formVersion
 * @param {object} answers
 * @returns {object}
 */
export function answerContext(formVersion, answers) {
  return levelContext(formVersion.fields, answers, answers);
}

/** `base` with, for each repeat among `docs`, every field of its entries as a list. */
function levelContext(docs, answers, base) {
  const context = { ...base };
  for (const doc of docs) {
    if (doc.type !== "repeat") continue;
    for (const [child, values] of valuesAcross(doc, entriesOf(answerOf(answers, doc.id)))) {
      context[child] = values;
    }
  }
  return context;
}

/** Each field of a repeat at any depth -> its values across the entries, nested flattened. */
function valuesAcross(repeatDoc, entries) {
  const values = new Map(repeatDoc.fields.map((child) => [child.id, []]));
  for (const entry of entries) {
    for (const child of repeatDoc.fields) {
      values.get(child.id).push(answerOf(entry, child.id) ?? null);
      if (child.type !== "repeat") continue;
      for (const [inner, found] of valuesAcross(child, entriesOf(answerOf(entry, child.id)))) {
        if (!values.has(inner)) values.set(inner, []);
        values.get(inner).push(...found);
      }
    }
  }
  return values;
}

/**
 * What a condition inside one entry of a repeat reads: the entry's answers over the form's.
 * @param {object} repeatDoc the repeat's definition
 * @param {object} context from answerContext
 * @param {object} entry
 * @returns {object}
 */
export function entryContext(repeatDoc, context, entry) {
  const inside = { ...context };
  for (const child of repeatDoc.fields) {
    inside[child.id] = answerOf(entry, child.id) ?? null;
  }
  return levelContext(repeatDoc.fields, entry, inside);
}

function entriesOf(value) {
  return Array.isArray(value) ? value.filter(isEntry) : [];
}

function isEntry(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Whether a field of a repeat applies, and whether it must be answered, in one entry.
 * @param {object} formVersion
 * @param {object} repeatDoc the repeat's definition
 * @param {object} childDoc the field's definition, from repeatDoc.fields
 * @param {object} answers the visit's answers
 * @param {object} entry the entry's answers
 * @returns {{relevant: boolean, required: boolean}}
 */
export function entryState(formVersion, repeatDoc, childDoc, answers, entry, env = {}) {
  const child = fieldOf(formVersion, repeatDoc).fields.get(childDoc.id);
  const inside = entryContext(repeatDoc, answerContext(formVersion, answers), entry);
  const relevant = child.relevant.holds(inside, env);
  return { relevant, required: relevant && child.required.holds(inside, env) };
}

/**
 * The value of every calculate field from the other answers, each calculation reading those
 * computed before it (an irrelevant calculation is null). The phone stores these with the
 * answers; the server recomputes them (calculation_mismatch).
 * @param {object} formVersion
 * @param {object} answers
 * @param {{clock?: string|null}} [context] the visit's local time YYYY-MM-DDTHH:MM:SS
 * @returns {Object<string, unknown>} field id -> value (null when there is none)
 */
export function calculate(formVersion, answers, { clock = null } = {}) {
  return calculateIn(fieldsOf(formVersion), answerContext(formVersion, answers), { clock });
}

/**
 * The calculate fields of one entry of a repeat, from what the entry's conditions read (its
 * answers over the enclosing level's, as entryContext gives) and at its 1-based position: the
 * phone stores them in the entry; the server recomputes each entry's (_entry_calculations).
 * @param {object} repeatDoc the repeat's definition, at any depth
 * @param {object} context what the entry's conditions read (entryContext)
 * @param {{clock?: string|null, position?: number}} [env]
 * @returns {Object<string, unknown>} field id -> value (null when there is none)
 */
export function calculateEntry(repeatDoc, context, env = {}) {
  let repeat = compiledRepeats.get(repeatDoc);
  if (repeat === undefined) {
    repeat = compileField(repeatDoc);
    compiledRepeats.set(repeatDoc, repeat);
  }
  return calculateIn(repeat, context, env);
}

/** The calculations of a form (fieldsOf) or of a repeat, in order, each reading those before. */
function calculateIn(repeat, context, env) {
  const values = { ...context };
  const result = {};
  for (const field of repeat.calculations) {
    const value = field.relevant.holds(values, env) ? field.calculation.evaluate(values, env) : null;
    values[field.id] = isAnswered(value) ? value : null;
    result[field.id] = values[field.id];
  }
  return result;
}

/**
 * The answers with every calculation recomputed: what the phone saves (an unanswered
 * calculation is left out, as an unanswered question is). Each entry's calculations come
 * first, so that the form's own read them (`sum(yearly)`).
 */
export function withCalculations(formVersion, answers, env = {}) {
  const result = { ...answers };
  const context = answerContext(formVersion, answers);
  for (const field of fieldsOf(formVersion).values()) {
    if (field.type === "repeat" && Array.isArray(result[field.id])) {
      result[field.id] = entriesWithCalculations(field, result[field.id], context, env);
    }
  }
  for (const [id, value] of Object.entries(calculate(formVersion, result, env))) {
    if (value === null) {
      delete result[id];
    } else {
      result[id] = value;
    }
  }
  return result;
}

/** The entries with their calculations recomputed, those of repeats inside them too. */
function entriesWithCalculations(repeat, entries, context, env) {
  return entries.map((entry, index) => {
    if (!isEntry(entry)) return entry;
    const at = { ...env, position: index + 1 };
    const kept = { ...entry };
    const calculated = calculateIn(repeat, entryContext(repeat.doc, context, entry), at);
    for (const [id, value] of Object.entries(calculated)) {
      if (value === null) delete kept[id];
      else kept[id] = value;
    }
    const inside = entryContext(repeat.doc, context, kept);
    for (const child of repeat.fields.values()) {
      if (child.type === "repeat" && Array.isArray(kept[child.id])) {
        kept[child.id] = entriesWithCalculations(child, kept[child.id], inside, env);
      }
    }
    return kept;
  });
}

/** A stored calculation is the recomputed one: numbers to within a relative 1e-9. */
function sameValue(given, expected) {
  if (typeof given === "number" && typeof expected === "number") {
    const scale = Math.max(1, Math.abs(given), Math.abs(expected));
    return Math.abs(given - expected) <= CALCULATION_TOLERANCE * scale;
  }
  if (Array.isArray(given) && Array.isArray(expected)) {
    return given.length === expected.length
      && given.every((item, index) => sameValue(item, expected[index]));
  }
  return expected !== null && typeof given === typeof expected
    && ["string", "boolean"].includes(typeof given) && given === expected;
}

function calculationError(given, expected) {
  if (!isAnswered(given)) {
    return expected === null ? null : "calculation_mismatch";
  }
  return sameValue(given, expected) ? null : "calculation_mismatch";
}

/**
 * Field id -> message codes of everything wrong with the answers; {} when valid. At most one
 * code per field, decided in the order of forms/README.md: unknown field, relevance, presence,
 * then the value itself. The fields of a repeat's entries are keyed `repeat[index].field`.
 * @param {object} formVersion
 * @param {object} answers
 * @param {string[] | null} [people=null] ids of the household's people; when given, a person
 *   answer (and the person of an entry of a repeat seeded from the people) must be one of them
 * @returns {Object<string, string[]>}
 */
export function validateAnswers(formVersion, answers, people = null, { clock = null } = {}) {
  const fields = fieldsOf(formVersion);
  const env = { clock };
  const expected = calculate(formVersion, answers, env);
  const known = people === null ? null : new Set(people);
  const errors = {};
  for (const id of Object.keys(answers)) {
    if (!fields.has(id)) {
      errors[id] = ["unknown_field"];
    }
  }
  const context = answerContext(formVersion, answers);
  for (const field of fields.values()) {
    if (field.type === "repeat") {
      const value = answerOf(answers, field.id);
      Object.assign(errors, repeatErrors(field, value, context, known, field.id, env));
      continue;
    }
    let code = fieldError(field, answerOf(answers, field.id), context, known, env);
    if (code === null && Object.hasOwn(expected, field.id)) {
      code = calculationError(answerOf(answers, field.id), expected[field.id]);
    }
    if (code !== null) {
      errors[field.id] = [code];
    }
  }
  return errors;
}

/** Relevance first, then presence, then the value itself. */
function fieldError(field, value, context, people, env = {}) {
  const answered = isAnswered(value);
  if (!field.relevant.holds(context, env)) {
    return answered ? "not_relevant" : null;
  }
  if (!answered) {
    return field.required.holds(context, env) ? "required" : null;
  }
  // A type newer than this app (a form published after it was installed) is left to the
  // server to check, rather than stopping the cadre's visit.
  let code = Object.hasOwn(CHECKS, field.type) ? CHECKS[field.type](field, value, people) : null;
  if (code === null && field.doc.choice_filter) {
    const offers = new Set(offered(field.doc, context));
    code = (Array.isArray(value) ? value : [value]).every((item) => offers.has(item))
      ? null
      : "not_offered";
  }
  if (code === null && !field.constraint.holds(context, env)) {
    return "constraint";
  }
  return code;
}

/** The repeat's own code under its id, then each entry's under `id[i].field`. */
function repeatErrors(repeat, value, context, people, key, env = {}) {
  const code = fieldError(repeat, value, context, people, env);
  // an answered repeat with no code is relevant: fieldError checked that first
  if (code !== null || !isAnswered(value)) {
    return code === null ? {} : { [key]: [code] };
  }
  const errors = {};
  const wanted = repeat.repeatCount === null ? null : repeat.repeatCount.evaluate(context, env);
  if (typeof wanted === "number" && value.length !== wanted) {
    errors[key] = [`entry_count:${formatNumber(wanted)}`];
  }
  const seen = new Set();
  value.forEach((entry, index) => {
    const where = `${key}[${index}].`;
    for (const key of Object.keys(entry)) {
      if (!repeat.fields.has(key) && !(key === "person" && repeat.doc.seed)) {
        errors[where + key] = ["unknown_field"];
      }
    }
    if (repeat.doc.seed) {
      const personCode = entryPersonError(answerOf(entry, "person"), seen, people);
      if (personCode !== null) errors[`${where}person`] = [personCode];
    }
    const inside = entryContext(repeat.doc, context, entry);
    const at = { ...env, position: index + 1 };
    const expected = calculateIn(repeat, inside, at);
    for (const child of repeat.fields.values()) {
      if (child.type === "repeat") {
        const inner = answerOf(entry, child.id);
        Object.assign(errors, repeatErrors(child, inner, inside, people, where + child.id, at));
        continue;
      }
      let childCode = fieldError(child, answerOf(entry, child.id), inside, people, at);
      if (childCode === null && Object.hasOwn(expected, child.id)) {
        childCode = calculationError(answerOf(entry, child.id), expected[child.id]);
      }
      if (childCode !== null) errors[where + child.id] = [childCode];
    }
  });
  return errors;
}

/** An entry of a repeat seeded from the people names one of them, each at most once. */
function entryPersonError(person, seen, people) {
  if (!isAnswered(person)) return "required";
  if (typeof person !== "string") return "wrong_type:person";
  if (people !== null && !people.has(person)) return "unknown_person";
  if (seen.has(person)) return "duplicate_person";
  seen.add(person);
  return null;
}

/**
 * The choices a cascading list offers given the other answers, in order (all of them for a
 * list without `choice_filter`): those whose `filter` column equals, as text, each term's
 * answer or literal (a multiple choice's values joined by a space, as XPath reads them), and
 * for a `selected_in` term is one of the values selected there. An unanswered question is the
 * empty text, as in XLSForm; an answer that is no text matches nothing. A value listed under
 * several filters is offered once, when any of them matches.
 * @param {object} formVersion
 * @param {string | object} field its id, or its definition from formVersion.fields
 * @param {object} answers
 * @returns {string[]} the values of the choices offered
 */
export function offeredChoices(formVersion, field, answers) {
  const doc = typeof field === "string" ? fieldOf(formVersion, field).doc : field;
  return offered(doc, answerContext(formVersion, answers));
}

/**
 * The choices a cascading list inside a repeat's entry offers: as offeredChoices, reading
 * the entry's context (entryContext).
 * @param {object} doc the field's definition
 * @param {object} context
 * @returns {string[]}
 */
export function offeredChoicesIn(doc, context) {
  return offered(doc, context);
}

function offered(doc, answers) {
  const expected = new Map();
  const among = new Map(); // selected_in terms: the values selected there
  for (const term of doc.choice_filter ?? []) {
    if (term.selected_in !== undefined) {
      among.set(term.column, new Set(texts(answerOf(answers, term.selected_in)) ?? []));
      continue;
    }
    if (term.field === undefined) {
      expected.set(term.column, term.value);
      continue;
    }
    let answer = answerOf(answers, term.field);
    if (!isAnswered(answer)) answer = "";
    const joined = texts(answer);
    if (joined !== null) answer = joined.join(" "); // a multiple choice, as XPath joins it
    expected.set(term.column, typeof answer === "string" ? answer : null);
  }
  const tag = (choice, column) =>
    Object.hasOwn(choice.filter ?? {}, column) ? choice.filter[column] : "";
  return [...new Set((doc.choices ?? [])
    .filter((choice) => [...expected].every(([column, want]) => tag(choice, column) === want))
    .filter((choice) => [...among].every(([column, chosen]) => chosen.has(tag(choice, column))))
    .map((choice) => choice.value))];
}

/** A list answer of texts (a multiple choice's), else null. */
function texts(answer) {
  return Array.isArray(answer) && answer.every((item) => typeof item === "string")
    ? answer
    : null;
}

/**
 * The problems the answers point to, in form order, for the phone to offer as new problems.
 * @param {object} formVersion
 * @param {object} answers
 * @returns {{field: string, category: string}[]}
 */
export function problemsFound(formVersion, answers, env = {}) {
  const context = answerContext(formVersion, answers);
  return [...fieldsOf(formVersion).values()]
    .filter((field) => field.problem && field.relevant.holds(context, env)
      && field.problem.when.holds(context, env))
    .map((field) => ({ field: field.id, category: field.problem.category }));
}

/**
 * The answers a new visit starts with: each field's `default`, or for a `prefill` field the
 * day or time the visit starts (local time, as the phone's date and time inputs write it),
 * for the fields that are relevant given those defaults. Defaults that make each other
 * irrelevant are dropped until none is, so the prefilled answers never hold a not_relevant
 * answer.
 * @param {object} formVersion
 * @param {Date} [now=new Date()] when the visit starts
 * @returns {object} field id -> a fresh copy of its default
 */
export function defaults(formVersion, now = new Date()) {
  let prefill = Object.fromEntries(formVersion.fields
    .filter((doc) => (doc.default !== undefined && doc.default !== null) || doc.prefill)
    .map((doc) => [doc.id, doc.prefill
      ? prefilled(doc, now)
      : JSON.parse(JSON.stringify(doc.default))]));
  // A dynamic default is evaluated once, in form order, over the defaults before it (as ODK
  // does when a form opens); one that is no valid answer of its field is left out.
  const clock = `${prefilled({ type: "datetime", prefill: "now" }, now)}:${two(now.getSeconds())}`;
  for (const doc of formVersion.fields.filter((each) => each.dynamic_default)) {
    const value = parseExpression(doc.dynamic_default).evaluate(prefill, { clock });
    const field = fieldOf(formVersion, doc);
    if (isAnswered(value) && CHECKS[field.type]?.(field, value, null) === null) {
      prefill[doc.id] = value;
    }
  }
  for (;;) {
    const kept = Object.entries(prefill).filter(([id]) => isRelevant(formVersion, id, prefill));
    if (kept.length === Object.keys(prefill).length) {
      return prefill;
    }
    prefill = Object.fromEntries(kept);
  }
}

const two = (n) => String(n).padStart(2, "0");

/** `today` and `now` as a date, time or datetime answer in the phone's local time. */
function prefilled(doc, now) {
  const day = `${String(now.getFullYear()).padStart(4, "0")}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  const time = `${two(now.getHours())}:${two(now.getMinutes())}`;
  if (doc.type === "date") return day;
  if (doc.type === "time") return time;
  return `${day}T${doc.prefill === "today" ? "00:00" : time}`;
}

function checkText(field, value) {
  if (typeof value !== "string") {
    return "wrong_type:text";
  }
  const maxLength = field.doc.max_length ?? DEFAULT_MAX_LENGTH;
  // Python's len() counts code points, not UTF-16 units: an emoji is one character.
  return [...value].length > maxLength ? `too_long:${maxLength}` : null;
}

function checkNumber(field, value) {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "wrong_type:number";
  }
  return boundError(field, value);
}

function checkInteger(field, value) {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return "wrong_type:integer";
  }
  return boundError(field, value);
}

/** A number within min and max, a whole number of steps above min. */
function checkRange(field, value) {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return "wrong_type:range";
  }
  const error = boundError(field, value);
  const { min, step } = field.doc;
  if (error === null && step !== undefined && min !== undefined) {
    const steps = (value - min) / step;
    if (Math.abs(steps - Math.round(steps)) > STEP_TOLERANCE) {
      return `off_step:${formatNumber(step)}`;
    }
  }
  return error;
}

function boundError(field, value) {
  const { min, max } = field.doc;
  if (min !== undefined && min !== null && value < min) {
    return `too_small:${formatNumber(min)}`;
  }
  if (max !== undefined && max !== null && value > max) {
    return `too_large:${formatNumber(max)}`;
  }
  return null;
}

/**
 * A bound as Python's format_number writes it in a code: integral values without a decimal
 * point (`2`, also for 2.0 and 1e21), others as Python's repr (`0.5`, `1e-05`).
 */
export function formatNumber(number) {
  if (Number.isInteger(number)) {
    return BigInt(number).toString();
  }
  const [mantissa, exponent] = number.toExponential().split("e");
  const power = Number(exponent);
  if (power >= -4) {
    return String(number);
  }
  return `${mantissa}e-${String(-power).padStart(2, "0")}`;
}

function checkBoolean(field, value) {
  return typeof value === "boolean" ? null : "wrong_type:boolean";
}

function checkDate(field, value) {
  if (typeof value !== "string" || !DATE.test(value)) {
    return "wrong_type:date";
  }
  const [year, month, day] = value.split("-").map(Number);
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)
    ? null
    : "invalid_date";
}

/** Days of a month in the proleptic Gregorian calendar (Python's datetime.date). */
function daysIn(year, month) {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

function checkTime(field, value) {
  if (typeof value !== "string" || !TIME.test(value)) {
    return "wrong_type:time";
  }
  return isTime(value) ? null : "invalid_time";
}

/** A local date and time as a phone's datetime input writes it: `2026-05-01T14:30`. */
function checkDatetime(field, value) {
  if (typeof value !== "string" || !DATETIME.test(value)) {
    return "wrong_type:datetime";
  }
  const [day, time] = value.split("T");
  if (checkDate(field, day) !== null) {
    return "invalid_date";
  }
  return isTime(time) ? null : "invalid_time";
}

/** `HH:MM` or `HH:MM:SS` naming a time of the day. */
function isTime(text) {
  const [hours, minutes, seconds = 0] = text.split(":").map(Number);
  return hours < 24 && minutes < 60 && seconds < 60;
}

/** A note is text to read; it takes no answer. */
function checkNote() {
  return "wrong_type:note";
}

function checkHidden(field, value) {
  return typeof value === "string" ? null : "wrong_type:hidden";
}

function checkGeopoint(field, value) {
  return isPoint(value) ? null : "wrong_type:geopoint";
}

/** A line (geotrace) or an area (geoshape): a list of enough points, stored as given. */
function checkGeopoints(field, value) {
  const fits = Array.isArray(value) && value.length >= LEAST_POINTS[field.type]
    && value.every(isPoint);
  return fits ? null : `wrong_type:${field.type}`;
}

/**
 * `{lat, lon}` in degrees, with the phone's `accuracy` (metres, at least 0) and `altitude`
 * when it gives them.
 */
export function isPoint(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return false;
  }
  const keys = Object.keys(value);
  if (!Object.hasOwn(value, "lat") || !Object.hasOwn(value, "lon")
    || !keys.every((key) => POINT_KEYS.has(key))) {
    return false;
  }
  if (!keys.every((key) => typeof value[key] === "number" && Number.isFinite(value[key]))) {
    return false;
  }
  return Math.abs(value.lat) <= 90 && Math.abs(value.lon) <= 180 && (value.accuracy ?? 0) >= 0;
}

function checkSingleChoice(field, value) {
  if (typeof value !== "string") {
    return "wrong_type:single_choice";
  }
  return field.choices.has(value) ? null : "not_a_choice";
}

function checkMultipleChoice(field, value) {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    return "wrong_type:multiple_choice";
  }
  if (!value.every((item) => field.choices.has(item))) {
    return "not_a_choice";
  }
  return new Set(value).size === value.length ? null : "duplicate_choice";
}

function checkPerson(field, value, people) {
  if (typeof value !== "string") {
    return "wrong_type:person";
  }
  return people === null || people.has(value) ? null : "unknown_person";
}

/** A photo, recording or file is stored by content: the answer is its sha256. */
function checkFile(field, value) {
  return typeof value === "string" && SHA256.test(value) ? null : `wrong_type:${field.type}`;
}

/** The text a barcode holds, scanned or typed. */
function checkBarcode(field, value) {
  return typeof value === "string" ? null : "wrong_type:barcode";
}

/** Choice values in the order of preference: all of them or some, each at most once. */
function checkRank(field, value) {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    return "wrong_type:rank";
  }
  return checkMultipleChoice(field, value);
}

/** A list of entries, each an object of the repeat's field ids to answers. */
function checkRepeat(field, value) {
  return Array.isArray(value) && value.every(isEntry) ? null : "wrong_type:repeat";
}

/** A calculation's value: text, a number, a boolean or a list of them. */
function checkCalculate(field, value) {
  const scalar = (item) => ["string", "boolean"].includes(typeof item)
    || (typeof item === "number" && Number.isFinite(item));
  const fits = scalar(value) || (Array.isArray(value) && value.every(scalar));
  return fits ? null : "wrong_type:calculate";
}

const CHECKS = {
  text: checkText,
  number: checkNumber,
  boolean: checkBoolean,
  date: checkDate,
  single_choice: checkSingleChoice,
  multiple_choice: checkMultipleChoice,
  person: checkPerson,
  photo: checkFile,
  integer: checkInteger,
  range: checkRange,
  time: checkTime,
  datetime: checkDatetime,
  note: checkNote,
  hidden: checkHidden,
  geopoint: checkGeopoint,
  geotrace: checkGeopoints,
  geoshape: checkGeopoints,
  repeat: checkRepeat,
  audio: checkFile,
  video: checkFile,
  file: checkFile,
  barcode: checkBarcode,
  rank: checkRank,
  calculate: checkCalculate,
};
