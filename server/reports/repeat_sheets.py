"""The repeats of the submissions workbook (CONTRACT §10): a sheet per repeat question, one
row per entry keyed by the visit's id, with the entry's number (``2.1`` for the first entry
of a repeat inside the second entry of its enclosing one) and, for a repeat asked once per
person of the household, that person's name; a column per question of the repeat, headed by
its zh-CN label. Every cell goes through spreadsheet_text (via the caller's ``cell``)."""

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
        self.repeats = [
            (path, field)
            for qid, _, top in questions
            if top.type == "repeat"
            for path, field in _repeats_in(top, (qid,))
        ]
        self.sheets: dict[tuple[str, ...], Any] = {}
        taken = {"走访记录", "重复组"}
        for qid, field in self.repeats:
            name = sheet_name(field.label.get("zh-CN") or qid, taken)
            taken.add(name)
            sheet = book.create_sheet(name)
            labels = [
                c.label.get("zh-CN") or c.id for c in field.fields.values() if c.type != "repeat"
            ]
            sheet.append(FIXED + labels)
            self.sheets[qid] = sheet
        self.names: dict[str, str | None] = {}

    def ids(self) -> set[str]:
        """The questions written here, not on the generic repeats sheet."""
        return {path[0] for path in self.sheets}

    def write(
        self, conn: Connection, item: dict[str, Any], cell: Callable[[Any, Any], Any]
    ) -> None:
        """The entries of one visit, a row each, on the sheet of their repeat."""
        for path, field in self.repeats:
            sheet = self.sheets[path]
            for number, entries in _entries_at(item["answers"], path, ""):
                self._learn(conn, entries)
                for row in entry_rows(item["id"], field, entries, self.names, number):
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


def _repeats_in(field: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """A repeat and the repeats inside its entries, each with the ids leading to it."""
    yield path, field
    for child in field.fields.values():
        if child.type == "repeat":
            yield from _repeats_in(child, (*path, child.id))


def _entries_at(
    answers: Any, path: tuple[str, ...], number: str
) -> Iterator[tuple[str, list[Any]]]:
    """The entry lists a path names in the answers, each with the number of the entry that
    holds it (``""`` at the top, ``"2"`` inside the second entry, ``"2.1"`` …)."""
    value = answers.get(path[0]) if isinstance(answers, dict) else None
    if not isinstance(value, list):
        return
    if len(path) == 1:
        yield number, value
        return
    for index, entry in enumerate(value, start=1):
        yield from _entries_at(entry, path[1:], f"{number}{index}.")


def entry_rows(
    visit_id: str,
    field: Any,
    entries: list[Any],
    names: dict[str, str | None],
    number: str = "",
) -> Iterator[list[Any]]:
    """One row per entry: visit id, its number from 1 (after the enclosing entry's), its
    person's name (else id), its values; a repeat inside it on its own sheet."""
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue
        person = entry.get("person")
        who = (names.get(person) or person) if isinstance(person, str) else None
        values = [
            shown(child, entry.get(child.id))
            for child in field.fields.values()
            if child.type != "repeat"
        ]
        yield [visit_id, f"{number}{index}" if number else index, who, *values]


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
