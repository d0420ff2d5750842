"""The bulletins the Monday job kept (server/jobs.py weekly_bulletin): each week's figures as
reported, as a ``snapshots`` row, and its Excel file in the instance folder's bulletins/. A
supervisor lists them for a region and downloads the file as it went out, not as the figures
read today (late visits change a past week; the kept file does not change)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from server.http.errors import ApiError
from server.reports.coverage import SNAPSHOTS, Regions, local_iso, zone_of
from server.reports.periods import Period
from server.storage import replica

FOLDER = "bulletins"  # under the instance folder


def file_name(period: str, region: Any) -> str:
    """``2026-W48-341822.xlsx``: the period and the region's code (its id without one), with
    anything a file name should not hold replaced."""
    return f"{period}-{re.sub(r'[^0-9A-Za-z_-]', '_', region.code or region.id)}.xlsx"


def folder() -> Path:
    return Path(current_app.instance_path) / FOLDER


def kept(region_id: str) -> list[dict[str, Any]]:
    """The bulletins kept for the region, newest period first: the period, its title, when the
    first one was taken (re-runs add snapshots, the first is the one that went out) and
    whether its Excel file is there to download. Only the county and its townships have them."""
    s = SNAPSHOTS.c
    zone = zone_of(None)
    with replica.report() as conn:
        region = Regions.load(conn).get(region_id)
        rows = conn.execute(
            select(s.period, func.min(s.taken_at))
            .where(s.kind == "bulletin", s.region_id == region_id)
            .group_by(s.period)
            .order_by(s.period.desc())
        ).all()
    out = []
    for period, taken_at in rows:
        out.append(
            {
                "period": period,
                "title": Period.parse(period).title(),
                "taken_at": local_iso(taken_at, zone),
                "file": (folder() / file_name(period, region)).is_file(),
            }
        )
    return out


def kept_file(period: str, region_id: str) -> Path:
    """The Excel file of the region's bulletin for the period; 404 when none was kept."""
    label = Period.parse(period).label  # 422 for anything but a week or a month
    with replica.report() as conn:
        region = Regions.load(conn).get(region_id)
    path = folder() / file_name(label, region)
    if not path.is_file():
        raise ApiError("not_found", f"no bulletin of {label} was kept for this region")
    return path
