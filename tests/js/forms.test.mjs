// The PWA's forms module against tests/vectors/forms_validation.json (pinned by forms/).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import {
  calculate, defaults, describe, ExpressionError, formatNumber, isAnswered, isRelevant,
  isRequired, MESSAGES, messageFor, parseExpression, problemsFound, validateAnswers,
  withCalculations,
} from "../../pwa_static/js/forms.js";

const readJson = (relative) => JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8"));
const vectors = readJson("../vectors/forms_validation.json");

/** Every shipped form version as the `data` of its form record (FormVersion.to_record_data). */
const shipped = readdirSync(new URL("../../forms/definitions/", import.meta.url))
  .filter((name) => name.endsWith(".json"))
  .flatMap((name) => {
    const definition = readJson(`../../forms/definitions/${name}`);
    return definition.versions.map((version) => ({ form_id: definition.form_id, ...version }));
  });
const form = (formId) => shipped.find((each) => each.form_id === formId);

for (const vector of vectors) {
  test(`vector: ${vector.name}`, () => {
    if ("form" in vector) {
      const context = { clock: vector.clock ?? null };
      assert.deepEqual(
        validateAnswers(vector.form, vector.answers, vector.people, context), vector.errors);
    } else if (vector.parse_error) {
      assert.throws(() => parseExpression(vector.expression), ExpressionError);
    } else {
      const context = { clock: vector.clock ?? null, position: vector.position ?? null };
      assert.deepEqual(
        parseExpression(vector.expression).evaluate(vector.answers, context), vector.result);
    }
  });
}

test("parse errors point at the code point where the text goes wrong", () => {
  const cases = [["😀", 0], ["a == 😀", 5], ["'😀' == x y", 9], ["a and", 5], ["'abc", 0]];
  for (const [text, position] of cases) {
    assert.throws(() => parseExpression(text), (error) => error.position === position, text);
  }
});

test("strings order by code point, as in Python: an emoji sorts after U+FF01", () => {
  // UTF-16 order, JavaScript's `<`, would put the emoji's surrogates first.
  assert.equal(parseExpression("x > '！'").evaluate({ x: "😀" }), true);
  assert.equal(parseExpression("x < 'b'").evaluate({ x: "😀" }), false);
  assert.equal(parseExpression("x < 'ab'").evaluate({ x: "a" }), true);
});

test("a condition is parsed once and shared", () => {
  assert.equal(parseExpression("a == 1"), parseExpression("a == 1"));
});

test("no eval: conditions never reach eval or Function", () => {
  for (const name of ["expressions.js", "forms.js"]) {
    const source = readFileSync(new URL(`../../pwa_static/js/${name}`, import.meta.url), "utf8");
    assert.doesNotMatch(source, /\beval\s*\(|\bFunction\s*\(/, name);
  }
});

test("a field named like an Object property is unanswered until answered", () => {
  const version = {
    version: 1,
    fields: [{ id: "constructor", type: "text", label: {}, required: true }],
  };
  assert.deepEqual(validateAnswers(version, {}), { constructor: ["required"] });
  assert.equal(parseExpression("constructor == null").evaluate({}), true);
});

test("isAnswered: absent, null, empty string and empty list are unanswered", () => {
  for (const value of [undefined, null, "", []]) {
    assert.equal(isAnswered(value), false, JSON.stringify(value));
  }
  for (const value of [0, false, " ", ["a"], {}]) {
    assert.equal(isAnswered(value), true, JSON.stringify(value));
  }
});

test("isRelevant follows the relevant condition, by field id or definition", () => {
  const weekly = form("weekly_visit");
  const waterIssue = weekly.fields.find((field) => field.id === "water_issue");
  assert.equal(isRelevant(weekly, "water_issue", { water_ok: true }), false);
  assert.equal(isRelevant(weekly, waterIssue, { water_ok: false }), true);
  assert.equal(isRelevant(weekly, "water_ok", {}), true);
  assert.throws(() => isRelevant(weekly, "no_such_field", {}), /no field/);
});

test("isRequired holds only while the field is relevant", () => {
  const weekly = form("weekly_visit");
  assert.equal(isRequired(weekly, "water_issue", { water_ok: false }), true);
  assert.equal(isRequired(weekly, "water_issue", { water_ok: true }), false);
  assert.equal(isRequired(weekly, "health_note", {}), false);
});

test("problemsFound offers a problem per failed check, in form order", () => {
  const weekly = form("weekly_visit");
  const answers = { ...defaults(weekly), water_ok: false, food_ok: false };
  assert.deepEqual(problemsFound(weekly, answers), [
    { field: "food_ok", category: "food" },
    { field: "water_ok", category: "water" },
  ]);
  assert.deepEqual(problemsFound(weekly, defaults(weekly)), []);
});

test("problemsFound skips a field that is not relevant", () => {
  const version = {
    version: 1,
    fields: [
      { id: "visited", type: "boolean", label: {} },
      {
        id: "ok", type: "boolean", label: {}, relevant: "visited == true",
        problem: { when: "ok == false", category: "other" },
      },
    ],
  };
  assert.deepEqual(problemsFound(version, { visited: false, ok: false }), []);
  assert.deepEqual(problemsFound(version, { visited: true, ok: false }), [
    { field: "ok", category: "other" },
  ]);
});

test("defaults of every shipped form version are valid answers", () => {
  assert.ok(shipped.length >= 2);
  for (const version of shipped) {
    const prefill = defaults(version);
    const withDefault = version.fields.filter((field) => field.default !== undefined);
    assert.ok(Object.keys(prefill).length > 0, version.form_id);
    assert.ok(Object.keys(prefill).length <= withDefault.length, version.form_id);
    const errors = validateAnswers(version, prefill);
    const onlyMissing = Object.values(errors).every((codes) => codes[0] === "required");
    assert.ok(onlyMissing, `${version.form_id}: ${JSON.stringify(errors)}`);
  }
  assert.deepEqual(defaults(form("weekly_visit")), {
    health_asked: false, knowledge_shared: false, difficulty_solved: false,
    comfort_given: false, hygiene_improved: false, plan_updated: false,
    food_ok: true, clothing_ok: true, education_ok: true, medical_ok: true,
    housing_ok: true, water_ok: true,
  });
});

test("defaults drop a default that another default makes irrelevant, and what hangs on it", () => {
  const version = {
    version: 1,
    fields: [
      { id: "ok", type: "boolean", label: {}, default: true },
      { id: "issue", type: "text", label: {}, default: "漏雨", relevant: "ok == false" },
      { id: "kinds", type: "multiple_choice", label: {}, default: ["roof"],
        choices: [{ value: "roof", label: {} }], relevant: "issue != null" },
    ],
  };
  assert.deepEqual(defaults(version), { ok: true });
});

test("a dynamic default is evaluated once over the defaults before it, on the visit's clock", () => {
  const version = {
    version: 1,
    fields: [
      { id: "members", type: "integer", label: {}, default: 3 },
      { id: "adults", type: "integer", label: {}, dynamic_default: "members - 1" },
      { id: "seen", type: "text", label: {}, dynamic_default: "concat('走访 ', today())" },
      { id: "half", type: "integer", label: {}, dynamic_default: "members / 2" }, // 1.5: no
      { id: "none", type: "integer", label: {}, dynamic_default: "missing + 1" },
    ],
  };
  const now = new Date(2026, 4, 1, 9, 30, 5);
  assert.deepEqual(defaults(version, now), { members: 3, adults: 2, seen: "走访 2026-05-01" });
});

test("defaults are fresh copies", () => {
  const version = {
    version: 1,
    fields: [{ id: "kinds", type: "multiple_choice", label: {}, default: ["a"],
      choices: [{ value: "a", label: {} }] }],
  };
  defaults(version).kinds.push("b");
  assert.deepEqual(defaults(version), { kinds: ["a"] });
});

test("describe words every code in Chinese and English", () => {
  assert.equal(describe("required"), "必填");
  assert.equal(describe("required", "en"), "is required");
  assert.equal(describe("required", "en-GB"), "is required");
  assert.equal(describe("required", "fr"), "必填");
  assert.equal(describe("too_small:0.5", "zh-CN"), "不能小于 0.5");
  assert.equal(describe("too_long:20", "en"), "must be at most 20 characters");
  assert.equal(describe("too_large:$&", "en"), "must be at most $&");
  assert.deepEqual(Object.keys(MESSAGES.en), Object.keys(MESSAGES["zh-CN"]));
});

test("describe refuses codes that have no message", () => {
  for (const code of ["too_small", "wrong_type:colour", "nonsense", "required:1", "toString"]) {
    assert.throws(() => describe(code, "en"), /unknown message code/, code);
  }
});

test("formatNumber writes bounds as Python's format_number", () => {
  const cases = [
    [2, "2"], [-3, "-3"], [0.5, "0.5"], [0.0001, "0.0001"], [0.00001, "1e-05"],
    [-1.5e-7, "-1.5e-07"], [1e21, "1000000000000000000000"], [123.25, "123.25"],
  ];
  for (const [number, text] of cases) {
    assert.equal(formatNumber(number), text, String(number));
  }
});

test("prefill gives the day and time the visit starts, in local time", () => {
  const version = {
    form_id: "t", version: 1, fields: [
      { id: "day", type: "date", label: {}, prefill: "today" },
      { id: "at", type: "time", label: {}, prefill: "now" },
      { id: "when", type: "datetime", label: {}, prefill: "now" },
      { id: "n", type: "integer", label: {}, default: 2 },
    ],
  };
  const answers = defaults(version, new Date(2026, 4, 1, 9, 5));
  assert.deepEqual(answers, { day: "2026-05-01", at: "09:05", when: "2026-05-01T09:05", n: 2 });
  assert.deepEqual(validateAnswers(version, answers), {});
});

test("a form's own required and constraint messages word its codes", () => {
  const field = {
    id: "n", type: "integer", required_message: { "zh-CN": "请填人数", en: "How many?" },
    constraint_message: { "zh-CN": "人数不对", en: "Wrong count" },
  };
  assert.equal(messageFor(field, "required", "zh-CN"), "请填人数");
  assert.equal(messageFor(field, "too_large:20", "en"), "Wrong count");
  assert.equal(messageFor(field, "wrong_type:integer", "en"), "must be a whole number");
  assert.equal(messageFor({ id: "x" }, "required", "zh-CN"), "必填");
});

test("a field type newer than the app is left to the server, not a crash", () => {
  const version = { form_id: "t", version: 1, fields: [{ id: "x", type: "hologram", label: {} }] };
  assert.deepEqual(validateAnswers(version, { x: "anything" }), {});
});

test("the phone stores each calculation as computed, after those it reads, and drops a null one", () => {
  const version = {
    version: 1,
    fields: [
      { id: "label", type: "calculate", label: {}, calculation: "concat('人均 ', per_capita)" },
      { id: "per_capita", type: "calculate", label: {}, calculation: "income / members" },
      { id: "income", type: "integer", label: {} },
      { id: "members", type: "integer", label: {} },
    ],
  };
  assert.deepEqual(calculate(version, { income: 9000, members: 3 }),
    { per_capita: 3000, label: "人均 3000" });
  const saved = withCalculations(version, { income: 9000, members: 0, per_capita: 7 });
  assert.deepEqual(saved, { income: 9000, members: 0, label: "人均 " });
  assert.deepEqual(validateAnswers(version, saved), {});
});

test("withCalculations stores each entry's calculations, which the form's own then read", () => {
  const label = (id) => ({ "zh-CN": id, en: id });
  const version = {
    form_id: "t", version: 1, title: label("t"), policy: null,
    fields: [
      { id: "member", type: "repeat", label: label("member"), fields: [
        { id: "income", type: "number", label: label("income") },
        { id: "yearly", type: "calculate", label: label("yearly"), calculation: "income * 12" },
        { id: "kids", type: "repeat", label: label("kids"), fields: [
          { id: "nth", type: "calculate", label: label("nth"), calculation: "position() + yearly" },
        ] },
      ] },
      { id: "total", type: "calculate", label: label("total"), calculation: "sum(yearly)" },
    ],
  };
  const saved = withCalculations(version, {
    member: [{ income: 100, yearly: 5, kids: [{}, {}] }, { kids: [] }],
  });
  assert.deepEqual(saved, {
    member: [{ income: 100, yearly: 1200, kids: [{ nth: 1201 }, { nth: 1202 }] }, { kids: [] }],
    total: 1200,
  });
  assert.deepEqual(validateAnswers(version, saved), {});
});
