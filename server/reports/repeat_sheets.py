"""The repeats of the submissions workbook (CONTRACT §10): a sheet per repeat question, one
row per entry keyed by the visit's id, with the entry's number and, for a repeat asked once
per person of the household, that person's name; a column per question of the repeat, headed
by its zh-CN label. Every cell goes through spreadsheet_text (via the caller's ``cell``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from server.storage.store import TABLES, chunks

PEOPLE = TABLES["person"]
FIXED = ["走访编号", "序号", "人员"]
#: characters Excel refuses in a sheet name, and its longest name
_NOT_IN_NAMES = re.compile(r"[\[\]:*?/\\]")
_LONGEST_NAME = 31


class RepeatSheets:
    """The sheet of each repeat question among the exported questions, and its rows."""

    def __init__(self, book: Any, questions: list[tuple[str, str, Any]]) -> None:
        self.repeats = [(qid, field) for qid, _, field in questions if field.type == "repeat"]
        self.sheets: dict[str, Any] = {}
        taken = {"走访记录", "重复组"}
        for qid, field in self.repeats:
            name = sheet_name(field.label.get("zh-CN") or qid, taken)
            taken.add(name)
            sheet = book.create_sheet(name)
            labels = [c.label.get("zh-CN") or c.id for c in field.fields.values()]
            sheet.append(FIXED + labels)
            self.sheets[qid] = sheet
        self.names: dict[str, str | None] = {}

    def ids(self) -> set[str]:
        """The questions written here, not on the generic repeats sheet."""
        return set(self.sheets)

    def write(
        self, conn: Connection, item: dict[str, Any], cell: Callable[[Any, Any], Any]
    ) -> None:
        """The entries of one visit, a row each, on the sheet of their repeat."""
        for qid, field in self.repeats:
            entries = item["answers"].get(qid)
            if not isinstance(entries, list):
                continue
            sheet = self.sheets[qid]
            self._learn(conn, entries)
            for row in entry_rows(item["id"], field, entries, self.names):
                sheet.append([cell(sheet, value) for value in row])

    def _learn(self, conn: Connection, entries: list[Any]) -> None:
        wanted = [
            e["person"]
            for e in entries
            if isinstance(e, dict)
            and isinstance(e.get("person"), str)
            and e["person"] not in self.names
        ]
        for chunk in chunks(wanted):
            for r in conn.execute(select(PEOPLE.c.id, PEOPLE.c.data).where(PEOPLE.c.id.in_(chunk))):
                self.names[r.id] = json.loads(r.data).get("name")
        for person in wanted:
            self.names.setdefault(person, None)


def entry_rows(
    visit_id: str, field: Any, entries: list[Any], names: dict[str, str | None]
) -> Iterator[list[Any]]:
    """One row per entry: visit id, its number from 1, its person's name (else id), values."""
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue
        person = entry.get("person")
        who = (names.get(person) or person) if isinstance(person, str) else None
        values = [shown(child, entry.get(child.id)) for child in field.fields.values()]
        yield [visit_id, index, who, *values]


def shown(field: Any, value: Any) -> Any:
    """An answer as a cell shows it: choices by their zh-CN label, yes/no in words."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if field.choices:
        items = value if isinstance(value, list) else [value]
        return "、".join(str(field.choices.get(x, {}).get("zh-CN", x)) for x in items)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def sheet_name(title: str, taken: set[str]) -> str:
    """A sheet name Excel accepts, unique in the workbook: the repeat's label, shortened."""
    base = _NOT_IN_NAMES.sub("_", title).strip("'") or "重复"
    name, number = base[:_LONGEST_NAME], 1
    while name in taken:
        number += 1
        suffix = f"_{number}"
        name = base[: _LONGEST_NAME - len(suffix)] + suffix
    return name
