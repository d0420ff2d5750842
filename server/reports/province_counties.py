"""A province over county databases (docs/scale.md: one database per county; docs/deploy.md,
"A province over the counties").

The province's app has its own database: the province region, one region per county and the
province's supervisors and admins. Its coverage and trend read, in each county's database, only
that county's ``coverage_county`` snapshots (kept by the county's Monday bulletin job), through
the county's report engine — its replica when it has one, else its primary — and never its
visits nor its users. A county's region in the province database carries the same id as the
county region in the county's own database (``zoufang province regions`` copies them), so a
snapshot is matched to the province's county by its region id and nothing else. A county whose
database cannot be read, or that has kept no snapshot, is missing from the answer, and the
first is logged: a province page is never refused for one county's outage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from server.reports import province
from server.reports.coverage import REGIONS
from server.storage import replica
from sync.ids import new_id

if TYPE_CHECKING:
    from server.counties import County as FileCounty

log = logging.getLogger(__name__)

#: county databases read at once: a province page waits for the slowest, not for their sum
PARALLEL_READS = 16


@dataclass(frozen=True)
class CountyDatabase:
    """One county of the file as the province reads it: its name there and its reports."""

    name: str
    reports: replica.ReportDatabases


class CountyDatabases:
    """The province's counties' databases, each read through its own report engines."""

    def __init__(self, counties: list[CountyDatabase]) -> None:
        self.counties = counties

    def snapshots(
        self, children: list[Row[Any]], periods: list[str], as_of: datetime | None
    ) -> Iterator[tuple[str, province.County]]:
        """province.county_snapshots' answer for the province's county regions ``children``,
        read from every county database at once; a county no database answers for is missing."""
        found: dict[tuple[str, str], province.County] = {}
        workers = max(1, min(PARALLEL_READS, len(self.counties)))
        with ThreadPoolExecutor(workers, thread_name_prefix="province") as pool:
            reads = pool.map(lambda county: _read(county, periods, as_of), self.counties)
            for read in reads:
                for period, county in read:
                    found[(period, county.region_id)] = county
        for period in periods:
            for child in children:
                county = found.get((period, child.id))
                taken_at, summary = (county.taken_at, county.summary) if county else (None, None)
                yield period, province.County(child.id, child.name, child.code, taken_at, summary)

    def dispose(self) -> None:
        """Close every county connection (a command's end, a test's)."""
        for county in self.counties:
            county.reports.primary.dispose()
            if county.reports.replica is not None:
                county.reports.replica.dispose()


def dispose(app: Flask) -> None:
    """Close the county connections of a province's app; nothing for any other app."""
    databases = app.extensions.get(province.COUNTY_DATABASES)
    if isinstance(databases, CountyDatabases):
        databases.dispose()


def _read(
    county: CountyDatabase, periods: list[str], as_of: datetime | None
) -> list[tuple[str, province.County]]:
    """One county database's snapshots; none (and a warning) when it cannot be read."""
    try:
        with county.reports.connect() as conn:
            return list(province.county_snapshots([conn], None, periods, as_of))
    except SQLAlchemyError as exc:
        log.warning(
            "province: county %s cannot be read, listed as missing: %s",
            county.name,
            replica.first_line(exc),
        )
        return []


def init_app(app: Flask, counties: list[FileCounty]) -> None:
    """Each county's report engines, as the county's own app builds them: its
    ``REPORTS_DATABASE_URL`` setting when it has one, else its primary."""
    databases = []
    for county in counties:
        url = county.settings.get("REPORTS_DATABASE_URL")
        max_lag = county.settings.get("REPORTS_MAX_LAG_SECONDS", replica.DEFAULT_MAX_LAG_SECONDS)
        reports = replica.ReportDatabases(
            replica.report_engine(county.database_url),
            replica.report_engine(url) if url else None,
            float(max_lag),
        )
        databases.append(CountyDatabase(county.name, reports))
    app.extensions[province.COUNTY_DATABASES] = CountyDatabases(databases)


class ProvinceError(Exception):
    """The province's regions cannot be copied; the message says why."""


def copy_county_regions(name: str | None, code: str | None) -> dict[str, Any]:
    """``zoufang --county province province regions``: the province region (made with ``name``
    and ``code`` when the province database has none yet) and, under it, each county's county
    region with its id, name and code as its own database holds them. What is there already is
    kept; a county database that cannot be read stops the command, naming it."""
    from server.service import create_server_records, store

    databases = current_app.extensions.get(province.COUNTY_DATABASES)
    if not isinstance(databases, CountyDatabases):
        raise ProvinceError("this is no province's database: run it as zoufang --county province")
    r = REGIONS.c
    with store().engine.connect() as conn:
        rows = conn.execute(select(r.id, r.level, r.parent_id).where(~r.deleted)).all()
    present = {row.id for row in rows}
    roots = [row.id for row in rows if row.level == province.LEVEL and row.parent_id is None]
    items: list[tuple[str, str, dict[str, Any]]] = []
    if roots:
        province_id = roots[0]
    elif name:
        province_id = new_id()
        region = {"parent_id": None, "level": province.LEVEL, "name": name, "code": code}
        items.append(("region", province_id, region))
    else:
        raise ProvinceError("the province database has no province region yet: give its --name")
    counties: dict[str, list[str]] = {}
    for county in databases.counties:
        try:
            with county.reports.primary.connect() as conn:
                found = province.counties_of(conn, None)
        except SQLAlchemyError as exc:
            reason = replica.first_line(exc)
            raise ProvinceError(
                f"county {county.name}: its database cannot be read: {reason}"
            ) from None
        counties[county.name] = [row.id for row in found]
        for row in found:
            if row.id not in present:
                data = {"parent_id": province_id, "level": "county", "name": row.name}
                items.append(("region", row.id, {**data, "code": row.code}))
    create_server_records(items, actor=None)
    return {"province_id": province_id, "created": len(items), "counties": counties}
