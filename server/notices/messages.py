"""What a notice says: the figures of a job's run for one county or township, in Chinese
markdown (WeCom and DingTalk render it; e-mail shows it as plain text), and a link to the
dashboard. Pure functions of the figures the jobs computed.

A notice is read in a group chat or a mailbox, outside the server's access rules: it names
places and counts, never a household, a person, an ID number or a phone number. As a second
line of defence every run of 11 or more digits in the text is blanked before the link is added.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

LONG_NUMBER = re.compile(r"\d{11,}[\dXx]?")  # a mobile (11) or ID number (18) and longer
RegionTree = Mapping[str, tuple[str | None, str]]  # region → (parent, level)


@dataclass(frozen=True)
class Message:
    title: str
    text: str  # markdown, starting with the title as a heading


def dashboard_link(public_url: str | None, **query: str) -> str | None:
    """The dashboard at ZOUFANG_PUBLIC_URL with the region and period, or None when unset."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/admin?{urllib.parse.urlencode(query)}"


def compose(title: str, summary: str, breakdown: Iterable[str], link: str | None) -> Message:
    """The one layout of every notice: heading, the figures, one line per part, the link."""
    lines = [f"### {title}", "", summary, ""]
    lines += [f"- {line}" for line in breakdown]
    text = LONG_NUMBER.sub("…", "\n".join(lines).rstrip())
    if link:
        text += f"\n\n[打开看板查看详情]({link})"
    return Message(LONG_NUMBER.sub("…", title), text)


def bulletin(period: str, coverage: Mapping[str, Any], public_url: str | None) -> Message:
    """每周通报 of one region: last week's coverage, and each township (or village) below."""
    region, figures = coverage["region"], coverage["summary"]
    due, visited = figures["due"], figures["visited"]
    summary = (
        f"应访 **{due}** 户，已访 **{visited}** 户，"
        f"覆盖率 **{_percent(figures['coverage'])}**，未访 {due - visited} 户。"
    )
    parts = [
        f"{child['name']}：{_percent(child['coverage'])}（{child['visited']}/{child['due']}）"
        for child in coverage.get("children", [])
    ]
    link = dashboard_link(public_url, period=period, region=region["id"])
    return compose(f"{region['name']} {period} 走访覆盖率通报", summary, parts, link)


def overdue_digest(
    day: date,
    region_name: str,
    households: Sequence[Mapping[str, Any]],
    by: str,
    region_id: str,
    public_url: str | None,
) -> Message:
    """日查岗 of one region: how many households are overdue, by township or village (``by``)."""
    never = sum(1 for h in households if h.get("never_visited"))
    summary = f"截至 {day.year}年{day.month}月{day.day}日，逾期未走访 **{len(households)}** 户"
    summary += f"（其中从未走访 {never} 户）。" if never else "。"
    counts = Counter((h.get(by) or {}).get("name") or "未分配" for h in households)
    parts = [f"{name}：{count} 户" for name, count in sorted(counts.items())]
    link = dashboard_link(public_url, region=region_id)
    return compose(f"{region_name} 逾期未走访提醒 {day.isoformat()}", summary, parts, link)


def escalations(
    day: date,
    region_name: str,
    per_part: Mapping[str, int],
    region_id: str,
    public_url: str | None,
) -> Message:
    """督办 of one region: how many problems past their due date went up to the supervisors."""
    total = sum(per_part.values())
    summary = f"今日有 **{total}** 个逾期未办结的问题已升级至乡镇督导，请督促办理。"
    parts = [f"{name}：{count} 个" for name, count in sorted(per_part.items())]
    link = dashboard_link(public_url, region=region_id)
    return compose(f"{region_name} 走访问题督办 {day.isoformat()}", summary, parts, link)


def ancestors(tree: RegionTree, region_id: str | None) -> list[str]:
    """The region and every region above it, nearest first."""
    out = []
    while region_id is not None and region_id in tree and region_id not in out:
        out.append(region_id)
        region_id = tree[region_id][0]
    return out


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"
