"""What the jobs call once their figures are computed: each builds the notices of the counties
and townships that have a channel for that job, and queues them (nothing is sent here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import select

from server.notices import messages, queue
from server.service import store
from server.storage.models import Region


def bulletin(period: str, coverages: Mapping[str, Mapping[str, Any]]) -> int:
    """The weekly bulletin: region → its coverage body (reports.coverage), as the job kept it."""
    url = _public_url()
    built = {
        region_id: messages.bulletin(period, coverage, url)
        for region_id, coverage in coverages.items()
    }
    return queue.enqueue("weekly_bulletin", built)


def overdue(day: date, regions: Sequence[Any], lists: Mapping[str, Sequence[Any]]) -> int:
    """The overdue digest: ``lists`` holds each township's overdue households; a township's
    notice counts them by village, a county's (the township's parent) by township."""
    url = _public_url()
    built = {}
    for region in regions:
        if region.level == "township":
            households = lists.get(region.id, [])
            by = "village"
        else:
            below = [t.id for t in regions if t.parent_id == region.id]
            households = [h for township in below for h in lists.get(township, [])]
            by = "township"
        built[region.id] = messages.overdue_digest(day, region.name, households, by, region.id, url)
    return queue.enqueue("overdue_digest", built)


def escalations(day: date, village_ids: Iterable[str]) -> int:
    """Problem escalation: each county and township with problems escalated today gets their
    count, by township (a county) or village (a township). ``village_ids``: one per problem."""
    tree = store().region_tree()
    with store().read() as conn:
        names = dict(conn.execute(select(Region.id, Region.name).where(~Region.deleted)).all())
    counts: dict[str, Counter[str]] = {}
    for village_id in village_ids:
        lineage = messages.ancestors(tree, village_id)  # village, township, county
        for below, region_id in zip(lineage, lineage[1:], strict=False):
            if tree[region_id][1] in ("county", "township"):
                counts.setdefault(region_id, Counter())[names.get(below, "—")] += 1
    url = _public_url()
    built = {
        region_id: messages.escalations(day, names.get(region_id, ""), per_part, region_id, url)
        for region_id, per_part in counts.items()
    }
    return queue.enqueue("problem_escalation", built)


def _public_url() -> str | None:
    url = current_app.config.get("PUBLIC_URL")
    return str(url) if url else None
