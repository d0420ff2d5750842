"""The submissions workbook writes each repeat on a sheet of its own (CONTRACT §10): one row
per entry, keyed by the visit's id, with the entry's number and, for a repeat asked once per
person of the household, that person's name."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from server.admin.forms_service import publish_next_version
from server.service import store
from server.storage.store import TABLES
from tests.test_visit_list import NOW, Clock, at, push, submissions


def label(text: str) -> dict[str, str]:
    return {"zh-CN": text, "en": text}


MEMBER_FORM = {
    "form_id": "member_income",
    "versions": [
        {
            "version": 1,
            "title": label("成员收入"),
            "policy": None,
            "fields": [
                {
                    "id": "members",
                    "type": "repeat",
                    "label": label("家庭成员"),
                    "seed": "people",
                    "fields": [
                        {"id": "income", "type": "number", "label": label("月收入")},
                        {"id": "works", "type": "boolean", "label": label("外出务工")},
                    ],
                },
                {"id": "remark", "type": "text", "label": label("备注")},
            ],
        }
    ],
}


@pytest.fixture
def clock(any_county: Any) -> Clock:
    clock = Clock(NOW)
    any_county.app.config["CLOCK"] = clock
    return clock


def test_a_repeat_has_its_own_sheet_with_a_row_per_entry_keyed_by_visit(any_county, clock):
    c, h = any_county, any_county.households
    with c.app.app_context():
        publish_next_version(MEMBER_FORM, actor=None)
        with store().read() as conn:
            people = {
                json.loads(r.data)["name"]: r.id
                for r in conn.execute(select(TABLES["person"].c.id, TABLES["person"].c.data))
            }
    person = people["汪德明"]
    a = c.device("cadre_a")
    entries = [{"person": person, "income": 1200, "works": False}]
    answers: dict[str, Any] = {"members": entries, "remark": "=1+1"}
    visit = a.visit(h["h1"], at(23), form_id="member_income", form_version=1, answers=answers)
    push(a, clock, visit)
    response = submissions(c.device("sup_east"), c.regions["east"], form_id="member_income")
    assert response.status_code == 200, response.get_data()[:300]
    book = load_workbook(io.BytesIO(response.data))
    rows = list(book["家庭成员"].iter_rows(values_only=True))
    assert rows == [
        ("走访编号", "序号", "人员", "月收入", "外出务工"),
        (visit["id"], 1, "汪德明", 1200, "否"),
    ]
    visits = list(book["走访记录"].iter_rows(values_only=True))
    assert visits[1][visits[0].index("家庭成员")] == "1 条（见同名工作表）"
    assert list(book["重复组"].iter_rows(values_only=True))[1:] == []  # not written twice


def test_a_repeat_inside_an_entry_is_numbered_after_its_enclosing_entry():
    from forms import parse_definition
    from server.reports.repeat_sheets import _entries_at, entry_rows

    kids = {
        "id": "kids",
        "type": "repeat",
        "label": label("子女"),
        "fields": [{"id": "age", "type": "integer", "label": label("年龄")}],
    }
    members = {"id": "members", "type": "repeat", "label": label("成员"), "fields": [kids]}
    doc = {**MEMBER_FORM, "versions": [{**MEMBER_FORM["versions"][0], "fields": [members]}]}
    (form,) = parse_definition(doc)
    answers = {"members": [{"kids": [{"age": 3}]}, {"kids": [{"age": 5}, {"age": 9}]}]}
    inner = form.fields["members"].fields["kids"]
    rows = [
        row
        for number, entries in _entries_at(answers, ("members", "kids"), "")
        for row in entry_rows("v1", inner, entries, {}, number)
    ]
    assert rows == [["v1", "1.1", None, 3], ["v1", "2.1", None, 5], ["v1", "2.2", None, 9]]


def test_the_server_checks_the_people_of_a_repeat_per_household_member(any_county, clock):
    from tests.county import uid

    c, h = any_county, any_county.households
    with c.app.app_context():
        publish_next_version(MEMBER_FORM, actor=None)
    a = c.device("cadre_a")
    stranger = a.visit(
        h["h1"], at(23), form_id="member_income", form_version=1,
        answers={"members": [{"person": uid(), "income": 1}]},
    )  # fmt: skip
    newcomer = uid()
    person = a.op("create", "person", newcomer, {"household_id": h["h1"], "name": "新生儿"})
    met = a.visit(
        h["h1"], at(24), form_id="member_income", form_version=1,
        answers={"members": [{"person": newcomer, "income": 0}]},
    )  # fmt: skip
    results = a.push([stranger, person, met], device_time=clock().isoformat()).get_json()
    statuses = [r["status"] for r in results["results"]]
    assert statuses == ["rejected", "applied", "applied"], results
    error = results["results"][0]["error"]
    assert error["details"]["fields"] == {"data.answers.members[0].person": ["unknown_person"]}
