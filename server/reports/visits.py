"""Every visit, not only counts (CONTRACT §10): the visits of a period and region as a list a
supervisor pages through, one visit with every answer under its label, one household over time,
and the submissions of one form as a workbook (one row per visit, one column per question).

Who reads what: a supervisor or admin reads the regions of their assignment (report_scope); a
cadre reads the visits of their own villages and 包保 households, the visits their phone pulls.
Personal values inside answers (ID and phone numbers) are masked as pulls mask them: whole for
admins only in JSON, masked for everyone in a workbook (it leaves the server).

The list is read from the visits' time index, newest first by (visited_at_effective, id), and
paged by a signed keyset cursor: a page is one index range, however deep, and a visit pushed
between two pages neither shifts nor repeats the ones after it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from flask import current_app
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from sqlalchemy import JSON, and_, case, cast, false, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from server import service
from server.admin.forms_service import published_form
from server.http.errors import ApiError
from server.reports import coverage
from server.reports.coverage import HOUSEHOLDS, PROBLEMS, USERS, VISITS, Context, Regions
from server.reports.exports import spreadsheet_text
from server.reports.labels import MODE_NAMES
from server.reports.periods import Period, local_day
from server.reports.repeat_sheets import RepeatSheets
from server.storage import replica
from server.storage.models import Blob
from server.storage.store import TABLES, chunks, utc_naive
from sync.cursor import sign, unsign
from sync.errors import InvalidCursor
from sync.scope import Scope

PEOPLE = TABLES["person"]
MEASURES = TABLES["measure"]
BLOBS = Blob.__table__
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
HOUSEHOLD_VISITS = 200  # the latest visits a household page shows
EXPORT_BATCH = 1_000  # visits read from the database at a time for a workbook


@dataclass(frozen=True)
class VisitFilter:
    """What narrows the list: the period and region always, the rest when given. ``late``:
    True only the late visits, False only the others, None both."""

    period: str
    region_id: str
    cadre_id: str | None = None
    household_id: str | None = None
    form_id: str | None = None
    late: bool | None = None


# --- the query -------------------------------------------------------------------------------


def json_field(v: Any, name: str, dialect: str) -> ColumnElement[Any]:
    """A top-level key of a visit's data as text: the form a visit used has no column of its
    own, and the filter on it runs on the period's rows the time index already picked."""
    if dialect == "postgresql":
        return cast(v.c.data, JSON)[name].as_string()
    return func.json_extract(v.c.data, f"$.{name}")


@dataclass(frozen=True)
class Selection:
    """The visits of one filter: the table alias, its WHERE clauses and the late flag."""

    v: Any
    where: list[ColumnElement[bool]]
    late: ColumnElement[bool]
    ctx: Context


def select_visits(conn: Connection, f: VisitFilter, scope: Scope | None) -> Selection:
    """The visits of the period (by effective time, in the server's zone) in the region and
    scope, narrowed by the filter; voided and corrected ones included, flagged."""
    ctx = coverage._context(conn, f.period, f.region_id, None, None, scope)
    v = VISITS.alias("v")
    late = late_clause(conn, ctx, v)
    where = [
        v.c.visited_at_effective >= ctx.start,
        v.c.visited_at_effective < ctx.end,
        ~v.c.deleted,
        *ctx.due.visits(v),
    ]
    if f.cadre_id:
        where.append(v.c.visitor_id == f.cadre_id)
    if f.household_id:
        where.append(v.c.household_id == f.household_id)
    if f.form_id:
        where.append(json_field(v, "form_id", conn.dialect.name) == f.form_id)
    if f.late is True:
        where.append(late)
    elif f.late is False:
        where.append(~late)
    return Selection(v, where, late, ctx)


def late_clause(conn: Connection, ctx: Context, v: Any) -> ColumnElement[bool]:
    """A visit is late when it arrived after the first bulletin of its ISO week went out
    (coverage.bulletin_time, the line the coverage's late counts use); a month's visits are
    each held against their own week's bulletin."""
    received = func.coalesce(v.c.received_at, v.c.visited_at_effective)
    clauses = []
    week = Period.containing(ctx.period.first, "weekly")
    while week.first < ctx.period.end:
        sent = coverage.bulletin_time(conn, replace(ctx, period=week))
        if sent is not None:
            start, end = week.bounds(ctx.zone)
            clauses.append(
                and_(
                    v.c.visited_at_effective >= start,
                    v.c.visited_at_effective < end,
                    received > sent,
                )
            )
        week = week.following()
    return or_(*clauses) if clauses else false()


def _columns(sel: Selection) -> list[Any]:
    v, h = sel.v, HOUSEHOLDS
    return [
        v.c.id,
        v.c.household_id,
        v.c.village_id,
        v.c.visitor_id,
        v.c.visited_at_effective,
        v.c.received_at,
        v.c.voided,
        v.c.corrects,
        v.c.data,
        case((sel.late, 1), else_=0).label("late"),
        h.c.code.label("household_code"),
        h.c.data.label("household_data"),
    ]


def _from(sel: Selection) -> Any:
    return sel.v.outerjoin(HOUSEHOLDS, HOUSEHOLDS.c.id == sel.v.c.household_id)


# --- the cursor --------------------------------------------------------------------------------


def _key() -> bytes:
    return current_app.config["CURSOR_KEY"] + b":visits"


def _fingerprint(f: VisitFilter, reader: str) -> str:
    """Which list a cursor continues: the filter and who reads it."""
    text = json.dumps([asdict(f), reader], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(f: VisitFilter, reader: str, at: datetime, visit_id: str) -> str:
    return sign({"f": _fingerprint(f, reader), "t": at.isoformat(), "i": visit_id}, _key())


def decode_cursor(text: str, f: VisitFilter, reader: str) -> tuple[datetime, str]:
    """(time, id) of the last visit of the previous page; invalid_cursor when forged, altered
    or made for another list or reader."""
    payload = unsign(text, _key(), max_length=1024)
    try:
        at, visit_id = datetime.fromisoformat(payload["t"]), str(payload["i"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if payload.get("f") != _fingerprint(f, reader):
        raise InvalidCursor("this cursor belongs to another list")
    return at, visit_id


# --- the list ----------------------------------------------------------------------------------


def visit_list(
    f: VisitFilter,
    scope: Scope | None,
    role: str,
    reader: str,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """CONTRACT §10: one page of the visits of the filter, newest first, with how many there
    are in all and the cursor of the next page (None on the last)."""
    after = decode_cursor(cursor, f, reader) if cursor else None
    with replica.report() as conn:
        sel = select_visits(conn, f, scope)
        v = sel.v
        where = list(sel.where)
        if after is not None:
            at, visit_id = after
            where.append(v.c.visited_at_effective <= at)
            where.append(or_(v.c.visited_at_effective < at, v.c.id < visit_id))
        rows = conn.execute(
            select(*_columns(sel))
            .select_from(_from(sel))
            .where(*where)
            .order_by(v.c.visited_at_effective.desc(), v.c.id.desc())
            .limit(limit + 1)
        ).all()
        total = conn.execute(select(func.count()).select_from(v).where(*sel.where)).scalar()
        names = user_names(conn)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [visit_item(row, names, sel.ctx, role) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(f, reader, last.visited_at_effective, last.id)
    return {"visits": items, "total": int(total or 0), "cursor": next_cursor}


def user_names(conn: Connection) -> dict[str, str]:
    """Every user's name by id: a county has hundreds of users, read once per request."""
    return {r[0]: r[1] for r in conn.execute(select(USERS.c.id, USERS.c.name))}


def masked_answers(answers: Any, role: str) -> Any:
    """Answers as a role may read them: ID and phone numbers masked but for admins, also
    inside repeated groups (a list of objects)."""
    if role == "admin":
        return answers
    return _masked(answers)


def _masked(answers: Any) -> Any:
    if isinstance(answers, list):
        return [_masked(item) for item in answers]
    if not isinstance(answers, dict):
        return answers
    return {
        key: service.masked_value(key, value) if key in service.MASKS else _masked(value)
        for key, value in answers.items()
    }


def visit_item(row: Any, names: dict[str, str], ctx: Context, role: str) -> dict[str, Any]:
    """A visit row (with its household's code and data) as the list shows it."""
    data = json.loads(row.data)
    household = json.loads(row.household_data) if row.household_data else {}
    return {
        "id": row.id,
        "household_id": row.household_id,
        "household_name": household.get("head_name"),
        "household_code": row.household_code,
        "village_id": row.village_id,
        "village_name": _name(ctx.regions, row.village_id),
        "visitor_id": row.visitor_id,
        "visitor_name": names.get(row.visitor_id or ""),
        "visited_at": data.get("visited_at"),
        "visited_at_effective": coverage.local_iso(row.visited_at_effective, ctx.zone),
        "received_at": coverage.local_iso(row.received_at, ctx.zone),
        "mode": data.get("mode"),
        "form_id": data.get("form_id"),
        "form_version": data.get("form_version"),
        "answers": masked_answers(data.get("answers") or {}, role),
        "people_seen": data.get("people_seen") or [],
        "location": data.get("location"),
        "notes": data.get("notes"),
        "corrects": row.corrects,
        "voided": bool(row.voided),
        "late": bool(row.late),
    }


def _name(regions: Regions, region_id: str | None) -> str | None:
    region = regions.by_id.get(region_id or "")
    return region.name if region else None


# --- one visit ---------------------------------------------------------------------------------


def visit_detail(visit_id: str, scope: Scope, role: str) -> dict[str, Any]:
    """One visit in the caller's scope (404 otherwise) with every answer under its label, the
    people seen by name, its photos (stored or pending), and its corrections and void."""
    v = VISITS.alias("v")
    with replica.report() as conn:
        row = conn.execute(
            select(v.c.village_id, v.c.household_id, v.c.visited_at_effective).where(
                v.c.id == visit_id, ~v.c.deleted
            )
        ).first()
        if (
            row is None
            or row.village_id is None
            or not scope.holds(row.village_id, row.household_id)
        ):
            raise ApiError("not_found", f"no visit {visit_id}")
        day = local_day(row.visited_at_effective, coverage.zone_of(None))
        week = Period.containing(day, "weekly").label
        sel = select_visits(
            conn, VisitFilter(week, row.village_id, household_id=row.household_id), None
        )
        found = conn.execute(
            select(*_columns(sel)).select_from(_from(sel)).where(sel.v.c.id == visit_id)
        ).one()
        names = user_names(conn)
        item = visit_item(found, names, sel.ctx, role)
        data = json.loads(found.data)
        item["answer_list"] = labelled_answers(
            item["form_id"], item["form_version"], item["answers"]
        )
        item["people"] = _people(conn, item["people_seen"])
        item["photos"] = _photos(conn, data.get("photos") or [])
        item["void"] = (
            {
                "by": data.get("voided_by"),
                "by_name": names.get(data.get("voided_by") or ""),
                "at": coverage.local_iso(utc_naive(data.get("voided_at")), sel.ctx.zone),
                "reason": data.get("void_reason"),
            }
            if item["voided"]
            else None
        )
        item["corrected_by"] = _related(conn, "corrects", visit_id, names, sel.ctx)
        item["original"] = (
            _related(conn, "id", item["corrects"], names, sel.ctx) if item["corrects"] else []
        )
    return item


def _related(
    conn: Connection, column: str, value: str, names: dict[str, str], ctx: Context
) -> list[dict[str, Any]]:
    """Visits related to one (its corrections, or the visit it corrects): who and when."""
    v = VISITS.alias("related")
    rows = conn.execute(
        select(v.c.id, v.c.visitor_id, v.c.visited_at_effective, v.c.received_at, v.c.voided)
        .where(v.c[column] == value, ~v.c.deleted)
        .order_by(v.c.received_at)
    )
    return [
        {
            "id": r.id,
            "visitor_id": r.visitor_id,
            "visitor_name": names.get(r.visitor_id or ""),
            "visited_at_effective": coverage.local_iso(r.visited_at_effective, ctx.zone),
            "received_at": coverage.local_iso(r.received_at, ctx.zone),
            "voided": bool(r.voided),
        }
        for r in rows
    ]


def labelled_answers(
    form_id: str | None, version: int | None, answers: dict[str, Any]
) -> list[dict[str, Any]]:
    """The answers in the order of the form version's questions, each with its label and, for
    a choice, the label of what was chosen; answers the form does not name come last under
    their own id."""
    form = published_form(form_id, version) if form_id and version else None
    out = []
    known = set()
    for field in form.fields.values() if form else ():
        known.add(field.id)
        if field.id not in answers:
            continue
        value = answers[field.id]
        out.append(
            {
                "id": field.id,
                "type": field.type,
                "label": dict(field.label),
                "value": value,
                "choices": _chosen(field, value),
            }
        )
    for key, value in answers.items():
        if key not in known:
            out.append({"id": key, "type": None, "label": None, "value": value, "choices": None})
    return out


def _chosen(field: Any, value: Any) -> list[dict[str, str]] | None:
    if not field.choices:
        return None
    values = value if isinstance(value, list) else [value]
    return [dict(field.choices.get(item, {"zh-CN": str(item)})) for item in values]


def _people(conn: Connection, ids: list[Any]) -> list[dict[str, Any]]:
    wanted = [i for i in ids if isinstance(i, str)]
    found: dict[str, str] = {}
    for chunk in chunks(wanted):
        for r in conn.execute(select(PEOPLE.c.id, PEOPLE.c.data).where(PEOPLE.c.id.in_(chunk))):
            found[r.id] = json.loads(r.data).get("name")
    return [{"id": i, "name": found.get(i)} for i in wanted]


def _photos(conn: Connection, shas: list[Any]) -> list[dict[str, Any]]:
    """Each photo of the visit and whether its bytes have arrived ("photo pending" if not)."""
    wanted = [s for s in shas if isinstance(s, str)]
    stored = set()
    for chunk in chunks(wanted):
        stored |= {
            r[0] for r in conn.execute(select(BLOBS.c.sha256).where(BLOBS.c.sha256.in_(chunk)))
        }
    return [{"sha256": s, "stored": s in stored} for s in wanted]


# --- one household -----------------------------------------------------------------------------


def household_detail(household_id: str, scope: Scope, role: str) -> dict[str, Any]:
    """A household in the caller's scope (404 otherwise) over time: its people, its latest
    visits, its problems and its help measures (一户一方案)."""
    h = HOUSEHOLDS
    with replica.report() as conn:
        row = conn.execute(
            select(h.c.id, h.c.village_id, h.c.code, h.c.data).where(
                h.c.id == household_id, ~h.c.deleted
            )
        ).first()
        if row is None or not scope.holds(row.village_id, row.id):
            raise ApiError("not_found", f"no household {household_id}")
        regions = Regions.load(conn)
        names = user_names(conn)
        visits = _latest_visits(conn, household_id, names, coverage.zone_of(None))
        people = _records(conn, PEOPLE, household_id)
        problems = _records(conn, PROBLEMS, household_id)
        measures = _records(conn, MEASURES, household_id)
    data = json.loads(row.data)
    village = regions.by_id.get(row.village_id or "")
    township = regions.of_level(row.village_id, "township")
    return {
        "id": row.id,
        "code": row.code,
        **{key: data.get(key) for key in HOUSEHOLD_FACTS},
        "phone": service.mask_phone(data.get("phone")),
        "village": village.summary() if village else None,
        "township": township.summary() if township else None,
        "people": [_person(pid, p, role) for pid, p in people],
        "visits": visits,
        "problems": [
            {"id": pid, **_pick(p, PROBLEM_FACTS), "assignee_name": _named(names, p, "assignee_id")}
            for pid, p in problems
        ],
        "measures": [
            {
                "id": mid,
                **_pick(m, MEASURE_FACTS),
                "responsible_name": _named(names, m, "responsible_id"),
            }
            for mid, m in measures
        ],
    }


HOUSEHOLD_FACTS = ("head_name", "address", "category", "status", "visit_policy")
PERSON_FACTS = ("name", "gender", "birth_year", "relation", "flags")
PROBLEM_FACTS = ("category", "description", "status", "due_date", "resolution")
MEASURE_FACTS = ("category", "description", "status", "due_date")


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: data.get(key) for key in keys}


def _named(names: dict[str, str], data: dict[str, Any], key: str) -> str | None:
    return names.get(data.get(key) or "")


def _person(person_id: str, data: dict[str, Any], role: str) -> dict[str, Any]:
    """A member as the household page shows them: the ID number whole for admins only."""
    id_number = data.get("id_number")
    shown = id_number if role == "admin" else service.mask_id_number(id_number)
    return {"id": person_id, **_pick(data, PERSON_FACTS), "id_number": shown}


def _latest_visits(
    conn: Connection, household_id: str, names: dict[str, str], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The household's latest visits, newest first; a correction before the visit it
    corrects (same time, later arrival)."""
    v = VISITS.alias("v")
    rows = conn.execute(
        select(
            v.c.id,
            v.c.visitor_id,
            v.c.visited_at_effective,
            v.c.received_at,
            v.c.voided,
            v.c.corrects,
            v.c.data,
        )
        .where(v.c.household_id == household_id, ~v.c.deleted)
        .order_by(v.c.visited_at_effective.desc(), v.c.received_at.desc(), v.c.id.desc())
        .limit(HOUSEHOLD_VISITS)
    )
    out = []
    for r in rows:
        data = json.loads(r.data)
        out.append(
            {
                "id": r.id,
                "visitor_id": r.visitor_id,
                "visitor_name": names.get(r.visitor_id or ""),
                "visited_at_effective": coverage.local_iso(r.visited_at_effective, zone),
                "received_at": coverage.local_iso(r.received_at, zone),
                "mode": data.get("mode"),
                "form_id": data.get("form_id"),
                "voided": bool(r.voided),
                "corrects": r.corrects,
            }
        )
    return out


def _records(conn: Connection, table: Any, household_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A household's records of one kind, newest change first."""
    rows = conn.execute(
        select(table.c.id, table.c.data)
        .where(table.c.household_id == household_id, ~table.c.deleted)
        .order_by(table.c.version.desc())
    )
    return [(r.id, json.loads(r.data)) for r in rows]


# --- the submissions workbook ------------------------------------------------------------------

FIXED_HEADERS = [
    "走访编号",
    "户编码",
    "户主",
    "村",
    "走访人",
    "走访时间",
    "上传时间",
    "方式",
    "表单版本",
    "更正的走访",
    "已作废",
    "通报后补报",
]
REPEAT_HEADERS = ["走访编号", "题目", "序号", "字段", "值"]


def submissions_xlsx(f: VisitFilter, scope: Scope | None) -> IO[bytes]:
    """The visits of one form in the period and region as a workbook in a temporary file:
    one row per visit, one column per question of every version those visits used (headed by
    its zh-CN label), and a list-of-objects answer (a repeated group) on a sheet of its own,
    one row per value, keyed by visit id. Written in openpyxl's write-only mode from visits
    read a batch at a time, so memory stays bounded whatever the count; every text through
    spreadsheet_text; ID and phone numbers masked."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("走访记录")
    repeats = book.create_sheet("重复组")
    with replica.report() as conn:
        sel = select_visits(conn, f, scope)
        questions = _questions(conn, sel, f.form_id or "")
        sheet.append(_header(FIXED_HEADERS + [label for _, label, _ in questions]))
        repeats.append(_header(REPEAT_HEADERS))
        per_repeat = RepeatSheets(book, questions)  # a repeat question's own sheet
        names = user_names(conn)
        labels = {qid: label for qid, label, _ in questions}
        query = (
            select(*_columns(sel))
            .select_from(_from(sel))
            .where(*sel.where)
            .order_by(sel.v.c.visited_at_effective, sel.v.c.id)
        )
        rows = conn.execution_options(stream_results=True, yield_per=EXPORT_BATCH).execute(query)
        for row in rows:
            item = visit_item(row, names, sel.ctx, "supervisor")  # masked, as every export
            sheet.append(_visit_row(sheet, item, questions))
            per_repeat.write(conn, item, _text)
            for line in _repeat_rows(item, labels, skip=per_repeat.ids()):
                repeats.append([_text(repeats, value) for value in line])
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (the response closes it)
    book.save(out)
    out.seek(0)
    return out


def _questions(conn: Connection, sel: Selection, form_id: str) -> list[tuple[str, str, Any]]:
    """(id, zh-CN label, field) of every question of the versions the selected visits used,
    in the order of the newest version, then the questions only older versions had."""
    version = json_field(sel.v, "form_version", conn.dialect.name)
    used = sorted(
        {
            int(r[0])
            for r in conn.execute(select(version).where(*sel.where).distinct())
            if r[0] is not None and str(r[0]).isdigit()
        },
        reverse=True,
    )
    out: dict[str, tuple[str, str, Any]] = {}
    for number in used:
        form = published_form(form_id, number)
        for field in form.fields.values() if form else ():
            if field.id not in out:
                label = field.label.get("zh-CN") or field.label.get("en") or field.id
                out[field.id] = (field.id, label, field)
    return list(out.values())


def _text(sheet: Any, value: Any) -> Any:
    """A write-only cell value: text never a formula (spreadsheet_text), and text that reads
    like an error value (#N/A) made a string cell, the one case openpyxl would not write as
    text; every other value as it is (a cell object per value would double the time)."""
    value = spreadsheet_text(value)
    if isinstance(value, str) and value in ERROR_CODES:
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def _header(labels: list[str]) -> list[Any]:
    return [spreadsheet_text(label) for label in labels]


def _visit_row(
    sheet: Any, item: dict[str, Any], questions: list[tuple[str, str, Any]]
) -> list[Any]:
    fixed = [
        item["id"],
        item["household_code"],
        item["household_name"],
        item["village_name"],
        item["visitor_name"],
        _for_people(item["visited_at_effective"]),
        _for_people(item["received_at"]),
        MODE_NAMES.get(item["mode"] or "", item["mode"]),
        item["form_version"],
        item["corrects"],
        "是" if item["voided"] else "否",
        "是" if item["late"] else "否",
    ]
    answers = item["answers"]
    values = [_cell_value(field, answers.get(qid)) for qid, _, field in questions]
    return [_text(sheet, value) for value in fixed + values]


def _for_people(iso: str | None) -> str | None:
    """A local ISO time as a sheet shows it: 2026-11-24 10:00 (the zone is the server's)."""
    return iso[:16].replace("T", " ") if iso else None


def _cell_value(field: Any, value: Any) -> Any:
    """An answer as a person reads it in a cell: choices by their label, yes/no in words; a
    repeated group is on its own sheet, so its cell says how many entries it has."""
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        if field is not None and field.type == "repeat":
            return f"{len(value)} 条（见同名工作表）"
        return f"{len(value)} 条（见“重复组”）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if field is not None and field.choices:
        items = value if isinstance(value, list) else [value]
        return "、".join(str(field.choices.get(x, {}).get("zh-CN", x)) for x in items)
    if isinstance(value, list):
        return "、".join(str(x) for x in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _repeat_rows(
    item: dict[str, Any], labels: dict[str, str], skip: frozenset[str] | set[str] = frozenset()
) -> Iterator[list[Any]]:
    """One row per value of every entry of every list-of-objects answer of the visit that is
    no repeat question of the form (those have a sheet of their own, RepeatSheets)."""
    for qid, value in item["answers"].items():
        if qid in skip:
            continue
        if not (isinstance(value, list) and value and all(isinstance(x, dict) for x in value)):
            continue
        for index, entry in enumerate(value, start=1):
            for key, inner in entry.items():
                shown = (
                    json.dumps(inner, ensure_ascii=False)
                    if isinstance(inner, (list, dict))
                    else inner
                )
                yield [item["id"], labels.get(qid, qid), index, key, shown]
