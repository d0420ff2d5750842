/**
 * One sync, as numbered steps (CONTRACT §5–§8). Runs on a tap of 同步, when the app opens
 * and when the phone comes back online.
 *
 * 1. One sync at a time, across tabs too (a Web Lock); a tap during a run joins it and cuts a
 *    back-off wait short.
 * 2. Push the outbox, oldest device_seq first, at most 200 ops per request:
 *    a. 413 payload_too_large → halve the batch and send again;
 *    b. applied / duplicate / conflict → the op leaves the outbox for `sent`, where it keeps
 *       its value on the screen until a pull brings that version back;
 *       rejected → it leaves the outbox for `rejected`, listed for the user with the reason,
 *       and its record is recomputed without it;
 *       gap → send again from `next_seq` (ops the server lost are taken back from `sent`);
 *    c. the clock moves forward to `server_hlc`, in the same transaction.
 * 3. Pull from the saved cursor, page by page; each page's records, the cursor and the clock
 *    are saved in one transaction, so a sync cut off mid-way resumes where it stopped.
 *    `deleted` records are removed; records with ops on top keep them on top.
 *    400 invalid_cursor → pull again from the start. When the last page is in, every
 *    acknowledged op has been pulled back (or left the scope): `sent` is emptied.
 * 4. Network errors, 5xx and 429 are retried after 1, 2, 4, 8 s (or Retry-After); any other
 *    failure ends the sync, says what failed, and leaves every unsent op queued.
 * 5. 401 (device_revoked, unauthorized) → the `revoked` event: the app offers to export
 *    what was not sent, then wipes the phone.
 * 5b. Photos go after their visits (CONTRACT §11, js/photos.js): once no queued op names a
 *    photo, HEAD skips it if the server has it, PUT sends it otherwise; one that cannot go
 *    now waits for the next sync, and does not fail this one.
 * 6. The result — what was sent, received, in conflict, rejected, or the error — is saved
 *    and announced with the `done` event.
 *
 * @module sync
 */

import { ApiError, NetworkError, request } from "./api.js";
import { Clock, ZERO } from "./hlc.js";
import * as outbox from "./outbox.js";
import { uploadPhotos } from "./photos.js";
import { compose, recompute } from "./records.js";
import { localIso } from "./time.js";

const BATCH = 200;
const PULL_LIMIT = 1000;
const BACKOFF_MS = [1000, 2000, 4000, 8000];
const MAX_WAIT_MS = 60_000;
const PAGE_STORES = ["records", "outbox", "sent", "meta"];

/** "progress" (detail: {step, sent, total, received, retryIn}), "done" (the result), "revoked". */
export const events = new EventTarget();

let running = null;
let wake = null;

/** Whether a sync is under way in this tab. */
export function isRunning() {
  return running !== null;
}

/** Step 1: start a sync, or join the one running. Resolves to its result. */
export function sync(db) {
  if (running) {
    wake?.();
    return running;
  }
  const locked = navigator.locks ? navigator.locks.request("zoufang-sync", () => run(db)) : run(db);
  running = locked.finally(() => {
    running = null;
  });
  return running;
}

async function run(db) {
  const session = await db.read(["meta"], (t) => t.get("meta", "session"));
  const result = { at: new Date().toISOString(), ok: false, sent: 0, received: 0, conflicts: 0, rejected: 0 };
  const conflicts = new Set();
  try {
    result.step = "push";
    await push(db, session, result);
    result.step = "pull";
    await pull(db, session, result, conflicts);
    result.step = "photos";
    result.photosPending = await uploadPhotos(db, session);
    result.ok = true;
    delete result.step;
  } catch (error) {
    result.error = failure(error);
    if (error instanceof ApiError && error.revoked) {
      await db.write(["meta"], (t) => t.put("meta", { code: error.code, at: result.at }, "revoked"));
      events.dispatchEvent(new CustomEvent("revoked", { detail: error }));
    }
  }
  result.conflicts = conflicts.size;
  await db.write(["meta"], async (t) => {
    const previous = await t.get("meta", "last_sync");
    // when the last sync that succeeded was, kept across failures (the 同步 screen's 上次同步)
    result.okAt = result.ok ? result.at : (previous?.okAt ?? (previous?.ok ? previous.at : null));
    t.put("meta", result, "last_sync");
  });
  events.dispatchEvent(new CustomEvent("done", { detail: result }));
  return result;
}

/** Step 2. */
async function push(db, session, result) {
  let size = BATCH;
  let from = 1;
  let gapAt = null;
  const { total } = await outbox.waiting(db);
  for (;;) {
    const ops = await outbox.batch(db, size, from);
    if (ops.length === 0) return;
    progress({ step: "push", sent: result.sent, total });
    // device_time is stamped per attempt: the server reads the phone's clock skew from it
    const send = () => {
      const body = { device_id: session.device_id, device_time: localIso(), schema: 1, ops };
      return request("/api/v1/sync/push", {
        method: "POST",
        body,
        token: session.token,
        gzip: true,
      });
    };
    let answer;
    try {
      answer = await retrying(send, { step: "push", sent: result.sent, total });
    } catch (error) {
      if (error instanceof ApiError && error.status === 413 && size > 1) {
        size = Math.max(1, Math.floor(size / 2));
        continue;
      }
      throw error;
    }
    const settled = await settle(db, ops, answer);
    result.sent += settled.acked;
    result.rejected += settled.rejected;
    if (settled.gap && gapAt === answer.next_seq) throw new SyncGap(answer.next_seq);
    gapAt = settled.gap ? answer.next_seq : null;
    from = settled.gap ? await resendFrom(db, answer.next_seq) : 1;
  }
}

/** Step 2b–c: the answer of one push, in one transaction. */
function settle(db, ops, answer) {
  const results = new Map(answer.results.map((r) => [r.op_id, r]));
  return db.write([...PAGE_STORES, "rejected"], async (t) => {
    const counts = { acked: 0, rejected: 0, gap: false };
    for (const op of ops) {
      const r = results.get(op.op_id);
      if (!r || r.status === "gap") {
        counts.gap = true;
        continue;
      }
      t.delete("outbox", op.device_seq);
      if (r.status === "rejected") {
        // named now: the household may leave the phone in this very sync (a scope change)
        const household = await householdName(t, op);
        t.put("rejected", { op_id: op.op_id, op, error: r.error, household, at: new Date().toISOString() });
        await recompute(t, op.type, op.id);
        counts.rejected += 1;
      } else {
        t.put("sent", { ...op, version: r.version, status: r.status });
        counts.acked += 1;
      }
    }
    await observe(t, answer.server_hlc);
    return counts;
  });
}

/** The name of the household an op is about, for the list of rejected ops. */
async function householdName(t, op) {
  const record = op.type === "household" ? null : await t.get("records", [op.type, op.id]);
  const householdId = op.type === "household" ? op.id : (op.data.household_id ?? record?.data.household_id);
  return householdId ? ((await t.get("records", ["household", householdId]))?.data.head_name ?? null) : null;
}

/** Step 2b, gap: the seq to send from. Ops below our oldest queued one that the server never
 *  stored (a server restored from a backup) go back into the outbox from `sent`. */
function resendFrom(db, nextSeq) {
  return db.write(["outbox", "sent"], async (t) => {
    const [oldest] = await t.all("outbox", null, null, 1);
    const lost = (await t.all("sent")).filter((op) => op.device_seq >= nextSeq);
    for (const { version, status, ...op } of lost) {
      t.delete("sent", op.op_id);
      t.put("outbox", op);
    }
    const have = new Set(lost.map((op) => op.device_seq));
    for (let seq = nextSeq; oldest && seq < oldest.device_seq; seq++) {
      if (!have.has(seq)) throw new SyncGap(nextSeq);
    }
    return nextSeq;
  });
}

/** The server is missing ops this phone no longer has: nothing more can be sent. */
class SyncGap extends Error {
  constructor(seq) {
    super(`the server expects op ${seq}, which this phone no longer holds`);
    this.code = "seq_gap";
  }
}

/** Step 3. */
async function pull(db, session, result, conflicts) {
  let cursor = await db.read(["meta"], (t) => t.get("meta", "cursor"));
  for (let page = 1; ; page++) {
    progress({ step: "pull", page, received: result.received });
    const query = new URLSearchParams({ limit: PULL_LIMIT });
    if (cursor) query.set("cursor", cursor);
    let answer;
    try {
      answer = await retrying(() => request(`/api/v1/sync/pull?${query}`, { token: session.token }), {
        step: "pull",
        page,
        received: result.received,
      });
    } catch (error) {
      if (error instanceof ApiError && error.code === "invalid_cursor" && cursor) {
        cursor = null;
        continue;
      }
      throw error;
    }
    result.received += await applyPage(db, answer, conflicts, !answer.more);
    cursor = answer.cursor;
    if (!answer.more) return;
  }
}

/** Step 3: one page, its cursor and the clock in one transaction; the number of records
 *  that are news to this phone (not the echo of its own ops, not conflicts). */
function applyPage(db, page, conflicts, last) {
  return db.write(PAGE_STORES, async (t) => {
    const onTop = new Map();
    for (const op of [...(await t.all("sent")), ...(await t.all("outbox"))]) {
      const key = `${op.type}/${op.id}`;
      onTop.set(key, [...(onTop.get(key) ?? []), op]);
    }
    let news = 0;
    for (const record of page.records) {
      const mine = onTop.get(`${record.type}/${record.id}`) ?? [];
      const sent = mine.filter((op) => op.version !== undefined);
      const echo = sent.some((op) => op.version === record.version);
      for (const op of sent) {
        if (record.deleted || op.version <= record.version) t.delete("sent", op.op_id);
      }
      if (record.deleted) {
        t.delete("records", [record.type, record.id]);
      } else {
        const ops = mine
          .filter((op) => op.version === undefined || op.version > record.version)
          .sort((a, b) => a.device_seq - b.device_seq);
        t.put("records", compose(record.type, record.id, record.version, record.data, ops));
      }
      if (record.type === "conflict") {
        if (!record.deleted && record.data.status === "open") conflicts.add(record.id);
      } else if (!echo) {
        news += 1;
      }
    }
    if (last) await forgetSent(t);
    t.put("meta", page.cursor, "cursor");
    // how far back a visit may be dated (CONTRACT §10): the visit screen offers no earlier day
    if (Number.isInteger(page.backdate_days)) t.put("meta", page.backdate_days, "backdate_days");
    await observe(t, page.server_hlc);
    return news;
  });
}

/** Step 3, the last page: every op acknowledged before this pull has been pulled back. */
async function forgetSent(t) {
  for (const op of await t.all("sent")) {
    t.delete("sent", op.op_id);
    await recompute(t, op.type, op.id);
  }
}

/** Step 2c and 3: move the persisted clock past the server's. */
async function observe(t, serverHlc) {
  if (!serverHlc) return;
  const clock = new Clock((await t.get("meta", "hlc")) ?? ZERO);
  clock.observe(serverHlc);
  t.put("meta", clock.last, "hlc");
}

/** Step 4: a request, tried again after a pause while the failure is worth retrying. */
async function retrying(send, step) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (!error.retryable || attempt >= BACKOFF_MS.length || !navigator.onLine) throw error;
      const delay = Math.min(error.retryAfter ?? BACKOFF_MS[attempt], MAX_WAIT_MS);
      progress({ ...step, retryIn: delay, attempt: attempt + 1 });
      await pause(delay);
    }
  }
}

function pause(ms) {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      wake = null;
      resolve();
    };
    const timer = setTimeout(finish, ms);
    wake = finish;
  });
}

function progress(detail) {
  events.dispatchEvent(new CustomEvent("progress", { detail }));
}

/** What failed, in a form the sync screen can word: a code and the server's message. */
function failure(error) {
  if (error instanceof ApiError) return { code: error.code, status: error.status, message: error.message };
  if (error instanceof NetworkError)
    return { code: navigator.onLine ? "network" : "offline", message: error.message };
  return { code: error.code ?? "unexpected", message: String(error.message ?? error) };
}
