/**
 * The visits behind the coverage (issue 14 item 5): one page, three views chosen by its query
 * string — `?region_id=…&period=…` a region's visits of the period (filters: cadre, late),
 * `?visit=…` one visit with every answer under its label, `?household=…` one household over
 * time. Signed in through the dashboard (the token in sessionStorage of this tab).
 *
 * @module admin/visits
 */

import { ApiError, call, query, session } from "./api.js";
import { $, fill, h, toast } from "./dom.js";
import { applyStatic, lang, pick, setLang } from "./i18n.js";

const zh = {
  back: "返回督导台",
  signedout: "请先登录督导台。",
  "list.title": "{region} · {period} 走访记录",
  "list.none": "这一期没有走访记录",
  "filter.cadre": "干部",
  "filter.all": "全部干部",
  "filter.late": "只看通报后补报",
  "col.time": "走访时间",
  "col.household": "户",
  "col.visitor": "走访人",
  "col.mode": "方式",
  "col.flags": "标记",
  more: "加载更多",
  late: "通报后补报",
  voided: "已作废",
  correction: "更正",
  answers: "回答",
  people: "见到的人",
  photos: "照片",
  history: "更正与作废",
  members: "家庭成员",
  visits: "走访",
  problems: "问题",
  measures: "帮扶措施",
  none: "无",
  yes: "是",
  no: "否",
  "photo.pending": "照片待上传",
  "visit.title": "{household} · {time}",
  "fact.household": "户",
  "fact.visitor": "走访人",
  "fact.time": "走访时间",
  "fact.recorded": "手机记录时间",
  "fact.received": "上传时间",
  "fact.mode": "方式",
  "fact.form": "表单",
  "fact.location": "位置",
  "fact.notes": "备注",
  "fact.code": "户编码",
  "fact.village": "村",
  "fact.phone": "电话",
  "fact.category": "类别",
  "fact.address": "地址",
  "history.voided": "{time} 由 {name} 作废：{reason}",
  "history.corrected": "{time} 由 {name} 更正（新记录）",
  "history.corrects": "本条更正了 {time} 由 {name} 所报的记录",
  "history.none": "没有更正或作废",
  "mode.home": "入户",
  "mode.phone": "电话",
  "mode.wechat": "微信",
  "mode.video": "视频",
  "mode.other": "其他",
  "status.open": "待处理",
  "status.in_progress": "处理中",
  "status.resolved": "已解决",
  "status.verified": "已核实",
  "status.planned": "计划中",
  "status.done": "已完成",
  error: "出错了：{message}",
};

const en = {
  back: "Back to the dashboard",
  signedout: "Sign in on the dashboard first.",
  "list.title": "Visits · {region} · {period}",
  "list.none": "No visits in this period",
  "filter.cadre": "Cadre",
  "filter.all": "All cadres",
  "filter.late": "Only those after the bulletin",
  "col.time": "Visited",
  "col.household": "Household",
  "col.visitor": "Visitor",
  "col.mode": "Mode",
  "col.flags": "Flags",
  more: "Load more",
  late: "after the bulletin",
  voided: "voided",
  correction: "correction",
  answers: "Answers",
  people: "People seen",
  photos: "Photos",
  history: "Corrections and voids",
  members: "Household members",
  visits: "Visits",
  problems: "Problems",
  measures: "Help measures",
  none: "none",
  yes: "yes",
  no: "no",
  "photo.pending": "photo pending",
  "visit.title": "{household} · {time}",
  "fact.household": "Household",
  "fact.visitor": "Visitor",
  "fact.time": "Visited",
  "fact.recorded": "Recorded on the phone",
  "fact.received": "Received",
  "fact.mode": "Mode",
  "fact.form": "Form",
  "fact.location": "Location",
  "fact.notes": "Notes",
  "fact.code": "Code",
  "fact.village": "Village",
  "fact.phone": "Phone",
  "fact.category": "Category",
  "fact.address": "Address",
  "history.voided": "voided {time} by {name}: {reason}",
  "history.corrected": "corrected {time} by {name} (a new record)",
  "history.corrects": "corrects the visit {name} reported {time}",
  "history.none": "no correction or void",
  "mode.home": "home",
  "mode.phone": "phone",
  "mode.wechat": "WeChat",
  "mode.video": "video",
  "mode.other": "other",
  "status.open": "open",
  "status.in_progress": "in progress",
  "status.resolved": "resolved",
  "status.verified": "verified",
  "status.planned": "planned",
  "status.done": "done",
  error: "Something went wrong: {message}",
};

const WORDS = { "zh-CN": zh, en };

/** This page's words, Chinese first (the dashboard's own are in i18n.js). */
function tr(key, params = {}) {
  const text = WORDS[lang()][key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

const params = new URLSearchParams(location.search);

/** A local ISO time from the server (with its offset) as people read it: 2026-11-24 10:00. */
function when(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "—";
}

function facts(element, rows) {
  fill(
    element,
    rows
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
  );
}

function items(element, entries, empty = tr("none")) {
  fill(element, entries.length ? entries : [h("li", { className: "muted" }, empty)]);
}

function report(error) {
  if (error instanceof ApiError && error.status === 401) {
    $("#main").hidden = true;
    $("#signed-out").hidden = false;
    return;
  }
  toast(tr("error", { message: error?.message ?? String(error) }), "error");
}

function tags(visit) {
  return [
    visit.late ? h("span", { className: "tag late" }, tr("late")) : null,
    visit.voided ? h("span", { className: "tag voided" }, tr("voided")) : null,
    visit.corrects ? h("span", { className: "tag" }, tr("correction")) : null,
  ];
}

// ---- a region's visits of the period ------------------------------------------------------

const list = { cursor: null, filters: {} };

async function showList() {
  $("#list").hidden = false;
  const region = params.get("region_id");
  const period = params.get("period");
  list.filters = {
    region_id: region,
    period,
    cadre_id: params.get("cadre_id") ?? "",
    household_id: params.get("household_id") ?? "",
    late: params.get("late") === "true" ? "true" : "",
  };
  const coverage = await call(`/reports/coverage?${query({ period, region_id: region })}`);
  $("#list-title").textContent = tr("list.title", { region: coverage.region.name, period });
  const cadres = $("#filters [name=cadre_id]");
  fill(cadres, [
    h("option", { value: "" }, tr("filter.all")),
    ...coverage.cadres.map((cadre) =>
      h(
        "option",
        { value: cadre.user_id, selected: cadre.user_id === list.filters.cadre_id },
        cadre.name,
      ),
    ),
  ]);
  $("#filters [name=late]").checked = list.filters.late === "true";
  await loadVisits(false);
}

async function loadVisits(more) {
  const page = await call(
    `/reports/visits?${query({ ...list.filters, cursor: more ? list.cursor : "" })}`,
  );
  const rows = page.visits.map((visit) =>
    h(
      "tr",
      { className: visit.voided ? "revoked" : "", dataset: { id: visit.id } },
      h("td", {}, h("a", { href: `/admin/visits?${query({ visit: visit.id })}` }, when(visit.visited_at_effective))),
      h(
        "td",
        {},
        h(
          "a",
          { href: `/admin/visits?${query({ household: visit.household_id })}` },
          visit.household_name ?? visit.household_id,
        ),
      ),
      h("td", {}, visit.visitor_name ?? ""),
      h("td", {}, tr(`mode.${visit.mode}`)),
      h("td", {}, tags(visit)),
    ),
  );
  const body = $("#visits tbody");
  if (more) body.append(...rows);
  else if (rows.length) fill(body, rows);
  else fill(body, h("tr", {}, h("td", { colSpan: 5, className: "muted" }, tr("list.none"))));
  $("#list-total").textContent = page.total;
  list.cursor = page.cursor;
  $("#more").hidden = !page.cursor;
}

function refilter() {
  const form = $("#filters");
  const next = new URLSearchParams(location.search);
  next.set("cadre_id", form.cadre_id.value);
  next.set("late", form.late.checked ? "true" : "");
  for (const [name, value] of [...next.entries()]) if (!value) next.delete(name);
  history.replaceState(null, "", `?${next}`);
  list.filters.cadre_id = form.cadre_id.value;
  list.filters.late = form.late.checked ? "true" : "";
  loadVisits(false).catch(report);
}

// ---- one visit ----------------------------------------------------------------------------

function answerText(answer) {
  const { value } = answer;
  if (answer.choices) return answer.choices.map(pick).join("、");
  if (value === true) return tr("yes");
  if (value === false) return tr("no");
  if (value === null || value === undefined || value === "") return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

async function photo(entry) {
  if (!entry.stored) return h("span", { className: "tag" }, tr("photo.pending"));
  // the token goes in a header, so the image is fetched here and shown from a blob: URL
  const response = await call(`/blobs/${entry.sha256}`, { raw: true });
  return h("img", { src: URL.createObjectURL(await response.blob()), alt: tr("photos") });
}

async function showVisit(id) {
  $("#visit").hidden = false;
  const visit = await call(`/reports/visits/${encodeURIComponent(id)}`);
  $("#visit-title").replaceChildren(
    tr("visit.title", { household: visit.household_name ?? "", time: when(visit.visited_at_effective) }),
    " ",
    ...tags(visit).filter(Boolean),
  );
  const location_ = visit.location ? `${visit.location.lat}, ${visit.location.lon}` : null;
  facts($("#visit-facts"), [
    [
      tr("fact.household"),
      h("a", { href: `/admin/visits?${query({ household: visit.household_id })}` }, visit.household_name ?? visit.household_id),
    ],
    [tr("fact.visitor"), visit.visitor_name],
    [tr("fact.time"), when(visit.visited_at_effective)],
    [tr("fact.recorded"), when(visit.visited_at)],
    [tr("fact.received"), when(visit.received_at)],
    [tr("fact.mode"), tr(`mode.${visit.mode}`)],
    [tr("fact.form"), visit.form_id ? `${visit.form_id} v${visit.form_version}` : null],
    [tr("fact.location"), location_],
    [tr("fact.notes"), visit.notes],
  ]);
  facts(
    $("#visit-answers"),
    visit.answer_list.map((answer) => [pick(answer.label) || answer.id, answerText(answer)]),
  );
  items(
    $("#visit-people"),
    visit.people.map((person) => h("li", {}, person.name ?? person.id)),
  );
  const photos = await Promise.all(visit.photos.map(photo));
  fill($("#visit-photos"), photos.length ? photos : [h("span", { className: "muted" }, tr("none"))]);
  const history = [];
  for (const original of visit.original) {
    history.push(tr("history.corrects", { time: when(original.received_at), name: original.visitor_name ?? "" }));
  }
  for (const correction of visit.corrected_by) {
    history.push(tr("history.corrected", { time: when(correction.received_at), name: correction.visitor_name ?? "" }));
  }
  if (visit.void) {
    history.push(tr("history.voided", { time: when(visit.void.at), name: visit.void.by_name ?? "", reason: visit.void.reason ?? "" }));
  }
  items($("#visit-history"), history.map((line) => h("li", {}, line)), tr("history.none"));
}

// ---- one household ------------------------------------------------------------------------

async function showHousehold(id) {
  $("#household").hidden = false;
  const household = await call(`/reports/households/${encodeURIComponent(id)}`);
  $("#household-title").textContent = household.head_name ?? household.code ?? id;
  facts($("#household-facts"), [
    [tr("fact.code"), household.code],
    [tr("fact.village"), [household.township?.name, household.village?.name].filter(Boolean).join(" · ")],
    [tr("fact.address"), household.address],
    [tr("fact.phone"), household.phone],
    [tr("fact.category"), household.category],
  ]);
  items(
    $("#household-people"),
    household.people.map((person) =>
      h("li", {}, h("b", {}, person.name ?? ""), " ", [person.relation, person.birth_year, person.id_number].filter(Boolean).join(" · ")),
    ),
  );
  items(
    $("#household-visits"),
    household.visits.map((visit) =>
      h(
        "li",
        {},
        h("a", { href: `/admin/visits?${query({ visit: visit.id })}` }, when(visit.visited_at_effective)),
        ` ${visit.visitor_name ?? ""} · ${tr(`mode.${visit.mode}`)} `,
        tags(visit),
      ),
    ),
  );
  items(
    $("#household-problems"),
    household.problems.map((problem) =>
      h("li", {}, h("span", { className: "tag" }, tr(`status.${problem.status}`)), problem.description ?? "", problem.assignee_name ? ` · ${problem.assignee_name}` : ""),
    ),
  );
  items(
    $("#household-measures"),
    household.measures.map((measure) =>
      h("li", {}, h("span", { className: "tag" }, tr(`status.${measure.status}`)), measure.description ?? "", measure.responsible_name ? ` · ${measure.responsible_name}` : ""),
    ),
  );
}

// ---- wiring -------------------------------------------------------------------------------

function relabel() {
  applyStatic();
  for (const element of document.querySelectorAll("[data-v]")) {
    element.textContent = tr(element.dataset.v);
  }
}

async function start() {
  relabel();
  $("#lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    location.reload();
  });
  if (!session()?.token) {
    $("#signed-out").hidden = false;
    return;
  }
  $("#main").hidden = false;
  $("#filters").addEventListener("change", refilter);
  $("#more").addEventListener("click", () => loadVisits(true).catch(report));
  try {
    if (params.get("visit")) await showVisit(params.get("visit"));
    else if (params.get("household")) await showHousehold(params.get("household"));
    else await showList();
  } catch (error) {
    report(error);
  } finally {
    document.body.dataset.loaded = "1";
  }
}

start();
