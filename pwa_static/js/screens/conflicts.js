/**
 * Open conflicts shown on the record they touch (CONTRACT §6): the value kept and every
 * value that lost, with whose they were. Nothing is overwritten silently.
 *
 * @module screens/conflicts
 */

import { known, t } from "../i18n.js";
import { h } from "../ui.js";

/** A card listing the conflicts of one record or household, or nothing when there are none. */
export function conflictNotes(conflicts, session) {
  if (conflicts.length === 0) return null;
  return h(
    "section",
    { class: "card conflict", role: "note" },
    h("h2", {}, t("conflict.title", { n: conflicts.length })),
    conflicts.map((c) => conflictItem(c, session)),
    h("p", { class: "hint" }, t("conflict.hint")),
  );
}

/** One conflict: which field, the kept value and the lost ones. */
export function conflictItem(conflict, session, heading = null) {
  return h(
    "div",
    { class: "conflict-item" },
    h("p", {}, h("b", {}, heading ?? fieldLabel(conflict.record_type, conflict.field))),
    h(
      "p",
      {},
      t("conflict.kept"),
      " ",
      h("b", { class: "kept" }, value(conflict, conflict.kept.value)),
      " · ",
      who(conflict.kept, session),
    ),
    conflict.lost.map((side) =>
      h(
        "p",
        {},
        t("conflict.lost"),
        " ",
        h("b", { class: "lost" }, value(conflict, side.value)),
        " · ",
        who(side, session),
      ),
    ),
  );
}

export function fieldLabel(recordType, name) {
  return known(`field.${recordType}.${name}`) ?? name;
}

function value({ record_type: type, field }, v) {
  if (v === null || v === undefined || v === "") return t("conflict.empty");
  if (field === "flags" && Array.isArray(v))
    return v.length ? v.map((f) => t(`flag.${f}`)).join("、") : t("conflict.noFlags");
  if (field === "status" && type === "problem") return t(`status.${v}`);
  if (field === "status" && type === "measure") return t(`measureStatus.${v}`);
  return String(v);
}

function who(side, session) {
  if (side.by === session.device_id) return t("conflict.thisPhone");
  if (side.user_id && side.user_id === session.user.id) return t("conflict.myOtherPhone");
  return side.name ?? t("conflict.someoneElse");
}
