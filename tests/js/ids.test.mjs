// The PWA's ids (pwa_static/js/ids.js): UUID version 7, as sync/ids.py makes them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { newId } from "../../pwa_static/js/ids.js";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const millisOf = (id) => parseInt(id.replaceAll("-", "").slice(0, 12), 16);

test("an id is a version 7 UUID whose first 48 bits are the clock's milliseconds", () => {
  for (const millis of [0, 1, 1796362741520, 2 ** 48 - 1]) {
    const id = newId(millis);
    assert.match(id, V7);
    assert.equal(millisOf(id), millis);
  }
  const before = Date.now();
  const now = millisOf(newId());
  assert.ok(before <= now && now <= Date.now());
});

test("a clock outside what 48 bits hold is clamped, not wrapped", () => {
  assert.equal(millisOf(newId(-5)), 0);
  assert.equal(millisOf(newId(2 ** 60)), 2 ** 48 - 1);
});

test("ids of later milliseconds sort later, and no two ids are alike", () => {
  const ids = [];
  for (let millis = 1796362741000; millis < 1796362741000 + 2000; millis += 1) {
    ids.push(newId(millis), newId(millis));
  }
  const byTime = ids.map((id) => millisOf(id));
  assert.deepEqual(byTime, [...byTime].sort((a, b) => a - b));
  assert.deepEqual(ids.filter((_, i) => i % 2 === 0), [...ids.filter((_, i) => i % 2 === 0)].sort());
  assert.equal(new Set(ids).size, ids.length);
});
