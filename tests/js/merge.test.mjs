// The PWA's field merge against tests/vectors/merge_cases.json (written by sync/merge.py).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  CONFLICT_NAMESPACE, conflictFor, FIELD_RULES, heads, jsonEqual, mergeWrite, resolve, ruleFor,
  saw, uuid5,
} from "../../pwa_static/js/merge.js";

const vectors = JSON.parse(
  readFileSync(new URL("../vectors/merge_cases.json", import.meta.url), "utf8"),
);

const opIds = (writes) => writes.map((write) => write.op_id);

test("FIELD_RULES are the rules of sync/records.py", () => {
  assert.deepEqual(FIELD_RULES, vectors.field_rules);
  assert.equal(CONFLICT_NAMESPACE, vectors.conflict_namespace);
});

test("ruleFor falls back to latest", () => {
  assert.equal(ruleFor("problem", "status"), "least_closed");
  assert.equal(ruleFor("person", "flags"), "union");
  assert.equal(ruleFor("household", "flags"), "latest");
  assert.equal(ruleFor("person", "constructor"), "latest");
});

test("uuid5 matches Python's uuid.uuid5 byte for byte", () => {
  for (const { name, uuid } of vectors.uuid5) {
    assert.equal(uuid5(CONFLICT_NAMESPACE, name), uuid, JSON.stringify(name));
  }
});

/** uuid5 by the book, on node's own SHA-1, to check the hand-written one at every length. */
function referenceUuid5(namespace, name) {
  const hash = createHash("sha1")
    .update(Buffer.from(namespace.replaceAll("-", ""), "hex"))
    .update(name, "utf8")
    .digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return [0, 8, 12, 16, 20].map((start, i, starts) => hex.slice(start, starts[i + 1])).join("-");
}

test("the hand-written SHA-1 agrees with node's for names of 0 to 300 characters", () => {
  for (let length = 0; length <= 300; length++) {
    const name = "走a😀|".repeat(length).slice(0, length);
    assert.equal(uuid5(CONFLICT_NAMESPACE, name), referenceUuid5(CONFLICT_NAMESPACE, name));
  }
});

for (const vector of vectors.cases) {
  test(`merge: ${vector.name}`, () => {
    const { rule, writes } = vector;
    writes.forEach((write, i) => {
      const seen = writes.flatMap((other, j) => (saw(write, other) ? [j] : []));
      assert.deepEqual(seen, vector.saw[i], `what write ${i} saw`);
    });
    const final = heads(writes);
    assert.deepEqual(opIds(final), vector.heads);
    const { value, credited } = resolve(rule, final);
    assert.deepEqual({ value, credited: credited.op_id }, vector.resolve);
    assert.deepEqual(conflictFor(rule, final, "open"), vector.conflict);
    writes.forEach((write, i) => {
      assert.deepEqual(mergeWrite(rule, writes.slice(0, i), write), vector.steps[i], `step ${i}`);
    });
  });
}

test("resolve needs a write", () => {
  assert.throws(() => resolve("latest", []), /at least one/);
});

test("heads of no writes are none", () => {
  assert.deepEqual(heads([]), []);
});

test("jsonEqual is Python's == on JSON values", () => {
  const equal = [
    [1, 1.0], [true, 1], [false, 0], [true, 1.0], [null, null], ["走", "走"],
    [[1, [true]], [1.0, [1]]], [{ a: 1, b: [2] }, { b: [2], a: 1 }], [[], []], [{}, {}],
  ];
  const unequal = [
    [1, "1"], [true, "true"], [null, 0], [null, false], [[], {}], [[1, 2], [2, 1]],
    [{ a: 1 }, { a: 1, b: null }], [{ a: 1 }, { b: 1 }], [[1], [1, 1]], [true, 2], ["", null],
  ];
  for (const [a, b] of equal) {
    assert.equal(jsonEqual(a, b), true, `${JSON.stringify(a)} == ${JSON.stringify(b)}`);
    assert.equal(jsonEqual(b, a), true, `${JSON.stringify(b)} == ${JSON.stringify(a)}`);
  }
  for (const [a, b] of unequal) {
    assert.equal(jsonEqual(a, b), false, `${JSON.stringify(a)} != ${JSON.stringify(b)}`);
    assert.equal(jsonEqual(b, a), false, `${JSON.stringify(b)} != ${JSON.stringify(a)}`);
  }
});

test("a write missing user_id is credited with null, as Python's default", () => {
  const write = (device, hlc, value) => ({
    record_type: "household", record_id: "h", field: "phone", op_id: `op-${device}`,
    version: device === "a" ? 5 : 6, base_version: 3, device_id: device, device_seq: 1, hlc, value,
  });
  const conflict = conflictFor("latest", [write("a", "1", "x"), write("b", "2", "y")], "open");
  assert.deepEqual(conflict.kept, { value: "y", by: "b", user_id: null, hlc: "2", op_id: "op-b" });
});

test("resolve credits the first of writes that rank equal, as Python's max()", () => {
  const write = (opId) => ({ op_id: opId, device_id: "a", hlc: "1", value: opId });
  assert.equal(resolve("latest", [write("first"), write("second")]).credited.op_id, "first");
});
