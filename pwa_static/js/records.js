/**
 * Records as this phone sees them: the version pulled last, with this phone's own changes on
 * top until a pull brings back a version that includes them (CONTRACT §5: "local pending
 * edits stay on top of pulled records").
 *
 * An entry of the `records` store is `{type, id, version, data, base, hh, at}`:
 * - `version`: the server version pulled last; 0 for a record created here, not pulled yet;
 * - `data`: what the screens show;
 * - `base`: present only while local ops are on top — the pulled data they apply to, or null
 *   for a record created here;
 * - `hh`, `at`: index keys — the household a record belongs to, a visit's time in ms.
 *
 * Ops on top are those still in the outbox and those acknowledged (`sent`) whose version the
 * phone has not pulled yet; so an answer lost on the way, or a pull that fails after a push,
 * never makes an edit disappear from the screen.
 *
 * @module records
 */

/** The data after one op: what the server will hold once it applies it. */
function applyOp(data, op) {
  if (op.action === "create") return { ...op.data };
  if (op.action === "void") return { ...data, voided: true, void_reason: op.data.reason };
  return { ...data, ...op.data };
}

/** The time of a visit in ms: the server-corrected time when known (a phone's clock may be
 *  months off, CONTRACT §7), else what the phone recorded. */
export function visitTime(data) {
  const time = Date.parse(data.visited_at_effective || data.visited_at);
  return Number.isNaN(time) ? undefined : time;
}

/** A store entry with its index keys. `base` undefined: no local changes on top. */
function entry(type, id, version, data, base = undefined) {
  const item = { type, id, version, data };
  if (base !== undefined) item.base = base;
  if (data.household_id) item.hh = data.household_id;
  if (type === "visit") item.at = visitTime(data);
  return item;
}

/**
 * The entry of a record given what it rests on (`base`: pulled data, or null when created
 * here) and the ops on top, in device_seq order; null when nothing is left of it (a create
 * that the server rejected).
 */
export function compose(type, id, version, base, ops) {
  if (base === null && !ops.some((op) => op.action === "create")) return null;
  const data = ops.reduce(applyOp, base);
  return entry(type, id, version, data, ops.length ? base : undefined);
}

/** The ops of one record on top of its pulled version: acknowledged but not pulled, then queued. */
async function opsOnTop(t, type, id, pulledVersion) {
  const key = [type, id];
  const sent = (await t.all("sent", key, "record")).filter((op) => op.version > pulledVersion);
  const queued = await t.all("outbox", key, "record");
  return [...sent, ...queued].sort((a, b) => a.device_seq - b.device_seq);
}

/** Recompute one record after an op was added or taken away, inside a write transaction. */
export async function recompute(t, type, id) {
  const current = await t.get("records", [type, id]);
  const version = current?.version ?? 0;
  const base = current === undefined ? null : "base" in current ? current.base : current.data;
  const next = compose(type, id, version, base, await opsOnTop(t, type, id, version));
  if (next) t.put("records", next);
  else t.delete("records", [type, id]);
  return next;
}
