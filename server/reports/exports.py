"""Files for people outside the app: the weekly bulletin (每周通报) as Excel and CSV, and a
read-only SQLite snapshot for Datasette or Excel. ID numbers and phone numbers are masked in
all of them, and no text a user typed becomes a formula in a spreadsheet (spreadsheet_text)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select

from server.reports import coverage as reports
from server.reports import problems
from server.reports.labels import MODE_NAMES, STATUS_NAMES, category_label
from server.reports.periods import month_label, week_label
from server.service import mask_id_number, mask_phone
from server.storage import replica

COVERAGE_HEADERS = ["乡镇", "村", "应访户数", "已访户数", "未访户数", "覆盖率"]
LOW_COVERAGE = 0.9  # rows below it are filled red in the bulletin
MAX_ROWS = 100_000  # of a sheet; far above a county's open problems

BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
TOTAL_FILL = PatternFill("solid", start_color="F2F2F2", end_color="F2F2F2")
LOW_FILL = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
THIN = Side(style="thin", color="BFBFBF")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
PERCENT = "0.0%"
#: what a printed page says at its foot: "第 3 页，共 7 页" (Excel's page-number codes)
PAGE_FOOTER = "第 &P 页，共 &N 页"
HEADER_ROW = 3  # title, subtitle, column headers: frozen on screen, repeated on paper
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what Excel or LibreOffice may evaluate


def spreadsheet_text(value: Any) -> Any:
    """A value as a cell or CSV field may hold it. A name, village or problem a user typed that
    starts like a formula would run in the reader's Excel (=HYPERLINK sending the sheet away,
    =cmd|… DDE), so such text gets a leading ' as OWASP advises: shown, never evaluated.
    Control characters a phone may send (U+0001…U+001F but tab, LF, CR) are dropped: openpyxl
    refuses them, and one in a household head's name would fail the whole bulletin. Numbers
    the server computed stay numbers; every spreadsheet writer passes values through here."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters no workbook may hold
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """One cell of a workbook: text is always a string cell, since openpyxl would otherwise make
    text starting with = a formula and text like #N/A an error value."""
    cell = sheet.cell(row=row, column=column, value=spreadsheet_text(value))
    if isinstance(cell.value, str):
        cell.data_type = "s"
    return cell


# --- the weekly bulletin -----------------------------------------------------------------------


def coverage_rows(villages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bulletin's table: villages grouped by township, a subtotal per township (村 = 小计)
    when the region has several, and a last row with the total (乡镇 = 合计)."""
    townships: dict[str, list[dict[str, Any]]] = {}
    for row in villages:
        townships.setdefault(row["township"], []).append(row)
    out: list[dict[str, Any]] = []
    for township, rows in townships.items():
        out += [{**r, "kind": "village"} for r in rows]
        if len(townships) > 1:
            out.append(_total(rows, township, "小计", "subtotal"))
    out.append(_total(villages, "合计", "", "total"))
    return out


def _total(rows: list[dict[str, Any]], township: str, village: str, kind: str) -> dict[str, Any]:
    due = sum(r["due"] for r in rows)
    visited = sum(r["visited"] for r in rows)
    return {
        "township": township,
        "village": village,
        "due": due,
        "visited": visited,
        "coverage": reports.ratio(visited, due),
        "kind": kind,
    }


def weekly_bulletin_csv(period: str, region_id: str) -> str:
    """The coverage table as CSV, UTF-8 with a BOM so that Excel reads the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COVERAGE_HEADERS)
    _, villages = reports.coverage_and_villages(period, region_id)
    for row in coverage_rows(villages):
        fields = [
            row["township"],
            row["village"],
            row["due"],
            row["visited"],
            row["due"] - row["visited"],
            f"{row['coverage'] * 100:.1f}%",
        ]
        writer.writerow([spreadsheet_text(field) for field in fields])
    return "\ufeff" + out.getvalue()


def weekly_bulletin_xlsx(period: str, region_id: str) -> bytes:
    """The bulletin as a workbook: coverage by township and village, the households not
    visited in the period, and the open problems."""
    body, villages = reports.coverage_and_villages(period, region_id)
    title = f"{body['region']['name']}{reports.Period.parse(period).title()}"
    span = f"{body['start']} 至 {body['end']}"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "覆盖率"
    late = body["late"]
    as_of, due = human_time(body["as_of"]), body["summary"]["due"]
    subtitle = f"统计期间 {span}；截至 {as_of}；应访 {due} 户"
    if late["visits"]:
        subtitle += f"；期后补报 {late['visits']} 次（{late['households']} 户）"
    _coverage_sheet(sheet, f"{title}走访覆盖率通报", subtitle, coverage_rows(villages))
    _unvisited_sheet(
        book.create_sheet("未访户"), f"{title}未走访户", reports.period_unvisited(period, region_id)
    )
    open_problems = {"region_id": region_id, "status": list(reports.OPEN_STATUSES)}
    listed = problems.problem_list(reports.EVERYTHING, {**open_problems, "limit": MAX_ROWS})
    _problem_sheet(book.create_sheet("未办结问题"), f"{body['region']['name']}未办结问题", listed)
    for each in book.worksheets:
        _print_setup(each, body["region"]["name"], reports.Period.parse(period).title())
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _header(sheet: Worksheet, title: str, subtitle: str, headers: list[str]) -> int:
    """Title, subtitle and the bold header row; returns the header's row number."""
    width = len(headers)
    _put(sheet, 1, 1, title).font = TITLE
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    _put(sheet, 2, 1, subtitle)
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    for column, text in enumerate(headers, start=1):
        cell = _put(sheet, HEADER_ROW, column, text)
        cell.font, cell.fill, cell.border = BOLD, HEADER_FILL, BOX
        cell.alignment = Alignment(horizontal="center", vertical="center")
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    return HEADER_ROW


def human_time(iso: str | None) -> str:
    """A time as a county office writes it: 2026年12月3日 15:51, in the report's time zone
    (the ISO text the reports carry has its offset; a naive one is taken as that zone)."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(reports.zone_of(None))
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"


def _print_setup(sheet: Worksheet, region: str, period: str) -> None:
    """How a county office prints the sheet: A4 landscape, as wide as the page, the title and
    header rows on every page, the region and period at the top and the page numbers at the
    foot ("&" doubled: Excel would read it as a code)."""
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = sheet.ORIENTATION_LANDSCAPE
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as the rows need
    sheet.print_title_rows = f"1:{HEADER_ROW}"
    sheet.print_options.horizontalCentered = True
    sheet.oddHeader.left.text = spreadsheet_text(region).replace("&", "&&")
    sheet.oddHeader.center.text = spreadsheet_text(sheet.title).replace("&", "&&")
    sheet.oddHeader.right.text = period
    sheet.oddFooter.center.text = PAGE_FOOTER


def _widths(sheet: Worksheet, widths: list[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _coverage_sheet(
    sheet: Worksheet, title: str, subtitle: str, rows: list[dict[str, Any]]
) -> None:
    header = _header(sheet, title, subtitle, COVERAGE_HEADERS)
    for index, row in enumerate(rows, start=header + 1):
        values = [
            row["township"],
            row["village"],
            row["due"],
            row["visited"],
            row["due"] - row["visited"],
            row["coverage"],
        ]
        for column, value in enumerate(values, start=1):
            cell = _put(sheet, index, column, value)
            cell.border = BOX
            if row["kind"] != "village":
                cell.font, cell.fill = BOLD, TOTAL_FILL
        sheet.cell(row=index, column=6).number_format = PERCENT
    last = header + len(rows)
    sheet.conditional_formatting.add(
        f"F{header + 1}:F{last}",
        CellIsRule(operator="lessThan", formula=[str(LOW_COVERAGE)], fill=LOW_FILL),
    )
    sheet.auto_filter.ref = f"A{header}:F{last}"
    _widths(sheet, [16, 16, 11, 11, 11, 10])


def _unvisited_sheet(sheet: Worksheet, title: str, households: list[dict[str, Any]]) -> None:
    headers = ["乡镇", "村", "户编码", "户主", "联系电话", "类别", "包保干部", "最近走访", "方式"]
    headers.append("是否逾期")
    header = _header(sheet, title, f"共 {len(households)} 户；联系电话已脱敏", headers)
    for index, h in enumerate(households, start=header + 1):
        last = h["last_visit"] or {}
        values = [
            (h["township"] or {}).get("name"),
            (h["village"] or {}).get("name"),
            h["code"],
            h["head_name"],
            h["phone"],
            h["category"],
            "、".join(c["name"] for c in h["cadres"]),
            human_time(last.get("visited_at")) or "从未走访",
            MODE_NAMES.get(last.get("mode") or "", ""),
            "是" if h.get("overdue") else "否",
        ]
        for column, value in enumerate(values, start=1):
            _put(sheet, index, column, value).border = BOX
    _widths(sheet, [14, 14, 18, 10, 15, 10, 20, 17, 8, 9])


def _problem_sheet(sheet: Worksheet, title: str, problems: list[dict[str, Any]]) -> None:
    headers = ["乡镇", "村", "户编码", "户主", "问题类别", "问题描述", "状态", "责任人"]
    headers += ["办结期限", "逾期天数", "已升级"]
    header = _header(sheet, title, f"共 {len(problems)} 项", headers)
    for index, p in enumerate(problems, start=header + 1):
        values = [
            (p["township"] or {}).get("name"),
            (p["village"] or {}).get("name"),
            p["household"]["code"],
            p["household"]["head_name"],
            category_label(p["category"]),
            p["description"],
            STATUS_NAMES.get(p["status"], p["status"]),
            (p["assignee"] or {}).get("name"),
            p["due_date"],
            p["days_overdue"],
            "是" if p["escalated"] else "",
        ]
        for column, value in enumerate(values, start=1):
            cell = _put(sheet, index, column, value)
            cell.border = BOX
            if column == 6:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    _widths(sheet, [14, 14, 18, 10, 12, 40, 9, 10, 12, 9, 8])


# --- the SQLite snapshot ------------------------------------------------------------------------

BATCH = 5000


def sqlite_snapshot(path: Path) -> dict[str, int]:
    """Regions, users (no password hashes), households, people, visits, problems, measures and
    assignments in a new SQLite file, with foreign keys and indexes, for Datasette. ID numbers
    and phone numbers are masked. Written to a temporary file and moved into place, in
    rollback-journal mode (no -wal file needed to read it) and made read-only."""
    path = Path(path)
    temporary = path.with_name(path.name + ".partial")
    temporary.unlink(missing_ok=True)
    zone = reports.zone_of(None)
    db = sqlite_utils.Database(temporary)
    counts: dict[str, int] = {}
    with replica.report() as conn:
        for name, spec in _SNAPSHOT_TABLES.items():
            table = db.table(name)
            table.create(
                spec["columns"],
                pk="id" if "id" in spec["columns"] else None,
                foreign_keys=[(column, other, "id") for column, other in spec["foreign_keys"]],
            )
            rows = _rows(conn, name, zone)
            count = 0
            for batch in reports.chunks(rows, BATCH):
                table.insert_all(batch, batch_size=BATCH)
                count += len(batch)
            counts[name] = count
    for name, spec in _SNAPSHOT_TABLES.items():
        for columns in spec["indexes"]:
            db.table(name).create_index(columns)
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=DELETE")
    db.vacuum()
    db.close()
    os.replace(temporary, path)
    path.chmod(0o444)
    return counts


_TEXT, _INT, _REAL = str, int, float

_SNAPSHOT_TABLES: dict[str, dict[str, Any]] = {
    "regions": {
        "columns": {"id": _TEXT, "parent_id": _TEXT, "level": _TEXT, "name": _TEXT, "code": _TEXT},
        "foreign_keys": [("parent_id", "regions")],
        "indexes": [["parent_id"]],
    },
    "users": {
        "columns": {"id": _TEXT, "username": _TEXT, "name": _TEXT, "role": _TEXT, "active": _INT},
        "foreign_keys": [],
        "indexes": [["role"]],
    },
    "assignments": {
        "columns": {"user_id": _TEXT, "kind": _TEXT, "target_id": _TEXT},
        "foreign_keys": [("user_id", "users")],
        "indexes": [["user_id"], ["target_id"]],
    },
    "households": {
        "columns": {
            "id": _TEXT,
            "village_id": _TEXT,
            "code": _TEXT,
            "head_name": _TEXT,
            "address": _TEXT,
            "phone": _TEXT,
            "category": _TEXT,
            "status": _TEXT,
            "visit_policy": _TEXT,
            "lat": _REAL,
            "lon": _REAL,
            "notes": _TEXT,
        },
        "foreign_keys": [("village_id", "regions")],
        "indexes": [["village_id"], ["category"]],
    },
    "people": {
        "columns": {
            "id": _TEXT,
            "household_id": _TEXT,
            "name": _TEXT,
            "gender": _TEXT,
            "birth_year": _INT,
            "relation": _TEXT,
            "flags": _TEXT,
            "id_number": _TEXT,
            "phone": _TEXT,
            "notes": _TEXT,
        },
        "foreign_keys": [("household_id", "households")],
        "indexes": [["household_id"]],
    },
    "visits": {
        "columns": {
            "id": _TEXT,
            "household_id": _TEXT,
            "village_id": _TEXT,
            "visitor_id": _TEXT,
            "visited_at": _TEXT,
            "visited_at_effective": _TEXT,
            "visited_date": _TEXT,
            "iso_week": _TEXT,
            "month": _TEXT,
            "mode": _TEXT,
            "form_id": _TEXT,
            "form_version": _INT,
            "answers": _TEXT,
            "notes": _TEXT,
            "corrects": _TEXT,
            "voided": _INT,
            "void_reason": _TEXT,
            "received_at": _TEXT,
            "clock_corrected": _INT,
        },
        "foreign_keys": [
            ("household_id", "households"),
            ("village_id", "regions"),
            ("visitor_id", "users"),
        ],
        "indexes": [["household_id", "visited_at_effective"], ["iso_week"], ["month"]],
    },
    "problems": {
        "columns": {
            "id": _TEXT,
            "household_id": _TEXT,
            "person_id": _TEXT,
            "visit_id": _TEXT,
            "category": _TEXT,
            "description": _TEXT,
            "status": _TEXT,
            "status_note": _TEXT,
            "assignee_id": _TEXT,
            "due_date": _TEXT,
            "resolution": _TEXT,
        },
        "foreign_keys": [("household_id", "households"), ("assignee_id", "users")],
        "indexes": [["household_id"], ["status"], ["assignee_id"]],
    },
    "measures": {
        "columns": {
            "id": _TEXT,
            "household_id": _TEXT,
            "person_id": _TEXT,
            "category": _TEXT,
            "description": _TEXT,
            "responsible_id": _TEXT,
            "status": _TEXT,
            "due_date": _TEXT,
        },
        "foreign_keys": [("household_id", "households")],
        "indexes": [["household_id"], ["status"]],
    },
}

_SYNCED = {
    "regions": "region",
    "households": "household",
    "people": "person",
    "visits": "visit",
    "problems": "problem",
    "measures": "measure",
}


def _rows(conn: Any, name: str, zone: Any) -> Iterator[dict[str, Any]]:
    """The rows of one snapshot table, streamed from the server's database."""
    columns = list(_SNAPSHOT_TABLES[name]["columns"])
    if name == "users":
        users = reports.USERS.c
        query = select(users.id, users.username, users.name, users.role, users.active)
        query = query.order_by(users.username)
        for r in conn.execution_options(yield_per=BATCH).execute(query):
            yield dict(r._mapping)
        return
    if name == "assignments":
        a = reports.ASSIGNMENTS.c
        for r in conn.execute(select(a.user_id, a.kind, a.target_id)):
            yield dict(r._mapping)
        return
    table = reports.TABLES[_SYNCED[name]]
    query = select(table.c.id, table.c.data).where(~table.c.deleted).order_by(table.c.version)
    for r in conn.execution_options(yield_per=BATCH).execute(query):
        data = json.loads(r.data)
        row = {k: data.get(k) for k in columns if k != "id"}
        row["id"] = r.id
        yield _shape(name, row, data, zone)


def _shape(name: str, row: dict[str, Any], data: dict[str, Any], zone: Any) -> dict[str, Any]:
    if name in ("households", "people"):
        row["phone"] = mask_phone(data.get("phone"))
    if name == "people":
        row["id_number"] = mask_id_number(data.get("id_number"))
        row["flags"] = json.dumps(data.get("flags") or [], ensure_ascii=False)
    if name == "visits":
        moment = reports.parse_as_of(data.get("visited_at_effective") or data["visited_at"], zone)
        assert moment is not None
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        row["visited_at_effective"] = local.isoformat(timespec="seconds")
        row["visited_date"] = local.date().isoformat()
        row["iso_week"], row["month"] = week_label(local.date()), month_label(local.date())
        row["answers"] = json.dumps(data.get("answers") or {}, ensure_ascii=False)
        row["voided"] = int(bool(data.get("voided")))
        row["clock_corrected"] = int("clock_corrected" in (data.get("review") or []))
    return row
