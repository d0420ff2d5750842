"""What supervisors read: visit coverage by period and region, the trend, the overdue
households, and who may read which report. Definitions are in docs/reports.md; the problem
list is server/reports/problems.py.

Every figure is aggregated by the database (SQLAlchemy Core, the same queries on SQLite and
PostgreSQL); Python only rolls villages up into townships and formats the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import (
    Table,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from server import service
from server.auth import Caller
from server.http.errors import ApiError
from server.reports.periods import Period, invalid
from server.reports.summary import SUMMARY, arrived_after, complete, counting, usable
from server.storage import replica
from server.storage.models import Assignment as AssignmentRow
from server.storage.models import AuditEntry, Snapshot, User
from server.storage.store import OPS, TABLES, WRITES, chunks
from server.timeutil import utcnow
from sync.scope import Scope

REGIONS = TABLES["region"]
HOUSEHOLDS = TABLES["household"]
PEOPLE = TABLES["person"]
VISITS = TABLES["visit"]
PROBLEMS = TABLES["problem"]
CONFLICTS = TABLES["conflict"]
ASSIGNMENTS: Table = AssignmentRow.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
SNAPSHOTS: Table = Snapshot.__table__  # type: ignore[assignment]

OPEN_STATUSES = ("open", "in_progress")
SUPERVISING_ROLES = ("supervisor", "admin")
#: who made the changes the server makes by itself (escalation)
SYSTEM_USER = "system"
EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "everything")


def zone_of(tz: str | None) -> ZoneInfo:
    name = tz or current_app.config["TIMEZONE"]
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid("tz", f"unknown time zone {name!r}") from exc


def parse_as_of(value: str | datetime | None, zone: ZoneInfo) -> datetime | None:
    """``as_of`` as naive UTC. A string without offset is local time in ``zone`` (a date alone
    is its local midnight); a naive datetime object is UTC, like the database columns."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(tzinfo=None)
    text = value.strip().replace("Z", "+00:00")
    if " " in text and "T" in text:  # a "+" that a query string turned into a space
        text = text.replace(" ", "+")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid("as_of", "an ISO 8601 time, e.g. 2026-11-23T09:00:00+08:00") from exc
    if not 1970 <= moment.year <= 2100:  # and 0001-01-01 would overflow the conversion
        raise invalid("as_of", "the year must be between 1970 and 2100")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).replace(tzinfo=None)


def local_iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """A naive UTC time as ISO 8601 in the report's time zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="seconds")


def local_today(zone: ZoneInfo) -> date:
    return utcnow().replace(tzinfo=UTC).astimezone(zone).date()


def ratio(visited: int, due: int) -> float:
    return round(visited / due, 4) if due else 1.0


# --- regions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionInfo:
    id: str
    parent_id: str | None
    level: str
    name: str
    code: str | None

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "level": self.level}


class Regions:
    """The region tree with names: county → township → village."""

    def __init__(self, rows: Iterable[RegionInfo]) -> None:
        self.by_id = {r.id: r for r in rows}
        self.children: dict[str | None, list[RegionInfo]] = {}
        for region in sorted(self.by_id.values(), key=lambda r: (r.code or "", r.name)):
            self.children.setdefault(region.parent_id, []).append(region)

    @classmethod
    def load(cls, conn: Connection) -> Regions:
        r = REGIONS.c
        rows = conn.execute(
            select(r.id, r.parent_id, r.level, r.name, r.code).where(~r.deleted)
        ).all()
        return cls(RegionInfo(*row) for row in rows)

    def get(self, region_id: str) -> RegionInfo:
        region = self.by_id.get(region_id)
        if region is None:
            raise ApiError("not_found", f"no region {region_id}")
        return region

    def below(self, region_id: str) -> Iterator[RegionInfo]:
        """The region and everything under it, depth first, siblings by code and name."""
        stack = [self.by_id[region_id]]
        while stack:
            region = stack.pop()
            yield region
            stack.extend(reversed(self.children.get(region.id, [])))

    def villages(self, region_id: str) -> list[str]:
        return [r.id for r in self.below(region_id) if r.level == "village"]

    def lineage(self, region_id: str | None) -> list[RegionInfo]:
        """The region and its ancestors, nearest first."""
        out = []
        while region_id is not None and region_id in self.by_id:
            out.append(self.by_id[region_id])
            region_id = self.by_id[region_id].parent_id
        return out

    def child_towards(self, region_id: str, village_id: str) -> RegionInfo | None:
        """The child of ``region_id`` on the way down to ``village_id``."""
        for region in self.lineage(village_id):
            if region.parent_id == region_id:
                return region
        return None

    def of_level(self, village_id: str | None, level: str) -> RegionInfo | None:
        return next((r for r in self.lineage(village_id) if r.level == level), None)

    def village_ids(self, region_id: str) -> list[str] | None:
        """The villages under ``region_id``; None when that is every village (no filter)."""
        villages = self.villages(region_id)
        if len(villages) == sum(1 for r in self.by_id.values() if r.level == "village"):
            return None
        return villages


def in_villages(table: Any, villages: list[str] | None) -> ColumnElement[bool]:
    if villages is None:
        return true()
    return table.c.village_id.in_(villages) if villages else false()


def holds(table: Table, scope: Scope | None) -> ColumnElement[bool]:
    """SQL for Scope.holds on a table with village_id and household_id columns."""
    if scope is None or scope.everything:
        return true()
    clauses = []
    if scope.village_ids:
        clauses.append(table.c.village_id.in_(sorted(scope.village_ids)))
    if scope.household_ids:
        clauses.append(table.c.household_id.in_(sorted(scope.household_ids)))
    return or_(*clauses) if clauses else false()


def assigned_to(households: Table, user_id: str) -> ColumnElement[bool]:
    """Households whose village, or the household itself, is assigned to the user (包保)."""
    a = ASSIGNMENTS.c
    return or_(
        households.c.village_id.in_(
            select(a.target_id).where(a.user_id == user_id, a.kind == "region")
        ),
        households.c.id.in_(select(a.target_id).where(a.user_id == user_id, a.kind == "household")),
    )


# --- the building blocks: which households are due, which visits count -----------------------


@dataclass(frozen=True)
class Due:
    """The households a report is about: one visit policy, the region, and optionally only the
    households a scope holds (a cadre's own) or a cadre is responsible for."""

    policy: str
    villages: list[str] | None  # None: every village
    scope: Scope | None = None
    cadre_id: str | None = None

    def where(self, h: Any) -> list[ColumnElement[bool]]:
        clauses = [
            ~h.c.deleted,
            h.c.visit_policy == self.policy,
            in_villages(h, self.villages),
            holds(h, self.scope),
        ]
        if self.cadre_id is not None:
            clauses.append(assigned_to(h, self.cadre_id))
        return clauses

    def visits(self, v: Any) -> list[ColumnElement[bool]]:
        """What narrows the visits read before their households are: region and scope. The
        region is tested on ``village_id || ''``, an expression, so that SQLite still reads a
        period's visits by time rather than a village's whole history by village."""
        if self.villages is None:
            return [holds(v, self.scope)]
        return [v.c.village_id.concat("").in_(self.villages), holds(v, self.scope)]

    def status(self, h: Any, archived: Iterable[str]) -> ColumnElement[bool]:
        ids = sorted(archived)
        return or_(h.c.status == "active", h.c.id.in_(ids)) if ids else h.c.status == "active"


def archived_times(conn: Connection, due: Due) -> dict[str, tuple[str | None, datetime | None]]:
    """Archived households of the report → (village, when the archiving arrived). An archived
    household stays due for the periods it was still active at the end of."""
    h = HOUSEHOLDS.alias("h")
    rows = conn.execute(
        select(h.c.id, h.c.village_id).where(*due.where(h), h.c.status == "archived")
    ).all()
    villages = {r.id: r.village_id for r in rows}
    when: dict[str, datetime] = {}
    for chunk in chunks(villages):
        found = conn.execute(
            select(WRITES.c.record_id, func.max(OPS.c.received_at))
            .join(OPS, OPS.c.op_id == WRITES.c.op_id)
            .where(
                WRITES.c.record_type == "household",
                WRITES.c.field == "status",
                WRITES.c.value == json.dumps("archived"),
                WRITES.c.record_id.in_(chunk),
                OPS.c.status.in_(("applied", "conflict")),
            )
            .group_by(WRITES.c.record_id)
        ).all()
        when.update({r[0]: r[1] for r in found})
    return {i: (village, when.get(i)) for i, village in villages.items()}


def still_due(
    archived: dict[str, tuple[str | None, datetime | None]], cutoff: datetime
) -> set[str]:
    """The archived households that were archived only after ``cutoff``."""
    return {i for i, (_, at) in archived.items() if at is not None and at > cutoff}


@dataclass(frozen=True)
class Window:
    """One period of a query: its label, UTC bounds, and which archived households are due."""

    label: str
    start: datetime
    end: datetime
    archived_due: frozenset[str]


def due_ids(due: Due, archived_due: Iterable[str] = ()) -> Any:
    """The ids of the due households, as a subquery for ``household_id IN (…)``: a semi-join
    (PostgreSQL hashes it, SQLite builds one temporary index) instead of a join per visit."""
    h = HOUSEHOLDS.alias("due_household")
    return select(h.c.id).where(*due.where(h), due.status(h, archived_due))


def visited_by_week(
    conn: Connection, due: Due, windows: list[Window], summarized: bool
) -> dict[str, int]:
    """Window label → households due and visited in it, for consecutive windows, in one
    statement: from the summary, a window's rows are its visited households; from the visits,
    one range read labels each with its window and groups by (window, household). Then the
    due households are picked out."""
    if summarized:
        s = SUMMARY.alias("s")
        visited = (
            select(s.c.period.label("label"), s.c.household_id)
            .where(s.c.period.in_([w.label for w in windows]), *due.visits(s))
            .subquery("visited")
        )
    else:
        v = VISITS.alias("v")
        label = case(*((v.c.visited_at_effective < w.end, literal(w.label)) for w in windows))
        visited = (
            select(label.label("label"), v.c.household_id)
            .where(
                v.c.visited_at_effective >= windows[0].start,
                v.c.visited_at_effective < windows[-1].end,
                counting(v, None),
                *due.visits(v),
            )
            .group_by(label, v.c.household_id)
            .subquery("visited")
        )
    archived = [
        and_(visited.c.label == w.label, visited.c.household_id.in_(sorted(w.archived_due)))
        for w in windows
        if w.archived_due
    ]
    query = (
        select(visited.c.label, func.count())
        .where(or_(visited.c.household_id.in_(due_ids(due)), *archived))
        .group_by(visited.c.label)
    )
    return {r[0]: r[1] for r in conn.execute(query)}


def due_by_village(conn: Connection, due: Due) -> dict[str | None, int]:
    """Village → active households due (archived ones are added per period by the caller)."""
    h = HOUSEHOLDS.alias("h")
    query = (
        select(h.c.village_id, func.count())
        .where(*due.where(h), h.c.status == "active")
        .group_by(h.c.village_id)
    )
    return {r[0]: r[1] for r in conn.execute(query)}


def household_flags(
    due: Due,
    window: tuple[datetime, datetime],
    start: datetime,
    as_of: datetime | None,
    since: datetime | None,
) -> Any:
    """A CTE with one row per household with a visit that counts in ``window``, read once from
    the time index (whether the household is due is the reader's business): its village;
    ``visited`` when one of those visits is in [start, window end); ``late_visits``, those
    received after ``since``; ``first_received``, the earliest arrival among them."""
    v = VISITS.alias("v")
    in_period = v.c.visited_at_effective >= start
    received = func.coalesce(v.c.received_at, v.c.visited_at_effective)
    late = and_(in_period, received > since) if since is not None else false()
    return (
        select(
            v.c.village_id,
            v.c.household_id,
            func.max(case((in_period, 1), else_=0)).label("visited"),
            func.sum(case((late, 1), else_=0)).label("late_visits"),
            func.min(case((in_period, received))).label("first_received"),
        )
        .where(
            v.c.visited_at_effective >= window[0],
            v.c.visited_at_effective < window[1],
            counting(v, as_of),
            *due.visits(v),
        )
        .group_by(v.c.village_id, v.c.household_id)
        .cte("flags")
    )


def visits_due(ctx: Context, archived_due: Iterable[str], since: datetime | None) -> Any:
    """The due households, one row each, with what the visits say of them: ``visited`` in
    the period, ``in_window`` (visited in the period or, for a current one, the one before),
    ``late_visits`` and ``late_household`` (arrived after ``since``)."""
    window_start = ctx.start
    if ctx.state == "current":
        window_start = ctx.period.previous().bounds(ctx.zone)[0]
    flags = household_flags(ctx.due, (window_start, ctx.end), ctx.start, ctx.as_of, since)
    h = HOUSEHOLDS.alias("h")
    late_household = case((flags.c.first_received > since, 1), else_=0) if since else literal(0)
    return (
        select(
            h.c.village_id,
            h.c.id.label("household_id"),
            func.coalesce(flags.c.visited, 0).label("visited"),
            case((flags.c.household_id.is_(None), 0), else_=1).label("in_window"),
            func.coalesce(flags.c.late_visits, 0).label("late_visits"),
            late_household.label("late_household"),
            null().label("received"),  # late visits are counted exactly in flags
        )
        .select_from(h.outerjoin(flags, flags.c.household_id == h.c.id))
        .where(*ctx.due.where(h), ctx.due.status(h, archived_due))
        .cte("due")
    )


def summary_due(ctx: Context, archived_due: Iterable[str], since: datetime | None) -> Any:
    """``visits_due`` from household_periods: each due household with its summary row of the
    period, if any (one hash join on PostgreSQL, a primary-key probe on SQLite). A row whose
    visits arrived on both sides of ``since`` carries their arrival times in ``received``, for
    Python to count its late ones (rare)."""
    s = SUMMARY.alias("s")
    h = HOUSEHOLDS.alias("h")
    row = and_(s.c.household_id == h.c.id, s.c.period == ctx.period.label, *ctx.due.visits(s))
    in_window: ColumnElement[int] = literal(0)  # what only a current period's overdue needs
    if ctx.state == "current":
        either = select(s.c.household_id).where(
            s.c.period.in_([ctx.period.previous().label, ctx.period.label]), *ctx.due.visits(s)
        )
        in_window = case((h.c.id.in_(either), 1), else_=0)
    late_visits: ColumnElement[Any] = literal(0)
    late_household: ColumnElement[Any] = literal(0)
    received: ColumnElement[Any] = null()
    if since is not None:
        late_visits = case((s.c.first_received > since, s.c.visits), else_=0)
        late_household = case((s.c.first_received > since, 1), else_=0)
        some_late = and_(s.c.first_received <= since, s.c.last_received > since)
        received = case((some_late, s.c.received), else_=null())
    return (
        select(
            h.c.village_id,
            h.c.id.label("household_id"),
            case((s.c.household_id.is_(None), 0), else_=1).label("visited"),
            in_window.label("in_window"),
            late_visits.label("late_visits"),
            late_household.label("late_household"),
            received.label("received"),
        )
        .select_from(h.outerjoin(s, row))
        .where(*ctx.due.where(h), ctx.due.status(h, archived_due))
        .cte("due")
    )


def visited_in(due: Due, start: datetime, end: datetime, as_of: datetime | None) -> Any:
    """The households (any, due or not) with a visit that counts in [start, end), read from
    the time index; grouped by village first, so that no database reads them through the
    household index instead."""
    v = VISITS.alias("visited")
    return (
        select(v.c.household_id)
        .where(
            v.c.visited_at_effective >= start,
            v.c.visited_at_effective < end,
            counting(v, as_of),
            *due.visits(v),
        )
        .group_by(v.c.village_id, v.c.household_id)
    )


def visited_set(
    due: Due, start: datetime, end: datetime, as_of: datetime | None, archived: Iterable[str]
) -> Any:
    """The ids of due households with a visit that counts in [start, end)."""
    visited = visited_in(due, start, end, as_of).subquery()
    return select(visited.c.household_id).where(visited.c.household_id.in_(due_ids(due, archived)))


# --- coverage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every coverage figure of one request shares."""

    period: Period
    zone: ZoneInfo
    start: datetime
    end: datetime
    as_of: datetime | None  # naive UTC, None for "what the server knows now"
    reference: datetime  # as_of or now: what is past, current or future
    regions: Regions
    region: RegionInfo
    due: Due
    summarized: bool  # read household_periods, not the period's visits (server/summary.py)

    @property
    def state(self) -> str:
        if self.end <= self.reference:
            return "past"
        return "current" if self.start <= self.reference else "future"


def _summarized(
    tz: str | None, as_of: datetime | str | None, conn: Connection | None = None
) -> bool:
    """Whether a report reading ``conn`` can read household_periods: it asks for the current
    state in the server's time zone, and the summary has every visit (server/summary.py). On
    a replica the summary is the primary's as replayed, complete or not: it cannot catch up."""
    zone = zone_of(tz)
    if parse_as_of(as_of, zone) is not None or zone.key != current_app.config["TIMEZONE"]:
        return False
    if conn is not None and replica.on_replica(conn):
        return complete(conn, zone)
    return usable(service.store().engine, zone)


def _context(
    conn: Connection,
    period: str,
    region_id: str,
    as_of: str | datetime | None,
    tz: str | None,
    scope: Scope | None,
    summarized: bool = False,
) -> Context:
    zone = zone_of(tz)
    parsed = Period.parse(period)
    moment = parse_as_of(as_of, zone)
    regions = Regions.load(conn)
    region = regions.get(region_id)
    start, end = parsed.bounds(zone)
    due = Due(parsed.policy, regions.village_ids(region_id), scope)
    return Context(
        parsed,
        zone,
        start,
        end,
        moment,
        moment or replica.known_at(conn),
        regions,
        region,
        due,
        summarized,
    )


def coverage(
    period: str,
    region_id: str,
    as_of: datetime | str | None = None,
    tz: str | None = None,
    *,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """CONTRACT §10: households due in the period and region, and how many were visited.

    ``scope`` limits the report to the households it holds (a cadre's own); None is everything.
    """
    return coverage_and_villages(period, region_id, as_of, tz, scope=scope)[0]


def coverage_and_villages(
    period: str,
    region_id: str,
    as_of: datetime | str | None = None,
    tz: str | None = None,
    *,
    scope: Scope | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The coverage body and the rows behind it: every village under the region with its
    township, due, visited and coverage (the weekly bulletin's table)."""
    with replica.report() as conn:
        summarized = _summarized(tz, as_of, conn)  # before the reads below
        ctx = _context(conn, period, region_id, as_of, tz, scope, summarized)
        bulletin = bulletin_time(conn, ctx)
        since = bulletin or ctx.end
        figures = _figures(conn, ctx, since if since < ctx.reference else None)
    rows = figures.rows
    due = sum(r["due"] for r in rows)
    visited = sum(r["visited"] for r in rows)
    if ctx.state == "past":
        overdue_ = due - visited
    elif ctx.state == "current":
        overdue_ = due - figures.visited_in_window
    else:
        overdue_ = 0
    body = {
        "period": ctx.period.label,
        "policy": ctx.period.policy,
        "start": ctx.period.first.isoformat(),
        "end": ctx.period.last.isoformat(),
        "timezone": ctx.zone.key,
        "region": ctx.region.summary(),
        "as_of": local_iso(ctx.reference, ctx.zone),
        "state": ctx.state,
        "summary": {
            "due": due,
            "visited": visited,
            "overdue": overdue_,
            "coverage": ratio(visited, due),
        },
        "late": {
            "visits": figures.late_visits,
            "households": figures.late_households,
            "since": local_iso(since, ctx.zone),
            "basis": "bulletin" if bulletin else "period_end",
        },
        "children": _children(ctx, rows),
        "cadres": figures.cadres,
    }
    return body, rows


@dataclass(frozen=True)
class Figures:
    rows: list[dict[str, Any]]  # per village: due, visited, coverage
    cadres: list[dict[str, Any]]
    visited_in_window: int  # visited in this period or the previous one (current period)
    late_visits: int
    late_households: int


def _figures(conn: Connection, ctx: Context, since: datetime | None) -> Figures:
    """Per village and per cadre: due and visited households, and the totals overdue and late
    need. One statement; the period's visits are read once (docs/reports.md, Speed)."""
    archived = archived_times(conn, ctx.due)
    archived_due = frozenset(still_due(archived, min(ctx.end, ctx.reference)))
    if ctx.summarized:
        due = summary_due(ctx, archived_due, since)
    else:
        due = visits_due(ctx, archived_due, since)
    by_village = select(
        literal("village").label("kind"),
        due.c.village_id.label("key"),
        func.count().label("due"),
        func.sum(due.c.visited).label("visited"),
        func.sum(due.c.in_window).label("in_window"),
        func.sum(due.c.late_visits).label("late_visits"),
        func.sum(due.c.late_household).label("late_households"),
    ).group_by(due.c.village_id)
    villages: dict[str, dict[str, int]] = {}
    by_household: dict[str, dict[str, int]] = {}
    names = ("due", "visited", "in_window", "late_visits", "late_households")
    some_late = select(literal("received"), due.c.received, *(literal(0) for _ in range(5))).where(
        due.c.received.is_not(None)
    )
    late_visits = 0
    for row in conn.execute(union_all(by_village, _cadres_by_household(due), some_late)):
        kind, key = row[0], row[1]
        if kind == "received":  # a household whose visits arrived on both sides of since
            late_visits += arrived_after(key, since) if since else 0
            continue
        numbers = [int(x or 0) for x in row[2:]]
        if kind == "village":
            villages[key] = dict(zip(names, numbers, strict=True))
        else:
            by_household[key] = dict(zip(names[:2], numbers[:2], strict=True))
    rows = []
    for village_id in ctx.regions.villages(ctx.region.id):
        village = ctx.regions.by_id[village_id]
        township = ctx.regions.of_level(village_id, "township")
        figures = villages.get(village_id, {})
        due, visited = figures.get("due", 0), figures.get("visited", 0)
        rows.append(
            {
                "village_id": village_id,
                "village": village.name,
                "township_id": township.id if township else None,
                "township": township.name if township else "",
                "due": due,
                "visited": visited,
                "coverage": ratio(visited, due),
            }
        )

    def total(name: str) -> int:
        return sum(f.get(name, 0) for f in villages.values())

    late_visits += total("late_visits")
    return Figures(
        rows,
        _cadres(conn, ctx, villages, by_household),
        total("in_window"),
        late_visits,
        total("late_households"),
    )


def _cadres_by_household(due: Any) -> Any:
    """Per cadre, their 包保 households that are due (leaving out those in a village the
    cadre is assigned anyway), and how many of those were visited."""
    a, own = ASSIGNMENTS.alias("a"), ASSIGNMENTS.alias("own")
    in_own_village = exists().where(
        own.c.user_id == a.c.user_id, own.c.kind == "region", own.c.target_id == due.c.village_id
    )
    return (
        select(
            literal("cadre"),
            a.c.user_id,
            func.count(),
            func.sum(due.c.visited),
            literal(0),
            literal(0),
            literal(0),
        )
        .select_from(
            a.join(due, and_(a.c.kind == "household", a.c.target_id == due.c.household_id))
        )
        .where(~in_own_village)
        .group_by(a.c.user_id)
    )


def _cadres(
    conn: Connection,
    ctx: Context,
    villages: dict[str, dict[str, int]],
    by_household: dict[str, dict[str, int]],
) -> list[dict[str, Any]]:
    """Each active cadre with due households in the report: those of their villages plus
    their other 包保 households, and how many of them were visited (by anyone)."""
    a, u = ASSIGNMENTS.c, USERS.c
    query = (
        select(u.id, a.target_id)
        .join(USERS, u.id == a.user_id)
        .where(a.kind == "region", u.role == "cadre", u.active)
    )
    if ctx.due.villages is not None:
        query = query.where(a.target_id.in_(ctx.due.villages))
    totals: dict[str, list[int]] = {}
    for user_id, village_id in conn.execute(query):
        figures = totals.setdefault(user_id, [0, 0])
        figures[0] += villages.get(village_id, {}).get("due", 0)
        figures[1] += villages.get(village_id, {}).get("visited", 0)
    for user_id, figures in by_household.items():
        mine = totals.setdefault(user_id, [0, 0])
        mine[0] += figures["due"]
        mine[1] += figures["visited"]
    names = dict(conn.execute(select(u.id, u.name).where(u.role == "cadre", u.active)).all())
    out = [
        {
            "user_id": user_id,
            "name": names[user_id],
            "due": due,
            "visited": visited,
            "coverage": ratio(visited, due),
        }
        for user_id, (due, visited) in totals.items()
        if user_id in names
    ]
    return sorted(out, key=lambda c: (c["name"], c["user_id"]))


def _children(ctx: Context, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, list[int]] = {}
    for row in rows:
        child = ctx.regions.child_towards(ctx.region.id, row["village_id"])
        if child is not None:
            figures = totals.setdefault(child.id, [0, 0])
            figures[0] += row["due"]
            figures[1] += row["visited"]
    out = []
    for child in ctx.regions.children.get(ctx.region.id, []):
        due, visited = totals.get(child.id, [0, 0])
        out.append(
            {
                "region_id": child.id,
                "name": child.name,
                "level": child.level,
                "due": due,
                "visited": visited,
                "coverage": ratio(visited, due),
            }
        )
    return out


def bulletin_time(conn: Connection, ctx: Context) -> datetime | None:
    """When the first bulletin of the period covering this region was taken, if it was known
    at the report's moment."""
    s = SNAPSHOTS.c
    lineage = [r.id for r in ctx.regions.lineage(ctx.region.id)]
    return conn.execute(  # type: ignore[no-any-return]
        select(func.min(s.taken_at)).where(
            s.kind == "bulletin",
            s.period == ctx.period.label,
            or_(s.region_id.is_(None), s.region_id.in_(lineage)),
            s.taken_at <= ctx.reference,
        )
    ).scalar()


def trend_weeks(weeks: int, until: str | None, zone: ZoneInfo) -> list[Period]:
    """The last ``weeks`` ISO weeks up to ``until`` (default: this week), oldest first."""
    if not 1 <= weeks <= 260:
        raise invalid("weeks", "between 1 and 260")
    last = Period.parse(until) if until else Period.containing(local_today(zone), "weekly")
    if last.policy != "weekly":
        raise invalid("until", "an ISO week like 2026-W47")
    periods = [last]
    while len(periods) < weeks:
        periods.insert(0, periods[0].previous())
    return periods


def trend(
    region_id: str,
    weeks: int = 12,
    until: str | None = None,
    *,
    scope: Scope | None = None,
    tz: str | None = None,
) -> list[dict[str, Any]]:
    """Weekly coverage of the last ``weeks`` ISO weeks up to ``until`` (default: this week),
    oldest first, in one query over all the weeks."""
    zone = zone_of(tz)
    periods = trend_weeks(weeks, until, zone)
    with replica.report() as conn:
        now = replica.known_at(conn)
        summarized = _summarized(tz, None, conn)
        regions = Regions.load(conn)
        regions.get(region_id)
        due = Due("weekly", regions.village_ids(region_id), scope)
        archived = archived_times(conn, due)
        active = sum(due_by_village(conn, due).values())
        windows = []
        for period in periods:
            start, end = period.bounds(zone)
            windows.append(
                Window(period.label, start, end, frozenset(still_due(archived, min(end, now))))
            )
        totals = visited_by_week(conn, due, windows, summarized)
    out = []
    for period, window in zip(periods, windows, strict=True):
        households = active + len(window.archived_due)
        count = totals.get(period.label, 0)
        out.append(
            {
                "period": period.label,
                "start": period.first.isoformat(),
                "end": period.last.isoformat(),
                "due": households,
                "visited": count,
                "coverage": ratio(count, households),
            }
        )
    return out


# --- overdue households --------------------------------------------------------------------------


def overdue(
    region_id: str,
    today: date | None = None,
    cadre_id: str | None = None,
    *,
    scope: Scope | None = None,
    tz: str | None = None,
) -> list[dict[str, Any]]:
    """Households past due on ``today``: weekly ones with no visit in this ISO week or the
    previous one, monthly ones with none in this month or the previous one. Most overdue
    first (never visited before all), with their cadres and last visit."""
    zone = zone_of(tz)
    today = today or local_today(zone)
    found: list[dict[str, Any]] = []
    with replica.report() as conn:
        regions = Regions.load(conn)
        regions.get(region_id)
        for policy in ("weekly", "monthly"):
            current = Period.containing(today, policy)
            due = Due(policy, regions.village_ids(region_id), scope, cadre_id)
            start = current.previous().bounds(zone)[0]
            end = current.bounds(zone)[1]
            rows = unvisited(conn, due, start, end, None, set())
            for row in rows:
                row.update(_days_overdue(row["last_visit_at"], today, policy, zone))
            found += rows
        out = describe_households(conn, regions, found, zone)
    return sorted(out, key=lambda r: (not r["never_visited"], -(r["days_overdue"] or 0), *place(r)))


def period_unvisited(
    period: str,
    region_id: str,
    as_of: datetime | str | None = None,
    tz: str | None = None,
    *,
    scope: Scope | None = None,
) -> list[dict[str, Any]]:
    """The households due in the period and not visited in it (the bulletin's list), each
    marked ``overdue`` when it was not visited in the previous period either."""
    with replica.report() as conn:
        ctx = _context(conn, period, region_id, as_of, tz, scope)
        archived = archived_times(conn, ctx.due)
        archived_due = still_due(archived, min(ctx.end, ctx.reference))
        rows = unvisited(conn, ctx.due, ctx.start, ctx.end, ctx.as_of, archived_due)
        visited_before: set[str] = set()
        if ctx.state == "current":
            previous_start = ctx.period.previous().bounds(ctx.zone)[0]
            before = visited_set(ctx.due, previous_start, ctx.start, ctx.as_of, archived_due)
            visited_before = {r[0] for r in conn.execute(before)}
        for row in rows:
            row["overdue"] = ctx.state == "past" or (
                ctx.state == "current" and row["id"] not in visited_before
            )
        out = describe_households(conn, ctx.regions, rows, ctx.zone)
    return sorted(out, key=place)


def place(household: dict[str, Any]) -> tuple[str, str, str]:
    """Township, village and code of a listed household: the order of lists on paper."""
    township, village = household["township"], household["village"]
    return (
        township["name"] if township else "",
        village["name"] if village else "",
        household["code"] or "",
    )


def unvisited(
    conn: Connection,
    due: Due,
    start: datetime,
    end: datetime,
    as_of: datetime | None,
    archived_due: set[str],
) -> list[dict[str, Any]]:
    """Due households with no visit that counts in [start, end), with their last visit before
    ``end``. NOT EXISTS lets PostgreSQL pick a hash anti-join for many households (weekly)
    and index probes for few (monthly ones, against two months of visits)."""
    h, v = HOUSEHOLDS.alias("h"), VISITS.alias("v")
    visited = exists().where(
        v.c.household_id == h.c.id,
        v.c.visited_at_effective >= start,
        v.c.visited_at_effective < end,
        counting(v, as_of),
    )
    query = select(
        h.c.id, h.c.village_id, h.c.visit_policy, h.c.category, h.c.code, h.c.data
    ).where(*due.where(h), due.status(h, archived_due), ~visited)
    rows = [
        {
            "id": r.id,
            "village_id": r.village_id,
            "visit_policy": r.visit_policy,
            "category": r.category,
            "code": r.code,
            "data": json.loads(r.data),
            "last_visit_at": None,
            "last_visit": None,
        }
        for r in conn.execute(query)
    ]
    last = last_visits(conn, [r["id"] for r in rows], end, as_of)
    for row in rows:
        visit = last.get(row["id"])
        if visit is not None:
            row["last_visit_at"], row["last_visit"] = visit
    return rows


def last_visits(
    conn: Connection, household_ids: list[str], before: datetime, as_of: datetime | None
) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """Household → (time, visit) of its latest visit that counts, before ``before``: each
    household's visits walked back from ``before`` through its (household, time) index until
    one counts."""
    h, v = HOUSEHOLDS.alias("h"), VISITS.alias("v")
    latest = (
        select(v.c.id)
        .where(v.c.household_id == h.c.id, v.c.visited_at_effective < before, counting(v, as_of))
        .order_by(v.c.visited_at_effective.desc())
        .limit(1)
        .scalar_subquery()
    )
    visit_ids = [
        r[0]
        for chunk in chunks(household_ids)
        for r in conn.execute(select(latest).where(h.c.id.in_(chunk)))
        if r[0] is not None
    ]
    out = {}
    for chunk in chunks(visit_ids):
        rows = conn.execute(
            select(v.c.household_id, v.c.visited_at_effective, v.c.visitor_id, v.c.data).where(
                v.c.id.in_(chunk)
            )
        )
        for r in rows:
            visit = {"visitor_id": r.visitor_id, "mode": json.loads(r.data).get("mode")}
            out[r.household_id] = (r.visited_at_effective, visit)
    return out


def _days_overdue(
    last_visit_at: datetime | None, today: date, policy: str, zone: ZoneInfo
) -> dict[str, Any]:
    """Overdue since the day after the first period that passed with no visit."""
    if last_visit_at is None:
        return {"never_visited": True, "overdue_since": None, "days_overdue": None}
    day = last_visit_at.replace(tzinfo=UTC).astimezone(zone).date()
    missed = Period.containing(day, policy).following()
    return {
        "never_visited": False,
        "overdue_since": missed.end.isoformat(),
        "days_overdue": (today - missed.last).days,
    }


def describe_households(
    conn: Connection, regions: Regions, rows: list[dict[str, Any]], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The household rows as lists show them: names, places, masked phone, cadres, last visit."""
    cadres = cadres_of(conn, [(r["id"], r["village_id"]) for r in rows])
    names = user_names(
        conn, {r["last_visit"]["visitor_id"] for r in rows if r["last_visit"]} - {None}
    )
    out = []
    for row in rows:
        data, last = row["data"], row["last_visit"]
        village = regions.by_id.get(row["village_id"])
        township = regions.of_level(row["village_id"], "township")
        item = {
            "household_id": row["id"],
            "code": row["code"],
            "head_name": data.get("head_name"),
            "phone": service.mask_phone(data.get("phone")),
            "category": row["category"],
            "visit_policy": row["visit_policy"],
            "village": village.summary() if village else None,
            "township": township.summary() if township else None,
            "cadres": cadres.get(row["id"], []),
            "last_visit": None,
        }
        if last is not None:
            item["last_visit"] = {
                "visited_at": local_iso(row["last_visit_at"], zone),
                "mode": last["mode"],
                "visitor_id": last["visitor_id"],
                "visitor_name": names.get(last["visitor_id"]),
            }
        for key in ("never_visited", "overdue_since", "days_overdue", "overdue"):
            if key in row:
                item[key] = row[key]
        out.append(item)
    return out


def cadres_of(
    conn: Connection, households: list[tuple[str, str | None]]
) -> dict[str, list[dict[str, Any]]]:
    """Household → the active cadres assigned its village or the household itself."""
    a, u = ASSIGNMENTS.c, USERS.c
    by_target: dict[tuple[str, str], list[dict[str, Any]]] = {}
    villages = sorted({v for _, v in households if v})
    ids = [h for h, _ in households]
    for kind, targets in (("region", villages), ("household", ids)):
        for chunk in chunks(targets):
            rows = conn.execute(
                select(a.target_id, u.id, u.name)
                .join(USERS, u.id == a.user_id)
                .where(a.kind == kind, a.target_id.in_(chunk), u.role == "cadre", u.active)
                .order_by(u.name, u.id)
            )
            for r in rows:
                by_target.setdefault((kind, r[0]), []).append({"user_id": r[1], "name": r[2]})
    out = {}
    for household_id, village_id in households:
        found = by_target.get(("region", village_id or ""), []) + by_target.get(
            ("household", household_id), []
        )
        unique = {c["user_id"]: c for c in found}
        out[household_id] = sorted(unique.values(), key=lambda c: (c["name"], c["user_id"]))
    return out


def user_names(conn: Connection, user_ids: Iterable[str | None]) -> dict[str, str]:
    ids = sorted({i for i in user_ids if i})
    out: dict[str, str] = {}
    for chunk in chunks(ids):
        out.update(
            {
                r[0]: r[1]
                for r in conn.execute(select(USERS.c.id, USERS.c.name).where(USERS.c.id.in_(chunk)))
            }
        )
    return out


# --- who may read which report ----------------------------------------------------------------


def report_scope(caller: Caller, region_id: str) -> Scope | None:
    """The households a caller's report on ``region_id`` may show: None for all of them
    (supervisors and admins inside their assignment), the cadre's own households for a cadre.
    404 for an unknown region, 403 for a region outside the caller's assignment: an admin of
    one county reports on that county only (CONTRACT §3)."""
    with replica.report() as conn:
        regions = Regions.load(conn)
    regions.get(region_id)
    scope = service.scope_of(caller.assignment)
    if scope.everything:
        return None
    if caller.role == "cadre":
        if region_id not in scope.region_ids:
            raise ApiError("forbidden", "this region is outside your villages and households")
        return scope
    assigned = set(caller.assignment.region_ids)
    if not any(r.id in assigned for r in regions.lineage(region_id)):
        raise ApiError("forbidden", "this region is outside your assignment")
    return None
