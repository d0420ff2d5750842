/**
 * What the screens read, one read transaction each. Records come from js/records.js entries,
 * so every query already shows this phone's unsent changes.
 *
 * @module queries
 */

import { ofType } from "./db.js";
import { visitTime } from "./records.js";
import { periods, visitStatus } from "./time.js";

const data = (entries) => entries.map((e) => ({ id: e.id, version: e.version, ...e.data }));

function all(t, type) {
  return t.all("records", ofType(type)).then(data);
}

function ofHousehold(t, type, householdId) {
  return t.all("records", [type, householdId], "household").then(data);
}

/** The household of an id, with its record version (for an update's base_version). */
export function get(db, type, id) {
  return db.read(["records"], async (t) => {
    const found = await t.get("records", [type, id]);
    return found && { id: found.id, version: found.version, ...found.data };
  });
}

/** Village id → name, for every village the phone holds. */
async function villageNames(t) {
  const regions = await all(t, "region");
  return new Map(regions.filter((r) => r.level === "village").map((r) => [r.id, r.name]));
}

/**
 * 本周走访: every active household with its state this period (done / due / overdue; null
 * when its policy asks for no visits), last visit of the last two periods, village, and the
 * flags and names of its people for filtering.
 */
export function weekOverview(db, now) {
  return db.read(["records"], async (t) => {
    const since = Math.min(periods("weekly", now).previous, periods("monthly", now).previous);
    const [households, people, villages, visits] = await Promise.all([
      all(t, "household"),
      all(t, "person"),
      villageNames(t),
      t.all("records", IDBKeyRange.lowerBound(since), "visit_time"),
    ]);
    const last = new Map();
    for (const visit of visits) {
      if (visit.data.voided) continue;
      last.set(visit.hh, Math.max(last.get(visit.hh) ?? -Infinity, visit.at));
    }
    const members = new Map();
    for (const person of people) {
      const list = members.get(person.household_id) ?? [];
      list.push(person);
      members.set(person.household_id, list);
    }
    return households
      .filter((h) => h.status !== "archived")
      .map((h) => {
        const folk = members.get(h.id) ?? [];
        const policy = h.visit_policy ?? "weekly";
        return {
          ...h,
          village: villages.get(h.village_id) ?? "",
          flags: new Set(folk.flatMap((p) => p.flags ?? [])),
          names: folk.map((p) => p.name),
          last: last.get(h.id),
          state: policy === "none" ? null : visitStatus(policy, last.get(h.id), now),
        };
      })
      .sort((a, b) => (a.code ?? "").localeCompare(b.code ?? "") || a.head_name.localeCompare(b.head_name));
  });
}

/** User id → name, for every user the phone holds (CONTRACT §4 `user` records: the users
 *  whose scope meets this phone's), so screens say who did what. */
async function userNames(t) {
  const users = await all(t, "user");
  return new Map(users.map((u) => [u.id, u.name || u.username]));
}

/** Open conflicts: the records they touch are shown with both values, and each side with the
 *  name of the user who wrote it when the phone knows them. */
async function openConflicts(t) {
  const [list, names] = await Promise.all([all(t, "conflict"), userNames(t)]);
  const named = (side) => ({ ...side, name: names.get(side.user_id) });
  return list
    .filter((c) => c.status === "open")
    .map((c) => ({ ...c, kept: named(c.kept), lost: (c.lost ?? []).map(named) }));
}

/** A household with its people, visits (newest first), problems, measures and open conflicts. */
export function householdDetail(db, id) {
  return db.read(["records"], async (t) => {
    const household = await t.get("records", ["household", id]);
    if (!household) return null;
    const [people, visits, problems, measures, conflicts, villages, users] = await Promise.all([
      ofHousehold(t, "person", id),
      ofHousehold(t, "visit", id),
      ofHousehold(t, "problem", id),
      ofHousehold(t, "measure", id),
      openConflicts(t),
      villageNames(t),
      userNames(t),
    ]);
    const ids = new Set([id, ...[...people, ...problems, ...measures].map((r) => r.id)]);
    visits.sort((a, b) => (visitTime(b) ?? 0) - (visitTime(a) ?? 0)); // not ISO strings: offsets differ
    return {
      household: { id, version: household.version, pending: "base" in household, ...household.data },
      village: villages.get(household.data.village_id) ?? "",
      people,
      visits,
      corrected: new Set(visits.map((v) => v.corrects).filter(Boolean)),
      problems,
      measures,
      conflicts: conflicts.filter((c) => ids.has(c.record_id)),
      users,
    };
  });
}

/** The latest version of a form (`data` of its pulled `form` record), or null. */
export function latestForm(db, formId) {
  return db.read(["records"], async (t) => {
    const forms = (await all(t, "form")).filter((f) => f.form_id === formId);
    return forms.sort((a, b) => b.version - a.version)[0] ?? null;
  });
}

/** The exact form version a visit was filled with (to correct it on the same form). */
export function formVersion(db, formId, version) {
  return db.read(["records"], async (t) => {
    const forms = await all(t, "form");
    return forms.find((f) => f.form_id === formId && f.version === version) ?? null;
  });
}

/** Problems of my households, each with its household's name, and the open conflicts. */
export function problemList(db) {
  return db.read(["records"], async (t) => {
    const [problems, households, conflicts] = await Promise.all([
      all(t, "problem"),
      all(t, "household"),
      openConflicts(t),
    ]);
    const names = new Map(households.map((h) => [h.id, h.head_name]));
    const disputed = new Set(conflicts.map((c) => c.record_id));
    return problems.map((p) => ({
      ...p,
      household: names.get(p.household_id) ?? "",
      disputed: disputed.has(p.id),
    }));
  });
}

/** One problem with its household, people and open conflicts. */
export function problemDetail(db, id) {
  return db.read(["records"], async (t) => {
    const problem = await t.get("records", ["problem", id]);
    if (!problem) return null;
    const [household, people, conflicts, users] = await Promise.all([
      t.get("records", ["household", problem.data.household_id]),
      ofHousehold(t, "person", problem.data.household_id),
      openConflicts(t),
      userNames(t),
    ]);
    return {
      problem: { id, version: problem.version, ...problem.data },
      household: household && { id: household.id, ...household.data },
      people,
      conflicts: conflicts.filter((c) => c.record_id === id),
      assignee: problem.data.assignee_id ? (users.get(problem.data.assignee_id) ?? null) : null,
    };
  });
}

/** Open conflicts with a name for the record each touches, for the sync screen. */
export function conflictList(db) {
  return db.read(["records"], async (t) => {
    const conflicts = await openConflicts(t);
    const named = [];
    for (const c of conflicts) {
      const record = await t.get("records", [c.record_type, c.record_id]);
      const householdId = c.record_type === "household" ? c.record_id : record?.data.household_id;
      const household = householdId && (await t.get("records", ["household", householdId]));
      named.push({
        ...c,
        record: record?.data ?? null,
        household: household?.data ?? null,
        household_id: householdId,
      });
    }
    return named;
  });
}

/** Ops the server refused for good, newest first. */
export function rejectedList(db) {
  return db.read(["rejected"], async (t) =>
    (await t.all("rejected")).sort((a, b) => b.at.localeCompare(a.at)),
  );
}

/** Forget a rejected op once the user has read it. */
export function dismissRejected(db, opId) {
  return db.write(["rejected"], (t) => t.delete("rejected", opId));
}
