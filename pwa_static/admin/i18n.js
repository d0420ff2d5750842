/**
 * The dashboard's words: Simplified Chinese first, English second (as the PWA's i18n.js).
 * `t(key, params)` falls back to Chinese, then to the key itself; `{name}` placeholders are
 * filled from params. The choice is kept in localStorage (no cookies).
 *
 * @module admin/i18n
 */

const zh = {
  title: "督导台",
  signout: "退出",
  "signin.title": "督导登录",
  "signin.username": "用户名",
  "signin.password": "密码",
  "signin.submit": "登录",
  "signin.failed": "登录失败：{message}",
  region: "地区",
  period: "{period}（{start} 至 {end}）",
  bulletin: "下载本周通报（Excel）",
  "coverage.title": "本周走访覆盖",
  "tile.due": "应走访",
  "tile.visited": "已走访",
  "tile.overdue": "逾期",
  "tile.coverage": "覆盖率",
  late: "{n} 条走访在通报后补报",
  "col.region": "地区",
  "col.household": "户",
  "col.village": "村",
  "col.days": "逾期",
  "col.cadres": "干部",
  "col.last": "上次走访",
  "col.device": "设备",
  "col.user": "用户",
  "col.lastsync": "最近同步",
  "col.job": "任务",
  "col.status": "状态",
  "col.lastrun": "上次运行",
  "col.nextrun": "下次运行",
  "trend.title": "近 12 周覆盖率",
  "trend.coverage": "覆盖率 %",
  "overdue.title": "逾期未走访户",
  "overdue.never": "从未走访",
  "overdue.days": "{n} 天",
  "overdue.none": "没有逾期户",
  "problems.title": "未办结问题",
  "problems.none": "没有未办结的问题",
  "problems.due": "期限 {date}",
  "problems.overdue": "已超期",
  "problems.change": "更改状态",
  "problems.note": "说明（可不填）",
  "problems.changed": "已改为：{status}",
  "status.open": "待处理",
  "status.in_progress": "处理中",
  "status.resolved": "已解决",
  "status.verified": "已核实",
  "conflicts.title": "待裁决冲突",
  "conflicts.none": "没有待裁决的冲突",
  "conflicts.kept": "当前值",
  "conflicts.lost": "另一值",
  "conflicts.choose": "采用此值",
  "conflicts.resolved": "冲突已裁决",
  "devices.title": "设备",
  "devices.revoke": "吊销",
  "devices.revoked": "已吊销",
  "devices.confirm": "吊销设备“{label}”？该设备将无法再同步。",
  "jobs.title": "定时任务",
  "job.ok": "正常",
  "job.failed": "失败",
  "job.running": "运行中",
  "job.interrupted": "中断",
  "job.never": "未运行",
  never: "从未",
  empty: "（空）",
  error: "出错了：{message}",
  downloading: "正在下载…",
};

const en = {
  title: "Supervisor dashboard",
  signout: "Sign out",
  "signin.title": "Supervisor sign-in",
  "signin.username": "Username",
  "signin.password": "Password",
  "signin.submit": "Sign in",
  "signin.failed": "Sign-in failed: {message}",
  region: "Region",
  period: "{period} ({start} to {end})",
  bulletin: "Download weekly bulletin (Excel)",
  "coverage.title": "Coverage this week",
  "tile.due": "Due",
  "tile.visited": "Visited",
  "tile.overdue": "Overdue",
  "tile.coverage": "Coverage",
  late: "{n} visits were synced after the bulletin",
  "col.region": "Region",
  "col.household": "Household",
  "col.village": "Village",
  "col.days": "Overdue",
  "col.cadres": "Cadres",
  "col.last": "Last visit",
  "col.device": "Device",
  "col.user": "User",
  "col.lastsync": "Last sync",
  "col.job": "Job",
  "col.status": "Status",
  "col.lastrun": "Last run",
  "col.nextrun": "Next run",
  "trend.title": "Coverage, last 12 weeks",
  "trend.coverage": "Coverage %",
  "overdue.title": "Overdue households",
  "overdue.never": "Never visited",
  "overdue.days": "{n} days",
  "overdue.none": "No overdue households",
  "problems.title": "Open problems",
  "problems.none": "No open problems",
  "problems.due": "Due {date}",
  "problems.overdue": "Overdue",
  "problems.change": "Change status",
  "problems.note": "Note (optional)",
  "problems.changed": "Now: {status}",
  "status.open": "Open",
  "status.in_progress": "In progress",
  "status.resolved": "Resolved",
  "status.verified": "Verified",
  "conflicts.title": "Conflicts to resolve",
  "conflicts.none": "No open conflicts",
  "conflicts.kept": "Current value",
  "conflicts.lost": "Other value",
  "conflicts.choose": "Use this value",
  "conflicts.resolved": "Conflict resolved",
  "devices.title": "Devices",
  "devices.revoke": "Revoke",
  "devices.revoked": "Revoked",
  "devices.confirm": "Revoke device “{label}”? It will not be able to sync any more.",
  "jobs.title": "Scheduled jobs",
  "job.ok": "OK",
  "job.failed": "Failed",
  "job.running": "Running",
  "job.interrupted": "Interrupted",
  "job.never": "Never run",
  never: "never",
  empty: "(empty)",
  error: "Something went wrong: {message}",
  downloading: "Downloading…",
};

const WORDS = { "zh-CN": zh, en };
const KEY = "zoufang.admin.lang";
let current = localStorage.getItem(KEY) === "en" ? "en" : "zh-CN";

export function lang() {
  return current;
}

export function t(key, params = {}) {
  const text = WORDS[current][key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** A {"zh-CN", "en"} label in the current language. */
export function pick(label) {
  if (!label || typeof label === "string") return label ?? "";
  return label[current] ?? label["zh-CN"] ?? "";
}

/** Switch language and relabel every element marked data-i18n. */
export function setLang(code) {
  current = code === "en" ? "en" : "zh-CN";
  localStorage.setItem(KEY, current);
  applyStatic();
}

export function applyStatic() {
  document.documentElement.lang = current;
  document.title = `${t("title")} · ${current === "en" ? "Zoufang" : "走访"}`;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  document.getElementById("lang").textContent = current === "en" ? "中文" : "English";
}
