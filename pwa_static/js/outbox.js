/**
 * The outbox (CONTRACT §5): every change made on this phone becomes an op with the next
 * `device_seq` (1, 2, 3 … for the device's life, no gaps) and a fresh hybrid logical clock
 * reading, written in the same IndexedDB transaction as the record it changes. A crash can
 * therefore never leave a change without its op, an op without its seq, or a seq used twice
 * (two open tabs share the counter: it is read and bumped inside the transaction).
 *
 * Ops are stored exactly as they are sent: a retry must send the same payload, or the server
 * would see the same op_id with another fingerprint.
 *
 * @module outbox
 */

import { Clock, ZERO } from "./hlc.js";
import { newId } from "./ids.js";
import { jsonEqual } from "./merge.js";
import { recompute } from "./records.js";

const STORES = ["meta", "records", "outbox", "sent"];

/** A new record (visit, problem) made here; resolves to its id. */
export async function create(db, type, data) {
  const id = newId();
  await db.write(STORES, (t) => queue(t, { action: "create", type, id, base_version: null, data }));
  return id;
}

/**
 * Change some fields of a record; only fields whose value differs are sent, with the
 * version of the record this phone had (null for one created here and not pulled yet).
 * Resolves to the op, or null when nothing changed.
 */
export function update(db, type, id, fields) {
  return db.write(STORES, async (t) => {
    const current = await t.get("records", [type, id]);
    if (!current) throw new Error(`no ${type} ${id} on this phone`);
    const changed = {};
    for (const [name, value] of Object.entries(fields)) {
      if (!jsonEqual(current.data[name] ?? null, value ?? null)) changed[name] = value;
    }
    if (Object.keys(changed).length === 0) return null;
    const base = current.version || null;
    return queue(t, { action: "update", type, id, base_version: base, data: changed });
  });
}

/** Void a visit (visits are never edited in place; CONTRACT §5). */
export function voidVisit(db, id, reason) {
  return db.write(STORES, (t) =>
    queue(t, { action: "void", type: "visit", id, base_version: null, data: { reason } }),
  );
}

/** Number the op, stamp it, queue it and show it on the record: one transaction. */
async function queue(t, change) {
  const seq = (await t.get("meta", "next_seq")) ?? 1;
  const clock = new Clock((await t.get("meta", "hlc")) ?? ZERO);
  const op = { op_id: newId(), device_seq: seq, hlc: clock.now(), ...change };
  t.put("outbox", op);
  t.put("meta", seq + 1, "next_seq");
  t.put("meta", clock.last, "hlc");
  await recompute(t, op.type, op.id);
  return op;
}

/** The oldest `size` queued ops from `fromSeq` on, in device_seq order. */
export function batch(db, size, fromSeq = 1) {
  return db.read(["outbox"], (t) => t.all("outbox", IDBKeyRange.lowerBound(fromSeq), null, size));
}

/** What waits to be sent: new visits, and every other change. */
export function waiting(db) {
  return db.read(["outbox"], async (t) => {
    const ops = await t.all("outbox");
    const visits = ops.filter((op) => op.type === "visit" && op.action === "create").length;
    return { visits, updates: ops.length - visits, total: ops.length };
  });
}

/** Everything not yet stored by the server: to export before a revoked phone is wiped. */
export function unsent(db) {
  return db.read(["outbox", "rejected"], async (t) => ({
    outbox: await t.all("outbox"),
    rejected: await t.all("rejected"),
  }));
}
