/**
 * Time as the visit work counts it: weeks (ISO, from Monday) and calendar months in
 * Asia/Shanghai — UTC+8 all year, no daylight saving since 1991 — whatever zone the phone
 * is set to. Plain arithmetic, no Intl: it runs for every household on every render.
 *
 * @module time
 */

const DAY = 86_400_000;
const SHANGHAI = 8 * 3_600_000;

/** The day number (days since 1970-01-01) of a moment, in Shanghai. */
function shanghaiDay(ms) {
  return Math.floor((ms + SHANGHAI) / DAY);
}

/** Monday 00:00 in Shanghai of the week holding `ms`. */
function weekStart(ms) {
  const day = shanghaiDay(ms);
  const weekday = (day + 3) % 7; // 0 = Monday: day 0, 1970-01-01, was a Thursday
  return (day - weekday) * DAY - SHANGHAI;
}

/** The 1st, 00:00 in Shanghai, of the month holding `ms`, moved by `offset` months. */
function monthStart(ms, offset = 0) {
  const date = new Date(ms + SHANGHAI);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offset, 1) - SHANGHAI;
}

/** Where the current and the previous period of a visit policy start, and the next one. */
export function periods(policy, now) {
  if (policy === "monthly") {
    return { previous: monthStart(now, -1), current: monthStart(now), next: monthStart(now, 1) };
  }
  const current = weekStart(now);
  return { previous: current - 7 * DAY, current, next: current + 7 * DAY };
}

/**
 * A household's state in the current period, from the time of its last non-voided visit:
 * done (visited this period), due (not yet, but visited last period), overdue (neither).
 */
export function visitStatus(policy, lastVisit, now) {
  const { previous, current } = periods(policy, now);
  if (lastVisit !== undefined && lastVisit >= current) return "done";
  if (lastVisit !== undefined && lastVisit >= previous) return "due";
  return "overdue";
}

/** The ISO week (year and number) holding `ms`, in Shanghai. */
export function isoWeek(ms) {
  const day = shanghaiDay(ms);
  const thursday = day - ((day + 3) % 7) + 3; // an ISO week belongs to the year of its Thursday
  const year = new Date(thursday * DAY).getUTCFullYear();
  return { year, week: Math.floor((thursday - Date.UTC(year, 0, 1) / DAY) / 7) + 1 };
}

/** The parts of a moment on a Shanghai calendar and clock. */
export function shanghaiParts(ms) {
  const date = new Date(ms + SHANGHAI);
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
    hour: date.getUTCHours(),
    minute: date.getUTCMinutes(),
  };
}

/** YYYY-MM-DD in Shanghai, `days` from `ms`. */
export function isoDate(ms, days = 0) {
  return new Date(ms + SHANGHAI + days * DAY).toISOString().slice(0, 10);
}

/** Now as ISO 8601 with the phone's own offset, e.g. 2026-11-24T09:31:00+08:00: what the
 *  phone recorded (CONTRACT §4 visited_at, §5 device_time). */
export function localIso(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 19);
  return `${local}${offset >= 0 ? "+" : "-"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}
