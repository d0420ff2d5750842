"""A province's coverage, rolled up from its counties' weekly snapshots, never their visits.

A province is some 100 counties, each with its own database (docs/scale.md): reading 5 M
households' visits for one page is what a province must never do. The Monday bulletin job
(server/jobs.py) keeps, for each county, a ``coverage_county`` snapshot — the county's due,
visited, overdue and coverage of the week that ended, as reported — and a province's coverage
and trend add those up. A county without a snapshot for a week is listed as missing (its job
did not run, or its server is not upgraded), never counted as 0 %.

Where the snapshots come from is one function, ``county_snapshots``, over an iterable of
connections: in one database (the province region and its counties live in it, as in a
township's or a county's own server) the app's connection; with one database per county
(ZOUFANG_COUNTIES with a ``[province]``), each county's report connection, read by
server/reports/province_counties.py. Nothing else here reads snapshots.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from server.http.errors import ApiError
from server.reports.coverage import (
    REGIONS,
    SNAPSHOTS,
    local_iso,
    parse_as_of,
    ratio,
    zone_of,
)
from server.reports.periods import Period, invalid
from server.storage import replica
from server.storage.store import chunks
from server.timeutil import utcnow
from sync.scope import Scope

KIND = "coverage_county"
LEVEL = "province"
#: the app extension of a province whose counties have their own databases
COUNTY_DATABASES = "zoufang_county_databases"


def county_snapshot(coverage: dict[str, Any]) -> dict[str, Any]:
    """What a county's weekly snapshot keeps of its coverage answer: the figures a province
    adds up, and the moment they stand at."""
    return {
        "period": coverage["period"],
        "region": coverage["region"],
        "as_of": coverage["as_of"],
        "summary": coverage["summary"],
    }


@dataclass(frozen=True)
class County:
    """A county of the province and its latest snapshot of the period (None: missing)."""

    region_id: str
    name: str
    code: str | None
    taken_at: datetime | None
    summary: dict[str, Any] | None


def is_province(region_id: str) -> bool:
    with replica.report() as conn:
        level = conn.execute(
            select(REGIONS.c.level).where(REGIONS.c.id == region_id, ~REGIONS.c.deleted)
        ).scalar()
    return level == LEVEL


def counties_of(conn: Connection, province_id: str | None) -> list[Row[Any]]:
    """The county regions under the province (None: every county region of the database, as
    in a county's own database, where its county is a root or under a copy of its province)."""
    r = REGIONS.c
    query = select(r.id, r.name, r.code).where(r.level == "county", ~r.deleted)
    if province_id is not None:
        query = query.where(r.parent_id == province_id)
    return list(conn.execute(query).all())


def county_snapshots(
    connections: Iterable[Connection],
    province_id: str | None,
    periods: list[str],
    as_of: datetime | None,
) -> Iterator[tuple[str, County]]:
    """For each period, each county under the province in each connection, with the latest
    ``coverage_county`` snapshot taken by ``as_of`` (None: any). Two queries a connection."""
    for conn in connections:
        counties = counties_of(conn, province_id)
        latest: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
        s = SNAPSHOTS.c
        for ids in chunks([c.id for c in counties]):
            query = select(s.period, s.region_id, s.taken_at, s.data).where(
                s.kind == KIND, s.period.in_(periods), s.region_id.in_(ids)
            )
            if as_of is not None:
                query = query.where(s.taken_at <= as_of)
            for period, region_id, taken_at, data in conn.execute(query):
                key = (period, region_id)
                if key not in latest or taken_at > latest[key][0]:
                    latest[key] = (taken_at, json.loads(data)["summary"])
        for period in periods:
            for c in counties:
                taken_at, summary = latest.get((period, c.id), (None, None))
                yield period, County(c.id, c.name, c.code, taken_at, summary)


def snapshots_of(
    conn: Connection, province_id: str, periods: list[str], as_of: datetime | None
) -> Iterator[tuple[str, County]]:
    """The province's counties' snapshots: in the app's own database, or in each county's
    database when the app is a province over county databases (``COUNTY_DATABASES``)."""
    databases = current_app.extensions.get(COUNTY_DATABASES)
    if databases is None:
        return county_snapshots([conn], province_id, periods, as_of)
    return databases.snapshots(counties_of(conn, province_id), periods, as_of)  # type: ignore[no-any-return]


def coverage(
    period: str,
    region_id: str,
    as_of: str | None = None,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """CONTRACT §10's coverage answer for a province: children are its counties with their
    figures from their snapshots, ``missing`` the counties without one, ``as_of`` the time of
    the latest snapshot read (each county's own in its row)."""
    parsed, zone, moment = _checked(period, scope, as_of)
    r = REGIONS.c
    with replica.report() as conn:
        region = conn.execute(select(r.id, r.name, r.level).where(r.id == region_id)).one()
        found = [c for _, c in snapshots_of(conn, region_id, [parsed.label], moment)]
    found.sort(key=lambda c: (c.code or "", c.name))
    reported = [c for c in found if c.summary is not None]
    due = sum(c.summary["due"] for c in reported if c.summary)
    visited = sum(c.summary["visited"] for c in reported if c.summary)
    taken = [c.taken_at for c in reported if c.taken_at]
    start, end = parsed.bounds(zone)
    reference = moment or utcnow()
    state = "past" if end <= reference else "current" if start <= reference else "future"
    return {
        "period": parsed.label,
        "policy": parsed.policy,
        "start": parsed.first.isoformat(),
        "end": parsed.last.isoformat(),
        "timezone": zone.key,
        "region": {"id": region.id, "name": region.name, "level": region.level},
        "as_of": local_iso(max(taken), zone) if taken else None,
        "state": state,
        "source": "snapshots",
        "summary": {
            "due": due,
            "visited": visited,
            "overdue": sum(c.summary["overdue"] for c in reported if c.summary),
            "coverage": ratio(visited, due),
        },
        "children": [_child(c, zone) for c in found],
        "missing": [{"region_id": c.region_id, "name": c.name} for c in found if not c.summary],
        "cadres": [],
    }


def trend(
    region_id: str, periods: list[Period], scope: Scope | None = None
) -> list[dict[str, Any]]:
    """The province's weekly coverage over ``periods`` from the same snapshots; a week's due
    and visited are those of the counties that reported it (``missing`` counts the others)."""
    _checked(periods[-1].label, scope, None)
    labels = [p.label for p in periods]
    totals = {label: [0, 0, 0] for label in labels}  # due, visited, missing
    with replica.report() as conn:
        for label, county in snapshots_of(conn, region_id, labels, None):
            if county.summary is None:
                totals[label][2] += 1
            else:
                totals[label][0] += county.summary["due"]
                totals[label][1] += county.summary["visited"]
    return [
        {
            "period": p.label,
            "start": p.first.isoformat(),
            "end": p.last.isoformat(),
            "due": totals[p.label][0],
            "visited": totals[p.label][1],
            "coverage": ratio(totals[p.label][1], totals[p.label][0]),
            "missing": totals[p.label][2],
        }
        for p in periods
    ]


def _checked(period: str, scope: Scope | None, as_of: str | None) -> tuple[Period, Any, Any]:
    """A province reports weekly to supervisors and admins: a cadre's households are no
    province's figures (403), and the snapshots are ISO weeks (422 for a month)."""
    if scope is not None:
        raise ApiError("forbidden", "a province's coverage is for its supervisors")
    parsed = Period.parse(period)
    if parsed.policy != "weekly":
        raise invalid("period", "a province's coverage is by ISO week, e.g. 2026-W47")
    zone = zone_of(None)
    return parsed, zone, parse_as_of(as_of, zone)


def _child(county: County, zone: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "region_id": county.region_id,
        "name": county.name,
        "level": "county",
        "due": None,
        "visited": None,
        "coverage": None,
        "as_of": local_iso(county.taken_at, zone),
        "missing": county.summary is None,
    }
    if county.summary is not None:
        row.update({k: county.summary[k] for k in ("due", "visited", "coverage")})
    return row
