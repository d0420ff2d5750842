"""Chinese labels for codes that reach people outside the app: problem categories, problem
stages and visit modes, as the PWA shows them (pwa_static/js/i18n.js ``category.*``). One table
for every Python writer (the Excel bulletin, the CSV, the dashboard's data), so that a
category reads 住房安全 wherever a supervisor meets it, never ``housing``."""

from __future__ import annotations

#: problem categories, as the PWA's i18n.js ``category.*`` (zh-CN)
CATEGORY_LABELS = {
    "food": "吃",
    "clothing": "穿",
    "education": "义务教育",
    "medical": "基本医疗",
    "housing": "住房安全",
    "water": "饮水安全",
    "income": "收入",
    "other": "其他",
}

#: problem stages, as the bulletin's problem sheet writes them
STATUS_NAMES = {
    "open": "待处理",
    "in_progress": "处理中",
    "resolved": "已解决",
    "verified": "已核验",
}
#: visit modes, as the visit list and the submissions workbook write them
MODE_NAMES = {"home": "入户", "phone": "电话", "wechat": "微信", "video": "视频", "other": "其他"}


def category_label(code: str | None) -> str:
    """A problem category as a person reads it; a code the table does not know (a county's own
    category) is shown as it is rather than hidden."""
    if not code:
        return ""
    return CATEGORY_LABELS.get(code, code)
