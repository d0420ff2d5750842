/**
 * 同步: when the phone last synced, what waits to be sent, one button, progress while it
 * runs, and an honest result — a failed sync says what failed and that nothing was lost.
 * Ops the server refused are listed with the reason; open conflicts with both values.
 *
 * @module screens/sync
 */

import { known, t } from "../i18n.js";
import { waiting } from "../outbox.js";
import { pendingPhotos } from "../photos.js";
import { conflictList, dismissRejected, rejectedList } from "../queries.js";
import { events, isRunning } from "../sync.js";
import { ago, button, formatTime, h, section } from "../ui.js";
import { conflictItem, fieldLabel } from "./conflicts.js";

export async function render(ctx) {
  ctx.title(t("sync.title"));
  const [last, queued, rejected, conflicts, photos] = await Promise.all([
    ctx.db.read(["meta"], (tx) => tx.get("meta", "last_sync")),
    waiting(ctx.db),
    rejectedList(ctx.db),
    conflictList(ctx.db),
    pendingPhotos(ctx.db),
  ]);
  // 上次同步 is the last sync that succeeded: a failed one is said below, never as a success
  const lastOk = last?.ok ? last.at : last?.okAt;
  const progress = h("p", { class: "progress", role: "status", "aria-live": "polite" });
  const start = button(t("sync.now"), () => ctx.sync(), "primary big", { disabled: isRunning() });
  if (isRunning()) progress.textContent = t("sync.running");
  ctx.listen(events, "progress", ({ detail }) => {
    start.disabled = true;
    progress.textContent = progressText(detail);
  });
  ctx.listen(events, "done", () => ctx.rerender());
  return h(
    "div",
    { class: "screen sync" },
    h(
      "section",
      { class: "card" },
      h(
        "p",
        {},
        t("sync.last"),
        " ",
        h("b", {}, lastOk ? `${formatTime(Date.parse(lastOk))}（${ago(lastOk)}）` : t("sync.never")),
      ),
      h(
        "p",
        { class: "waiting" },
        queued.total
          ? t("sync.waiting", { visits: queued.visits, updates: queued.updates })
          : t("sync.nothingWaiting"),
      ),
      photos.size > 0 && h("p", { class: "photos-waiting" }, t("sync.photosWaiting", { n: photos.size })),
      last &&
        h(
          "p",
          { class: last.ok ? "result ok" : "result failed", role: "status", dataset: { at: last.at } },
          resultText(last, queued.total),
        ),
      progress,
      start,
    ),
    rejected.length > 0 &&
      section(
        t("sync.rejected", { n: rejected.length }),
        h("p", { class: "hint" }, t("sync.rejectedHint")),
        h(
          "ul",
          { class: "list" },
          rejected.map((item) => rejectedItem(ctx, item)),
        ),
      ),
    conflicts.length > 0 &&
      section(
        t("sync.conflicts", { n: conflicts.length }),
        h(
          "ul",
          { class: "list" },
          conflicts.map((c) => h("li", {}, conflictLink(c, ctx.session))),
        ),
      ),
  );
}

function progressText(p) {
  const retry = p.retryIn ? ` ${t("sync.retrying", { s: Math.round(p.retryIn / 1000), n: p.attempt })}` : "";
  if (p.step === "push") return t("sync.pushing", { sent: p.sent, total: p.total }) + retry;
  return t("sync.pulling", { page: p.page, received: p.received }) + retry;
}

/** "已上传 47 条，收到 3 条更新，1 处冲突" — or what failed, and that the rest is kept. The
 *  conflicts this sync brought are named only when there are some: "0 处冲突" above the
 *  list of open conflicts read as a contradiction. */
function resultText(result, stillQueued) {
  if (result.ok) {
    let text = t("sync.result", { sent: result.sent, received: result.received });
    if (result.conflicts) text += t("sync.resultConflicts", { n: result.conflicts });
    return result.rejected ? `${text}${t("sync.resultRejected", { n: result.rejected })}` : text;
  }
  const reason = known(`syncError.${result.error?.code}`) ?? result.error?.message ?? result.error?.code;
  const parts = [t(`sync.failed.${result.step ?? "push"}`, { reason })];
  if (result.sent) parts.push(t("sync.partlySent", { n: result.sent }));
  if (stillQueued) parts.push(t("sync.keptQueued", { n: stillQueued }));
  return parts.join(t("sentence.gap"));
}

function rejectedItem(ctx, item) {
  const { op, error } = item;
  const what = `${t(`type.${op.type}`)} · ${t(`action.${op.action}`)}`;
  const fields = Object.entries(error?.details?.fields ?? {}).map(
    ([name, messages]) => `${name}: ${messages.join(", ")}`,
  );
  return h(
    "li",
    { class: "rejected" },
    h("p", {}, h("b", {}, what), item.household ? ` · ${item.household}` : ""),
    h("p", {}, t("sync.reason"), " ", known(`opError.${error?.code}`) ?? error?.message),
    h("p", { class: "muted" }, [error?.message, ...fields].filter(Boolean).join("；")),
    button(
      t("sync.dismiss"),
      async () => {
        await dismissRejected(ctx.db, item.op_id);
        ctx.rerender();
      },
      "small",
    ),
  );
}

function conflictLink(conflict, session) {
  const href =
    conflict.record_type === "problem" ? `#/problem/${conflict.record_id}` : `#/h/${conflict.household_id}`;
  const heading = `${conflict.household?.head_name ?? ""} · ${fieldLabel(conflict.record_type, conflict.field)}`;
  return h("a", { class: "row", href }, conflictItem(conflict, session, heading));
}
