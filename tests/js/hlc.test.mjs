// The PWA's hybrid logical clock against tests/vectors/hlc_cases.json (written by sync/hlc.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  Clock, formatHlc, HlcError, isHlc, parseHlc, ZERO,
} from "../../pwa_static/js/hlc.js";

const vectors = JSON.parse(
  readFileSync(new URL("../vectors/hlc_cases.json", import.meta.url), "utf8"),
);

test("ZERO is the Python ZERO", () => {
  assert.equal(ZERO, vectors.zero);
});

test("formatHlc writes (ms, counter) as Python does", () => {
  for (const { ms, counter, hlc } of vectors.format) {
    assert.equal(formatHlc(ms, counter), hlc);
  }
});

test("formatHlc refuses what does not fit the fixed width", () => {
  for (const { ms, counter } of vectors.format_errors) {
    assert.throws(() => formatHlc(ms, counter), HlcError, `${ms}, ${counter}`);
  }
  assert.throws(() => formatHlc(1.5), HlcError);
});

test("formatHlc defaults the counter to 0", () => {
  assert.equal(formatHlc(1), "000000000000001-0000");
});

test("parseHlc reads what formatHlc writes", () => {
  for (const { hlc, ms, counter } of vectors.parse) {
    assert.deepEqual(parseHlc(hlc), [ms, counter]);
    assert.equal(isHlc(hlc), true);
  }
});

test("anything else is no hlc and does not parse", () => {
  const alsoRefused = [undefined, "001763971200000-0000\n", "٠٠١٧٦٣٩٧١٢٠٠٠٠٠-0000"];
  for (const value of [...vectors.not_hlc, ...alsoRefused]) {
    assert.equal(isHlc(value), false, JSON.stringify(value));
    assert.throws(() => parseHlc(value), HlcError, JSON.stringify(value));
  }
});

test("string order is time order", () => {
  for (const { a, b, order } of vectors.compare) {
    const stringOrder = a < b ? -1 : a > b ? 1 : 0;
    assert.equal(stringOrder, order, `${a} vs ${b}`);
  }
});

for (const { name, last, steps } of vectors.clocks) {
  test(`clock: ${name}`, () => {
    let wall = 0;
    const clock = new Clock(last, () => wall);
    for (const step of steps) {
      wall = step.physical;
      const tick = () => (step.observe === null ? clock.now() : clock.observe(step.observe));
      if (step.error) {
        assert.throws(tick, HlcError);
      } else {
        assert.equal(tick(), step.result);
      }
      assert.equal(clock.last, step.last);
    }
  });
}

test("a clock refuses to resume from a value that is no hlc", () => {
  assert.throws(() => new Clock("yesterday"), HlcError);
});

test("a clock without a fake follows Date.now()", () => {
  const before = Date.now();
  const [ms] = parseHlc(new Clock().now());
  assert.ok(ms >= before && ms <= Date.now());
});
