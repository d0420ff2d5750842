/**
 * Hybrid logical clocks (CONTRACT §7), the same algorithm as sync/hlc.py.
 *
 * An HLC is a fixed-width string whose lexicographic order is its time order: 15 decimal
 * digits of milliseconds since the Unix epoch, "-", 4 hex digits of counter. Comparing two
 * HLCs is therefore plain string comparison (`a < b`), here as on the server and in SQL.
 * The phone's clock may be wrong by months; the HLC stays monotonic whatever it says and
 * moves forward to every server_hlc the phone sees.
 *
 * @module hlc
 */

export const ZERO = "000000000000000-0000";
export const MAX_COUNTER = 0xffff;

const HLC_PATTERN = /^[0-9]{15}-[0-9a-f]{4}$/;
const MAX_MILLIS = 10 ** 15;

/** A value that is not an HLC, or numbers that cannot make one. */
export class HlcError extends Error {
  constructor(message) {
    super(message);
    this.name = "HlcError";
  }
}

/**
 * The canonical string of (ms, counter). Refuses what does not fit the fixed width, so that
 * string order can never disagree with time order.
 * @param {number} ms milliseconds since the epoch, an integer in [0, 10^15)
 * @param {number} [counter=0] an integer in [0, 0xFFFF]
 * @returns {string}
 */
export function formatHlc(ms, counter = 0) {
  const fits = (n, below) => Number.isInteger(n) && n >= 0 && n < below;
  if (!fits(ms, MAX_MILLIS) || !fits(counter, MAX_COUNTER + 1)) {
    throw new HlcError(`hlc out of range: ${ms}, ${counter}`);
  }
  return `${String(ms).padStart(15, "0")}-${counter.toString(16).padStart(4, "0")}`;
}

/**
 * [ms, counter] of an HLC string.
 * @param {string} value
 * @returns {[number, number]}
 * @throws {HlcError} for anything that is not an HLC
 */
export function parseHlc(value) {
  if (!isHlc(value)) {
    const shown = typeof value === "string" ? JSON.stringify(value) : typeof value;
    throw new HlcError(`not an hlc: ${shown}`);
  }
  return [Number(value.slice(0, 15)), parseInt(value.slice(16), 16)];
}

/**
 * Whether a value is an HLC string (ASCII digits only, nothing after the counter).
 * @param {unknown} value
 * @returns {boolean}
 */
export function isHlc(value) {
  return typeof value === "string" && HLC_PATTERN.test(value);
}

/**
 * A monotonic HLC: `now()` stamps a local event, `observe(remote)` a timestamp seen from
 * another clock (the server's). Keep `last` across restarts so the clock never runs back.
 */
export class Clock {
  #last;
  #physical;

  /**
   * @param {string} [last=ZERO] the last HLC this clock handed out (from storage)
   * @param {() => number} [physical] milliseconds since the epoch; tests hand in a fake
   */
  constructor(last = ZERO, physical = () => Date.now()) {
    parseHlc(last);
    this.#last = last;
    this.#physical = physical;
  }

  /** The last HLC handed out. */
  get last() {
    return this.#last;
  }

  /** The HLC of a local event. */
  now() {
    return this.observe(ZERO);
  }

  /**
   * The next HLC after both our last one and `remote`. The counter only breaks ties within a
   * millisecond; when it would overflow, the clock moves to the next millisecond instead.
   * @param {string} remote
   * @returns {string}
   * @throws {HlcError} when `remote` is not an HLC (the clock is then unchanged)
   */
  observe(remote) {
    const wall = this.#physical();
    const [lastMs, lastCount] = parseHlc(this.#last);
    const [remoteMs, remoteCount] = parseHlc(remote);
    let ms = Math.max(wall, lastMs, remoteMs);
    let counter = 0;
    if (ms === lastMs && ms === remoteMs) {
      counter = Math.max(lastCount, remoteCount) + 1;
    } else if (ms === lastMs) {
      counter = lastCount + 1;
    } else if (ms === remoteMs) {
      counter = remoteCount + 1;
    }
    if (counter > MAX_COUNTER) {
      ms += 1;
      counter = 0;
    }
    this.#last = formatHlc(ms, counter);
    return this.#last;
  }
}
