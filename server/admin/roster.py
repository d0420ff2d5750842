"""Roster import (花名册): households and people from a county's Excel or CSV roster.

``zoufang import roster FILE`` and ``POST /api/v1/admin/roster`` both call ``import_roster``,
which works in three steps, each finished before the next begins:

1. read — the file's rows as cells, whatever the format (.xlsx, or .csv in UTF-8);
2. check — every row against the format, the rows of each household against each other, and
   the whole file against the database (the matching rules are in docs/admin.md). Every
   problem is collected with its file row number; if there is one, nothing is written;
3. write — one write transaction: new regions, households and people are inserted, and the
   changed fields of existing ones are applied by the sync engine as ops of the server's
   device (merged, logged in ``ops`` and pulled by phones like any server-side edit). A
   failure anywhere in it rolls the whole file back.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.engine import Connection

from server.admin.uploads import bounded_rows, checked_workbook
from server.service import (
    SERVER_DEVICE,
    Administration,
    audit,
    mask_id_number,
    server_hlc,
    store,
)
from server.storage.models import Household, Person, Region
from server.storage.store import SqlTxn, read_setting, write_setting
from server.timeutil import now
from sync import engine
from sync.ids import new_id
from sync.ops import parse_ops
from sync.records import FIRST_BIRTH_YEAR, VISIT_POLICIES, id_number_problem, normal_id_number
from sync.scope import Scope
from sync.store import Record

log = logging.getLogger(__name__)

REQUIRED = ("户编码", "户主姓名", "乡镇", "村", "人员姓名", "与户主关系", "类别")
OPTIONAL = ("身份证号", "性别", "出生年份", "联系电话", "备注")
FLAG_COLUMNS = {
    "老": "elderly",
    "弱": "frail",
    "病": "sick",
    "残": "disabled",
    "孤": "orphan",
    "独居": "alone",
    "留守": "left_behind",
}
COLUMNS = frozenset(REQUIRED + OPTIONAL + tuple(FLAG_COLUMNS))
#: the cells every row of one household must agree on
HOUSEHOLD_COLUMNS = ("户主姓名", "乡镇", "村", "类别")
#: the longest text each column may hold: the limits of the record fields (sync/records.py)
MAX_LENGTH = {
    "户编码": 40,
    "户主姓名": 200,
    "乡镇": 100,
    "村": 100,
    "人员姓名": 200,
    "与户主关系": 20,
    "类别": 40,
    "性别": 10,
    "联系电话": 40,
    "备注": 2000,
}
FLAG_VALUES = {"是": True, "": False, "否": False}
HEAD_RELATION = "户主"
#: Excel rosters often carry a title row (XX村花名册) above the header
HEADER_SEARCH_ROWS = 10

#: how often a household is visited, from its people's flags and its category (PRODUCT.md):
#: weekly when anyone has a flag (老弱病残孤、独居、留守), else by category, else the default.
#: Overridden by ZOUFANG_VISIT_POLICY (JSON, same shape), then by the admin API's setting.
DEFAULT_VISIT_POLICY: dict[str, Any] = {
    "flagged": "weekly",
    "categories": {"监测户": "monthly", "边缘户": "monthly"},
    "default": "monthly",
}
VISIT_POLICY_SETTING = "visit_policy"

#: what the server's own edits may touch: everything
EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "")
#: base_version of a server edit: it saw every write so far (as service.server_update)
SEEN_EVERYTHING = 2**62
#: the user a server edit is logged under when no one signed in made it (the command line)
SYSTEM_USER = "system"

MESSAGES: dict[str, tuple[str, str]] = {
    "not_utf8": (
        "CSV 文件不是 UTF-8 编码，请另存为“CSV UTF-8（逗号分隔）”",
        "the CSV file is not UTF-8; save it as “CSV UTF-8 (comma delimited)”",
    ),
    "old_excel": (
        "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV UTF-8",
        "old .xls files are not supported; save as .xlsx or CSV UTF-8",
    ),
    "bad_xlsx": ("无法读取此 Excel 文件：{reason}", "cannot read this Excel file: {reason}"),
    "bad_csv": ("无法读取此 CSV 文件：{reason}", "cannot read this CSV file: {reason}"),
    "no_rows": ("文件中没有数据行", "the file has no data rows"),
    "missing_column": ("缺少必填列“{column}”", "missing required column {column}"),
    "duplicate_column": ("列“{column}”出现了两次", "column {column} appears twice"),
    "unknown_column": (
        "列“{column}”不属于花名册格式，已忽略",
        "column {column} is not part of the roster format and was ignored",
    ),
    "required": ("“{column}”不能为空", "{column} is empty"),
    "too_long": ("“{column}”超过 {limit} 个字符", "{column} is longer than {limit} characters"),
    "id_length": (
        "身份证号 {id} 应为 18 位",
        "ID number {id} must have 18 characters",
    ),
    "id_characters": (
        "身份证号 {id} 前 17 位应为数字，最后一位为数字或 X",
        "ID number {id}: the first 17 characters must be digits, the last a digit or X",
    ),
    "id_birth_date": (
        "身份证号 {id} 中的出生日期无效",
        "ID number {id} holds no valid birth date",
    ),
    "id_check_digit": ("身份证号 {id} 校验码错误", "ID number {id} has a wrong check digit"),
    "id_stored_as_number": (
        "身份证号被 Excel 存成了数字，末几位已丢失；请把该列设为文本格式后重新填写",
        "Excel stored the ID number as a number and lost its last digits; "
        "format the column as text and enter it again",
    ),
    "gender_mismatch": (
        "性别“{gender}”与身份证号不符（身份证号为{id_gender}性）",
        "性别 {gender} does not match the ID number ({id_gender})",
    ),
    "birth_year_mismatch": (
        "出生年份 {year} 与身份证号中的 {id_year} 不符",
        "出生年份 {year} differs from the ID number's {id_year}",
    ),
    "bad_year": (
        "出生年份“{value}”不是 {low} 至 {high} 之间的年份",
        "出生年份 {value!r} is not a year between {low} and {high}",
    ),
    "bad_flag": (
        "“{column}”填写了“{value}”，只能填“是”“否”或留空",
        "{column} is {value!r}; use 是, 否 or leave it empty",
    ),
    "conflicting_household": (
        "户编码 {code} 的“{column}”为“{value}”，与第 {first_row} 行的“{first}”不一致",
        "户编码 {code}: {column} is {value!r} here but {first!r} on row {first_row}",
    ),
    "duplicate_person": (
        "{name}（{relation}）已在本户第 {first_row} 行出现",
        "{name} ({relation}) is already on row {first_row} of this household",
    ),
    "duplicate_id_number": (
        "身份证号 {id} 已在第 {first_row} 行出现",
        "ID number {id} is already on row {first_row}",
    ),
    "household_moved": (
        "户编码 {code} 已登记在 {place}，导入不能迁移农户",
        "household {code} is registered in {place}; an import does not move households",
    ),
    "outside_regions": (
        "{place} 不在您管理的区划内",
        "{place} is outside the regions you administer",
    ),
    "household_elsewhere": (
        "户编码 {code} 已登记在您管理的区划以外",
        "household {code} is registered outside the regions you administer",
    ),
    "no_county": (
        "系统中还没有县级区划，请指定县名（--county）",
        "there is no county region yet; name it (--county)",
    ),
    "several_counties": (
        "系统中有多个县级区划，请指定县名（--county）",
        "there are several county regions; name the one to import into (--county)",
    ),
    "household_archived": (
        "户编码 {code} 已归档，仍按花名册更新",
        "household {code} is archived; it is updated all the same",
    ),
    "id_number_changed": (
        "{name}（{relation}）的身份证号由 {old} 改为 {new}",
        "the ID number of {name} ({relation}) changes from {old} to {new}",
    ),
}


@dataclass
class Issue:
    """One problem of a roster: where (file row, column), what (a code) and its particulars."""

    row: int | None
    column: str | None
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, english: bool = False) -> str:
        zh, en = MESSAGES[self.code]
        return (en if english else zh).format(**self.params)

    def text(self, english: bool = False) -> str:
        """One line for a person: the row, then the message (which names its column)."""
        if self.row is None:
            return self.message(english)
        if english:
            return f"row {self.row}: {self.message(True)}"
        return f"第 {self.row} 行：{self.message()}"

    def as_dict(self, english: bool = False) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message(english),
        }


class RosterRejected(Exception):
    """A roster with errors: nothing of it was imported."""

    def __init__(self, errors: list[Issue], warnings: list[Issue] | None = None) -> None:
        super().__init__(f"{len(errors)} errors in the roster")
        self.errors = errors
        self.warnings = warnings or []


# --- 1. read ---------------------------------------------------------------------------------

Table = list[tuple[int, list[Any]]]


def read_table(content: bytes) -> Table:
    """The rows of a roster file as (file row number, cells), by content: .xlsx is a zip.
    UploadTooLarge if the file expands beyond the upload limits (server/uploads.py)."""
    if content.startswith(b"PK\x03\x04"):
        return _xlsx_rows(content)
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise RosterRejected([Issue(None, None, "old_excel")])
    return _csv_rows(content)


def _xlsx_rows(content: bytes) -> Table:
    """The first sheet's rows; numbers and dates stay typed (an ID number read as a number is
    reported as such)."""
    from openpyxl import load_workbook

    checked = checked_workbook(content)
    try:
        workbook = load_workbook(checked, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        reason = {"reason": type(exc).__name__}
        raise RosterRejected([Issue(None, None, "bad_xlsx", reason)]) from None
    try:
        sheet = workbook.worksheets[0]
        return [
            (number, list(cells))
            for number, cells in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
        ]
    finally:
        workbook.close()


def _csv_rows(content: bytes) -> Table:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterRejected([Issue(None, None, "not_utf8")]) from None
    try:
        rows = bounded_rows(csv.reader(io.StringIO(text)))
        return [(number, row) for number, row in enumerate(rows, 1)]
    except csv.Error as exc:
        raise RosterRejected([Issue(None, None, "bad_csv", {"reason": str(exc)})]) from None


def _text(value: Any) -> str:
    """A cell as the text a person sees in it: without NUL, which no one can type or see and
    PostgreSQL's text columns refuse (a damaged file's cell)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value).replace("\x00", "").strip()


# --- 2. check --------------------------------------------------------------------------------


@dataclass
class PersonRow:
    row: int
    name: str
    relation: str
    id_number: str | None
    gender: str | None
    birth_year: int | None
    phone: str | None
    notes: str | None
    flags: set[str]


@dataclass
class HouseholdRows:
    code: str
    row: int  # the household's first row
    head_name: str
    township: str
    village: str
    category: str
    people: list[PersonRow] = field(default_factory=list)

    @property
    def phone(self) -> str | None:
        """The head's 联系电话, else the first one given."""
        phones = [p.phone for p in self.people if p.phone and p.relation == HEAD_RELATION]
        phones += [p.phone for p in self.people if p.phone]
        return phones[0] if phones else None


@dataclass
class Roster:
    households: dict[str, HouseholdRows]
    #: the flags whose column the file has: only those are set or cleared by it
    flag_columns: frozenset[str]
    rows: int
    warnings: list[Issue]


def parse_roster(table: Table) -> Roster:
    """The households of a roster, or RosterRejected with every problem found in the file."""
    return _Checker(table).run()


def id_number_gender(value: str) -> str:
    """男 or 女, from the 17th character of a valid ID number (odd for men)."""
    return "男" if int(value[16]) % 2 else "女"


class _Checker:
    """Walks the rows once, collecting every error and warning."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.households: dict[str, HouseholdRows] = {}
        self.household_values: dict[str, dict[str, str]] = {}
        self.id_rows: dict[str, int] = {}  # ID number → first row
        self.name_rows: dict[tuple[str, str, str], tuple[int, bool]] = {}
        self.year = now().year

    def run(self) -> Roster:
        header_at = self._header_index()
        header_row, header = self.table[header_at] if self.table else (1, [])
        columns = self._columns(header_row, header)
        if self.errors:
            raise RosterRejected(self.errors, self.warnings)
        rows = 0
        for number, cells in self.table[header_at + 1 :]:
            raw = {name: cells[i] if i < len(cells) else None for name, i in columns.items()}
            text = {name: _text(value) for name, value in raw.items()}
            if not any(text.values()):
                continue
            rows += 1
            self._row(number, raw, text)
        if rows == 0:
            self.errors.append(Issue(None, None, "no_rows"))
        if self.errors:
            raise RosterRejected(self.errors, self.warnings)
        flags = frozenset(FLAG_COLUMNS[c] for c in columns if c in FLAG_COLUMNS)
        return Roster(self.households, flags, rows, self.warnings)

    def _header_index(self) -> int:
        """The header is the first row that names 户编码 (row 1 in the standard layout)."""
        for index, (_number, cells) in enumerate(self.table[:HEADER_SEARCH_ROWS]):
            if "户编码" in (_text(c) for c in cells):
                return index
        return 0

    def _columns(self, row: int, header: list[Any]) -> dict[str, int]:
        columns: dict[str, int] = {}
        for index, cell in enumerate(header):
            name = _text(cell)
            if not name:
                continue
            if name in columns:
                self.errors.append(Issue(row, name, "duplicate_column", {"column": name}))
            elif name in COLUMNS:
                columns[name] = index
            else:
                self.warnings.append(Issue(row, name, "unknown_column", {"column": name}))
        for name in REQUIRED:
            if name not in columns:
                self.errors.append(Issue(row, name, "missing_column", {"column": name}))
        return columns

    def _row(self, row: int, raw: dict[str, Any], text: dict[str, str]) -> None:
        before = len(self.errors)
        for name in REQUIRED:
            if not text.get(name):
                self.errors.append(Issue(row, name, "required", {"column": name}))
        for name, limit in MAX_LENGTH.items():
            if len(text.get(name, "")) > limit:
                self.errors.append(Issue(row, name, "too_long", {"column": name, "limit": limit}))
        id_number = self._id_number(row, raw.get("身份证号"), text)
        birth_year = self._birth_year(row, text.get("出生年份", ""), id_number)
        flags = self._flags(row, text)
        if len(self.errors) > before:
            return
        person = PersonRow(
            row=row,
            name=text["人员姓名"],
            relation=text["与户主关系"],
            id_number=id_number,
            gender=text.get("性别") or None,
            birth_year=birth_year,
            phone=text.get("联系电话") or None,
            notes=text.get("备注") or None,
            flags=flags,
        )
        household = self._household(row, text)
        if household is not None and self._unique(household, person):
            household.people.append(person)

    def _id_number(self, row: int, raw: Any, text: dict[str, str]) -> str | None:
        value = normal_id_number(text.get("身份证号", ""))
        if not value:
            return None
        if isinstance(raw, int | float):
            self.errors.append(Issue(row, "身份证号", "id_stored_as_number"))
            return None
        problem = id_number_problem(value)
        if problem:
            self.errors.append(Issue(row, "身份证号", problem, {"id": mask_id_number(value)}))
            return None
        gender = text.get("性别", "")
        if gender in ("男", "女") and gender != id_number_gender(value):
            params = {"gender": gender, "id_gender": id_number_gender(value)}
            self.warnings.append(Issue(row, "性别", "gender_mismatch", params))
        return value

    def _birth_year(self, row: int, value: str, id_number: str | None) -> int | None:
        if not value:
            return None
        year = int(value) if value.isascii() and value.isdigit() else None
        if year is None or not FIRST_BIRTH_YEAR <= year <= self.year:
            params = {"value": value, "low": FIRST_BIRTH_YEAR, "high": self.year}
            self.errors.append(Issue(row, "出生年份", "bad_year", params))
            return None
        if id_number and int(id_number[6:10]) != year:
            params = {"year": year, "id_year": int(id_number[6:10])}
            self.warnings.append(Issue(row, "出生年份", "birth_year_mismatch", params))
        return year

    def _flags(self, row: int, text: dict[str, str]) -> set[str]:
        flags = set()
        for column, flag in FLAG_COLUMNS.items():
            value = text.get(column, "")
            if value not in FLAG_VALUES:
                params = {"column": column, "value": value}
                self.errors.append(Issue(row, column, "bad_flag", params))
            elif FLAG_VALUES[value]:
                flags.add(flag)
        return flags

    def _household(self, row: int, text: dict[str, str]) -> HouseholdRows | None:
        """The household of this row; None if its household cells contradict earlier rows."""
        code = text["户编码"]
        values = {name: text[name] for name in HOUSEHOLD_COLUMNS}
        household = self.households.get(code)
        if household is None:
            household = HouseholdRows(
                code, row, values["户主姓名"], values["乡镇"], values["村"], values["类别"]
            )
            self.households[code] = household
            self.household_values[code] = values
            return household
        first = self.household_values[code]
        clean = True
        for name, value in values.items():
            if value != first[name]:
                params = {
                    "code": code,
                    "column": name,
                    "value": value,
                    "first": first[name],
                    "first_row": household.row,
                }
                self.errors.append(Issue(row, name, "conflicting_household", params))
                clean = False
        return household if clean else None

    def _unique(self, household: HouseholdRows, person: PersonRow) -> bool:
        """A person appears once: by ID number in the file, by name and relation in the
        household when either row has no ID number."""
        if person.id_number:
            first_row = self.id_rows.get(person.id_number)
            if first_row is not None:
                params = {"id": mask_id_number(person.id_number), "first_row": first_row}
                self.errors.append(Issue(person.row, "身份证号", "duplicate_id_number", params))
                return False
            self.id_rows[person.id_number] = person.row
        key = (household.code, person.name, person.relation)
        earlier = self.name_rows.get(key)
        if earlier is not None and not (earlier[1] and person.id_number):
            params = {"name": person.name, "relation": person.relation, "first_row": earlier[0]}
            self.errors.append(Issue(person.row, "人员姓名", "duplicate_person", params))
            return False
        self.name_rows.setdefault(key, (person.row, bool(person.id_number)))
        return True


# --- visit policy ----------------------------------------------------------------------------


def check_visit_policy(value: Any) -> dict[str, Any]:
    """A complete visit policy from ``value`` (missing keys take the defaults); ValueError
    saying what is wrong otherwise."""
    if not isinstance(value, dict):
        raise ValueError("the visit policy must be a JSON object")
    unknown = sorted(set(value) - set(DEFAULT_VISIT_POLICY))
    if unknown:
        raise ValueError("unknown keys: " + ", ".join(unknown))
    policy = {**DEFAULT_VISIT_POLICY, **value}
    categories = policy["categories"]
    if not isinstance(categories, dict) or not all(
        isinstance(k, str) and 0 < len(k) <= 40 for k in categories
    ):
        raise ValueError("categories must map category names to a policy")
    for where, choice in [("flagged", policy["flagged"]), ("default", policy["default"])] + [
        (f"categories.{k}", v) for k, v in categories.items()
    ]:
        if choice not in VISIT_POLICIES:
            raise ValueError(f"{where} must be one of " + ", ".join(VISIT_POLICIES))
    return {
        "flagged": policy["flagged"],
        "categories": dict(categories),
        "default": policy["default"],
    }


def visit_policy() -> dict[str, Any]:
    """The policy in force: the admin's setting, else ZOUFANG_VISIT_POLICY, else the defaults."""
    with store().engine.connect() as conn:
        stored = read_setting(conn, VISIT_POLICY_SETTING)
    if stored is not None:
        return check_visit_policy(stored)
    configured = current_app.config.get("VISIT_POLICY") or {}
    try:
        return check_visit_policy(configured)
    except ValueError as exc:
        raise RuntimeError(f"ZOUFANG_VISIT_POLICY: {exc}") from exc


def derive_visit_policy(category: str | None, flagged: bool, policy: dict[str, Any]) -> str:
    if flagged:
        return str(policy["flagged"])
    return str(policy["categories"].get(category or "", policy["default"]))


def save_visit_policy(policy: dict[str, Any], actor: str | None) -> dict[str, Any]:
    """Store the policy and re-derive every active household's visit_policy by it, at once."""
    policy = check_visit_policy(policy)
    with store().write() as txn:
        conn = txn.conn
        write_setting(conn, VISIT_POLICY_SETTING, policy, actor)
        updates = _rederived(conn, policy)
        apply_server_updates(txn, actor, updates)
        audit(
            conn,
            "visit_policy_changed",
            actor,
            target_type="setting",
            target_id=VISIT_POLICY_SETTING,
            details={"policy": policy, "households_updated": len(updates)},
        )
    return {"policy": policy, "households_updated": len(updates)}


def _rederived(conn: Connection, policy: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    flagged = {
        row.household_id
        for row in conn.execute(select(Person.household_id, Person.data).where(~Person.deleted))
        if json.loads(row.data).get("flags")
    }
    rows = conn.execute(
        select(Household.id, Household.category, Household.visit_policy).where(
            ~Household.deleted, Household.status != "archived"
        )
    )
    updates = []
    for row in rows:
        wanted = derive_visit_policy(row.category, row.id in flagged, policy)
        if wanted != row.visit_policy:
            updates.append(("household", row.id, {"visit_policy": wanted}))
    return updates


# --- the plan: what the file changes in the database ---------------------------------------


@dataclass
class Plan:
    creates: list[Record] = field(default_factory=list)  # versions allocated when written
    updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            "regions": {"created": 0},
            "households": {"created": 0, "updated": 0, "unchanged": 0},
            "people": {"created": 0, "updated": 0, "unchanged": 0},
        }
    )
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class _Stored:
    id: str
    data: dict[str, Any]
    village_id: str | None = None


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Planner:
    """Matches the roster against the database (docs/admin.md, "Matching") and lists the
    records to create and the fields to change."""

    def __init__(
        self,
        conn: Connection,
        roster: Roster,
        policy: dict[str, Any],
        within: Administration | None = None,
    ) -> None:
        self.conn, self.roster, self.policy, self.within = conn, roster, policy, within
        self.plan = Plan(warnings=list(roster.warnings))
        rows = conn.execute(
            select(Region.id, Region.parent_id, Region.level, Region.name)
            .where(~Region.deleted)
            .order_by(Region.version)
        ).all()
        self.names = {r.id: r.name for r in rows}
        self.parents = {r.id: r.parent_id for r in rows}
        self.counties = [r.id for r in rows if r.level == "county" and self._visible(r.id)]
        self.children: dict[tuple[str | None, str, str], str] = {}
        for r in reversed(rows):  # the oldest wins when two share a name
            self.children[(r.parent_id, r.level, r.name)] = r.id
            if r.level == "county":  # a roster names its county alone, in a province or not
                self.children[(None, r.level, r.name)] = r.id

    def run(self, county_name: str | None) -> Plan:
        county = self._county(county_name)
        if county is None:
            return self.plan
        households = self._stored_households()
        people = self._stored_people([h.id for h in households.values()])
        for rows in self.roster.households.values():
            village = self._region(
                self._region(county, "township", rows.township), "village", rows.village
            )
            stored = households.get(rows.code)
            if not self._mine(village):
                place = {"place": f"{rows.township}/{rows.village}"}
                self.plan.errors.append(Issue(rows.row, "村", "outside_regions", place))
            elif stored is None:
                self._new_household(rows, village)
            elif not self._mine(stored.village_id):
                params = {"code": rows.code}
                self.plan.errors.append(Issue(rows.row, "户编码", "household_elsewhere", params))
            elif stored.village_id != village:
                params = {"code": rows.code, "place": self._place(stored.village_id)}
                self.plan.errors.append(Issue(rows.row, "户编码", "household_moved", params))
            else:
                self._known_household(rows, stored, people.get(stored.id, []))
        return self.plan

    def _visible(self, region_id: str) -> bool:
        """A county an admin may name: one they administer or administer part of."""
        within = self.within
        return within is None or within.everything or region_id in within.scope.region_ids

    def _mine(self, region_id: str | None) -> bool:
        """The importing admin administers this region, stored or planned (a planned one is
        theirs when its parent is; a new county only for an admin of every county)."""
        if self.within is None or self.within.everything:
            return True
        while region_id is not None and region_id not in self.within.tree:
            region_id = self.parents.get(region_id)
        return region_id is not None and self.within.region(region_id)

    def _place(self, village_id: str | None) -> str:
        """乡镇/村 of a village, as a roster names it."""
        names: list[str] = []
        region_id = village_id
        while region_id is not None and region_id in self.names and len(names) < 2:
            names.insert(0, self.names[region_id])
            region_id = self.parents[region_id]
        return "/".join(names)

    def _county(self, name: str | None) -> str | None:
        if name:
            return self._region(None, "county", name)
        if len(self.counties) == 1:
            return self.counties[0]
        code = "no_county" if not self.counties else "several_counties"
        self.plan.errors.append(Issue(None, None, code))
        return None

    def _region(self, parent_id: str | None, level: str, name: str) -> str:
        """The region of this name under ``parent_id``, planned for creation if there is none."""
        key = (parent_id, level, name)
        if key not in self.children:
            region_id = new_id()
            data = {"parent_id": parent_id, "level": level, "name": name, "code": None}
            village = region_id if level == "village" else None
            self.plan.creates.append(Record("region", region_id, 0, False, data, village, None))
            self.parents[region_id] = parent_id
            self.plan.counts["regions"]["created"] += 1
            self.children[key] = region_id
        return self.children[key]

    def _stored_households(self) -> dict[str, _Stored]:
        out = {}
        for chunk in _chunks(list(self.roster.households)):
            rows = self.conn.execute(
                select(Household.id, Household.code, Household.village_id, Household.data).where(
                    Household.code.in_(chunk), ~Household.deleted
                )
            )
            for r in rows:
                out[r.code] = _Stored(r.id, json.loads(r.data), r.village_id)
        return out

    def _stored_people(self, household_ids: list[str]) -> dict[str, list[_Stored]]:
        out: dict[str, list[_Stored]] = {}
        for chunk in _chunks(household_ids):
            rows = self.conn.execute(
                select(Person.id, Person.household_id, Person.data)
                .where(Person.household_id.in_(chunk), ~Person.deleted)
                .order_by(Person.version)
            )
            for r in rows:
                out.setdefault(r.household_id, []).append(_Stored(r.id, json.loads(r.data)))
        return out

    def _policy(self, rows: HouseholdRows, flags: list[list[str]]) -> str:
        return derive_visit_policy(rows.category, any(flags), self.policy)

    def _new_household(self, rows: HouseholdRows, village: str) -> None:
        household_id = new_id()
        data = {
            "village_id": village,
            "code": rows.code,
            "head_name": rows.head_name,
            "address": None,
            "phone": rows.phone,
            "category": rows.category,
            "status": "active",
            "visit_policy": self._policy(rows, [sorted(p.flags) for p in rows.people]),
            "lat": None,
            "lon": None,
            "notes": None,
        }
        self.plan.creates.append(
            Record("household", household_id, 0, False, data, village, household_id)
        )
        self.plan.counts["households"]["created"] += 1
        for person in rows.people:
            self._new_person(person, household_id, village)

    def _new_person(self, person: PersonRow, household_id: str, village: str) -> None:
        data = {
            "household_id": household_id,
            "name": person.name,
            "gender": person.gender,
            "birth_year": person.birth_year,
            "relation": person.relation,
            "flags": sorted(person.flags),
            "id_number": person.id_number,
            "phone": person.phone,
            "notes": person.notes,
        }
        self.plan.creates.append(Record("person", new_id(), 0, False, data, village, household_id))
        self.plan.counts["people"]["created"] += 1

    def _known_household(self, rows: HouseholdRows, stored: _Stored, people: list[_Stored]) -> None:
        if stored.data.get("status") == "archived":
            self.plan.warnings.append(
                Issue(rows.row, "户编码", "household_archived", {"code": rows.code})
            )
        matches = self._match(rows.people, people)
        matched = {s.id for s in matches.values()}
        flags = [s.data.get("flags") or [] for s in people if s.id not in matched]
        for person in rows.people:
            found = matches.get(person.row)
            if found is None:
                self._new_person(person, stored.id, stored.village_id or "")
                flags.append(sorted(person.flags))
            else:
                flags.append(self._known_person(person, found))
        wanted: dict[str, Any] = {
            "head_name": rows.head_name,
            "category": rows.category,
            "visit_policy": self._policy(rows, flags),
        }
        if rows.phone:
            wanted["phone"] = rows.phone
        self._update("households", "household", stored, wanted)

    def _match(self, rows: list[PersonRow], stored: list[_Stored]) -> dict[int, _Stored]:
        """File row → stored person: by ID number, else by name and relation; each stored
        person matches one row at most, the oldest first. Rows with an ID number go first."""
        taken: set[str] = set()
        out: dict[int, _Stored] = {}
        for person in sorted(rows, key=lambda p: p.id_number is None):
            candidates = [s for s in stored if s.id not in taken]
            found = None
            if person.id_number:
                found = next(
                    (s for s in candidates if s.data.get("id_number") == person.id_number), None
                )
            if found is None:
                found = next(
                    (
                        s
                        for s in candidates
                        if s.data.get("name") == person.name
                        and s.data.get("relation") == person.relation
                    ),
                    None,
                )
            if found is not None:
                taken.add(found.id)
                out[person.row] = found
        return out

    def _known_person(self, person: PersonRow, stored: _Stored) -> list[str]:
        """Plan the changes of a matched person; their flags after the import."""
        kept = [f for f in stored.data.get("flags") or [] if f not in self.roster.flag_columns]
        flags = sorted(set(kept) | person.flags)
        wanted: dict[str, Any] = {"name": person.name, "relation": person.relation, "flags": flags}
        for name in ("id_number", "gender", "birth_year", "phone", "notes"):
            value = getattr(person, name)
            if value is not None:
                wanted[name] = value
        old = stored.data.get("id_number")
        if person.id_number and old and old != person.id_number:
            params = {
                "name": person.name,
                "relation": person.relation,
                "old": mask_id_number(old),
                "new": mask_id_number(person.id_number),
            }
            self.plan.warnings.append(Issue(person.row, "身份证号", "id_number_changed", params))
        self._update("people", "person", stored, wanted)
        return flags

    def _update(self, kind: str, type_: str, stored: _Stored, wanted: dict[str, Any]) -> None:
        changes = {k: v for k, v in wanted.items() if stored.data.get(k) != v}
        if changes:
            self.plan.updates.append((type_, stored.id, changes))
            self.plan.counts[kind]["updated"] += 1
        else:
            self.plan.counts[kind]["unchanged"] += 1


def plan_import(
    conn: Connection,
    roster: Roster,
    county: str | None,
    policy: dict[str, Any],
    within: Administration | None = None,
) -> Plan:
    """What importing ``roster`` would create and change; RosterRejected when it cannot.
    ``within``: the importing admin's administration, whose regions alone the rows may fill
    (None for the server's operator and an admin of every county)."""
    plan = _Planner(conn, roster, policy, within).run(county)
    if plan.errors:
        raise RosterRejected(plan.errors, plan.warnings)
    return plan


# --- 3. write --------------------------------------------------------------------------------


class _Joined:
    """A store whose write transaction is one already open: the sync engine's push then
    commits or rolls back with everything else the caller writes in it."""

    def __init__(self, txn: SqlTxn) -> None:
        self.txn = txn

    @contextmanager
    def write(self) -> Iterator[SqlTxn]:
        yield self.txn


def apply_server_updates(
    txn: SqlTxn, actor: str | None, updates: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """Field changes as ops of the server's device, pushed through the sync engine inside
    ``txn``: merged, logged and pulled as every server edit is (see service.server_update,
    which does the same for one change in its own transaction)."""
    if not updates:
        return
    raw = [
        {
            "op_id": new_id(),
            "device_seq": seq,
            "hlc": server_hlc(),
            "action": "update",
            "type": type_,
            "id": id_,
            "base_version": SEEN_EVERYTHING,
            "data": data,
        }
        for seq, (type_, id_, data) in enumerate(updates, 1)
    ]
    ops = parse_ops(raw, SERVER_DEVICE)
    ctx = engine.PushContext(
        SERVER_DEVICE, actor or SYSTEM_USER, EVERYTHING, now(), server_hlc(), "system"
    )
    result = engine.push(_Joined(txn), ctx, ops, renumber=True)
    rejected = [r for r in result.results if r["status"] == "rejected"]
    if rejected:
        raise RuntimeError(
            f"the sync engine rejected {len(rejected)} server edits, the first: "
            f"{rejected[0]['error']}"
        )


def _write(txn: SqlTxn, plan: Plan, actor: str | None) -> None:
    order = {"region": 0, "household": 1, "person": 2}
    creates = sorted(plan.creates, key=lambda r: order[r.type])  # parents before children
    for record in creates:
        record.version = txn.allocate_version()
    txn.insert_records(creates)
    apply_server_updates(txn, actor, plan.updates)


def import_roster(
    content: bytes,
    actor: str | None = None,
    county: str | None = None,
    dry_run: bool = False,
    source: str = "",
    within: Administration | None = None,
) -> dict[str, Any]:
    """Import a roster file, all or nothing; its summary, or RosterRejected with every error.

    ``county`` names the county the roster belongs to (created if there is none of that
    name); without it the database must hold exactly one county. ``dry_run`` checks and
    counts without writing.
    """
    roster = parse_roster(read_table(content))
    policy = visit_policy()
    if dry_run:
        with store().engine.connect() as conn:
            plan = plan_import(conn, roster, county, policy, within)
    else:
        with store().write() as txn:
            plan = plan_import(txn.conn, roster, county, policy, within)
            _write(txn, plan, actor)
            audit(
                txn.conn,
                "roster_imported",
                actor,
                target_type="roster",
                details={"file": source, "rows": roster.rows, **plan.counts},
            )
        log.info("roster %s imported: %s", source or "(upload)", plan.counts)
    return {"dry_run": dry_run, "rows": roster.rows, **plan.counts, "warnings": plan.warnings}


def summary_text(summary: dict[str, Any], english: bool = False) -> str:
    """The counts of an import in one line."""
    h, p, r = summary["households"], summary["people"], summary["regions"]
    if english:
        text = (
            f"households {h['created']} created, {h['updated']} updated, "
            f"{h['unchanged']} unchanged; people {p['created']} created, {p['updated']} updated, "
            f"{p['unchanged']} unchanged; regions {r['created']} created"
        )
        return f"dry run, nothing written: {text}" if summary["dry_run"] else f"imported: {text}"
    text = (
        f"农户新增 {h['created']}、更新 {h['updated']}、未变 {h['unchanged']}；"
        f"人员新增 {p['created']}、更新 {p['updated']}、未变 {p['unchanged']}；"
        f"新建区划 {r['created']}"
    )
    return f"试导入，未写入：{text}" if summary["dry_run"] else f"已导入：{text}"
