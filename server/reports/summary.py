"""Which households were visited in which period: the summary the reports read.

A county's week is ~50,000 visits; reading them for every coverage figure, and twelve weeks of
them for a trend, is what made the reports slow. ``household_periods`` holds one row per
(period, household) with a visit that *counts* — stored, not voided, not replaced by a
correction — for the ISO week and the month of the visit's effective time in the server's
TIMEZONE: how many such visits, and when the first and the last of them arrived.

It is derived, never edited: every change of a visit (a new visit, a void, a correction that
replaces another) gives that visit a new ``version``, so catching up is reading the visits
newer than the watermark, and recomputing from the visits themselves — with ``counting``, the
rule the direct report queries use — the (period, household) pairs they touch. A correction
also touches the pairs of the visit it replaces. Versions are handed out in commit order
(server/store.py), so reading ``version > watermark`` never skips a late commit.

Who catches up: a report before it reads, when few visits are waiting (``INLINE``); otherwise
it answers from the visits directly and the ``visit_summary`` job (every few minutes, and once
at start) catches up in rounds. Reports for another time zone or ``as_of`` a past moment read
the visits directly: the summary is the current state in the server's zone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from server.reports.periods import Period, local_day, periods_of
from server.storage.db import writing
from server.storage.models import HouseholdPeriod
from server.storage.store import COUNTERS, TABLES, chunks, read_setting, write_setting

log = logging.getLogger(__name__)

SUMMARY: Table = HouseholdPeriod.__table__  # type: ignore[assignment]
VISITS = TABLES["visit"]
V = VISITS.alias("v")  # the visits as every query here reads them
WATERMARK = "household_periods"  # the counters row: the last visit version summarized
ZONE_KEY = "household_periods.zone"
ROUND = 20_000  # visits read per catch-up transaction
INLINE = 5_000  # a report catches up itself when at most this many visits wait


def counting(v: Any, as_of: datetime | None) -> ColumnElement[bool]:
    """A visit that counts: stored, not voided, not replaced by a correction — as the server
    knew it at ``as_of`` (received by then; a void or a correction only once it had arrived)."""
    correction = VISITS.alias("correction")
    replaced = exists().where(
        correction.c.corrects.is_not(None),  # what the partial index holds; tells the planner
        correction.c.corrects == v.c.id,  # corrections are rare
        _live(correction, as_of),
    )
    return and_(_live(v, as_of), ~replaced)


def _live(v: Any, as_of: datetime | None) -> ColumnElement[bool]:
    if as_of is None:
        return and_(~v.c.deleted, ~v.c.voided)
    return and_(
        ~v.c.deleted,
        func.coalesce(v.c.received_at, v.c.visited_at_effective) <= as_of,
        or_(~v.c.voided, and_(v.c.voided_at.is_not(None), v.c.voided_at > as_of)),
    )


def usable(engine: Engine, zone: ZoneInfo) -> bool:
    """Whether a report in ``zone`` may read the summary now: it is kept in that zone and, after
    catching up here if only a few visits wait, no visit is missing from it."""
    with engine.connect() as conn:
        mark = _read_watermark(conn) if _zone(conn) == zone.key else 0  # 0: built anew
        waiting = _waiting(conn, mark, INLINE + 1)
    if waiting == 0:
        return True
    if waiting > INLINE:
        return False
    try:
        catch_up(engine, zone)
    except DBAPIError:  # e.g. a read-only replica serving reports: the visits still answer
        log.warning("the visit summary could not catch up; reading the visits", exc_info=True)
        return False
    return True


def complete(conn: Connection, zone: ZoneInfo) -> bool:
    """Whether the summary read through ``conn`` is kept in ``zone`` and holds every visit
    there, without catching up: a replica can only read what the primary summarized."""
    return _zone(conn) == zone.key and _waiting(conn, _read_watermark(conn), 1) == 0


def catch_up(engine: Engine, zone: ZoneInfo) -> int:
    """Summarize the visits newer than the watermark, ``ROUND`` at a time, until none wait.
    Built anew, in one transaction, the first time and when TIMEZONE changed. Returns the
    number of visits read."""
    done = 0
    while True:
        read = _round(engine, zone)
        done += read
        if read < ROUND:
            return done


def _round(engine: Engine, zone: ZoneInfo) -> int:
    with writing(engine) as conn:
        mark = _watermark(conn, lock=engine.dialect.name == "postgresql")
        if _zone(conn) != zone.key:  # new, or a new TIMEZONE: every period label changes
            return _rebuild(conn, zone)
        changed = conn.execute(
            select(V.c.version, V.c.household_id, V.c.visited_at_effective, V.c.corrects)
            .where(V.c.version > mark)
            .order_by(V.c.version)
            .limit(ROUND)
        ).all()
        if not changed:
            return 0
        touched: dict[str, set[str]] = {}
        for row in changed:
            touched.setdefault(row.household_id, set()).update(
                periods_of(row.visited_at_effective, zone)
            )
        _touch_corrected(conn, [r.corrects for r in changed if r.corrects], touched, zone)
        for households in chunks(sorted(touched)):
            _recompute(conn, {h: touched[h] for h in households}, zone)
        _set_watermark(conn, changed[-1].version)
        return len(changed)


def _rebuild(conn: Connection, zone: ZoneInfo) -> int:
    """Every row anew from every visit that counts, period after period — all the weeks, then
    all the months — so that a period's rows are stored together (PostgreSQL keeps rows in the
    order they were written; a week's rows scattered over the table made each report read a
    page per household). 2.6 million visits: about a minute. Visits committed meanwhile are
    newer than the watermark set here and are summarized by the next round; recomputing a pair
    twice is harmless. Returns the number of visits that count."""
    head = int(
        conn.execute(select(COUNTERS.c.value).where(COUNTERS.c.name == "version")).scalar() or 0
    )
    conn.execute(delete(SUMMARY))
    first, last = conn.execute(
        select(func.min(V.c.visited_at_effective), func.max(V.c.visited_at_effective))
    ).one()
    counted = 0
    for policy in ("weekly", "monthly") if first is not None else ():
        period = Period.containing(local_day(first, zone), policy)
        while period.bounds(zone)[0] <= last:
            start, end = period.bounds(zone)
            rows = _rows(
                _summarize(
                    conn, zone, {period.label}, V.c.visited_at_effective >= start,
                    V.c.visited_at_effective < end,
                )
            )  # fmt: skip
            for chunk in chunks(rows, 5_000):
                conn.execute(insert(SUMMARY), chunk)
            if policy == "weekly":
                counted += sum(row["visits"] for row in rows)
            period = period.following()
    _set_zone(conn, zone.key)
    _set_watermark(conn, head)
    return counted


def _summarize(
    conn: Connection, zone: ZoneInfo, labels: set[str], *where: ColumnElement[bool]
) -> dict[Any, dict[str, Any]]:
    """The rows of the ``labels`` periods from the visits that count among those of ``where``
    (on ``V``), keyed by (period, household)."""
    received = func.coalesce(V.c.received_at, V.c.visited_at_effective)
    query = (
        select(V.c.household_id, V.c.village_id, V.c.visited_at_effective, received)
        .where(*where, counting(V, None))
        .order_by(V.c.household_id, V.c.visited_at_effective)
    )
    summary: dict[Any, dict[str, Any]] = {}
    for row in conn.execute(query):
        _add(summary, row, zone, labels)
    return summary


def _add(
    summary: dict[Any, dict[str, Any]], row: Any, zone: ZoneInfo, labels: set[str] | None
) -> None:
    """Count one visit (household, village, effective time, arrival) into its periods' rows,
    keyed by (period, household); only the periods of ``labels`` when given."""
    household_id, village_id, at, arrived = row
    for label in periods_of(at, zone):
        if labels is not None and label not in labels:
            continue
        entry = summary.get((label, household_id))
        if entry is None:
            summary[(label, household_id)] = {
                "period": label,
                "household_id": household_id,
                "village_id": village_id,
                "visits": 1,
                "first_received": arrived,
                "last_received": arrived,
                "received": [arrived],
            }
        else:
            entry["village_id"] = village_id  # the latest visit's village
            entry["visits"] += 1
            entry["first_received"] = min(entry["first_received"], arrived)
            entry["last_received"] = max(entry["last_received"], arrived)
            entry["received"].append(arrived)


def _rows(summary: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entry, "received": received_text(entry["received"])} for entry in summary.values()]


def received_text(times: Iterable[datetime]) -> str:
    """When a row's visits arrived, for counting those after a moment: naive UTC ISO times,
    oldest first, space-separated."""
    return " ".join(sorted(t.isoformat(timespec="seconds") for t in times))


def arrived_after(text: str, moment: datetime) -> int:
    """How many of the times of ``received_text`` are after ``moment``."""
    return sum(datetime.fromisoformat(t) > moment for t in text.split())


def _touch_corrected(
    conn: Connection, ids: list[str], touched: dict[str, set[str]], zone: ZoneInfo
) -> None:
    """A correction moves the count away from the visit it replaces (and back when the
    correction is voided): that visit's periods are touched too."""
    for chunk in chunks(ids):
        rows = conn.execute(
            select(V.c.household_id, V.c.visited_at_effective).where(V.c.id.in_(chunk))
        ).all()
        for row in rows:
            touched.setdefault(row.household_id, set()).update(
                periods_of(row.visited_at_effective, zone)
            )


def _recompute(conn: Connection, touched: dict[str, set[str]], zone: ZoneInfo) -> None:
    """Rewrite from the visits the rows of every household of ``touched`` for every period
    touched in the chunk (a superset of the pairs touched: what is deleted is rewritten)."""
    labels = set().union(*touched.values())
    bounds = [Period.parse(label).bounds(zone) for label in labels]
    summary = _summarize(
        conn,
        zone,
        labels,
        V.c.household_id.in_(list(touched)),
        V.c.visited_at_effective >= min(b[0] for b in bounds),
        V.c.visited_at_effective < max(b[1] for b in bounds),
    )
    conn.execute(
        delete(SUMMARY).where(
            SUMMARY.c.household_id.in_(list(touched)), SUMMARY.c.period.in_(sorted(labels))
        )
    )
    if summary:
        conn.execute(insert(SUMMARY), _rows(summary))


def _waiting(conn: Connection, mark: int, limit: int) -> int:
    """How many visits are newer than the watermark, counted up to ``limit``."""
    newer = select(V.c.version).where(V.c.version > mark).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(newer)).scalar() or 0)


def _read_watermark(conn: Connection) -> int:
    query = select(COUNTERS.c.value).where(COUNTERS.c.name == WATERMARK)
    return int(conn.execute(query).scalar() or 0)


def _watermark(conn: Connection, lock: bool = False) -> int:
    """The watermark (its row is made by migration 0006), locked on PostgreSQL so that one
    process at a time catches up."""
    query = select(COUNTERS.c.value).where(COUNTERS.c.name == WATERMARK)
    if lock:
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


def _set_watermark(conn: Connection, value: int) -> None:
    conn.execute(update(COUNTERS).where(COUNTERS.c.name == WATERMARK).values(value=value))


def _zone(conn: Connection) -> str | None:
    zone = read_setting(conn, ZONE_KEY)
    return None if zone is None else str(zone)


def _set_zone(conn: Connection, key: str) -> None:
    write_setting(conn, ZONE_KEY, key)
