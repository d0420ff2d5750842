"""Every visit, not only counts (issue 14 item 5, CONTRACT §10): the visit list with its
filters, cursor, scope, masking and late flag; one visit and one household; the submissions
workbook. On SQLite and PostgreSQL, on the small county of tests/county.py, with the server's
clock set to Friday of 2026-W48 so that the visits' times are days, not months, old."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from server.admin.forms_service import publish_next_version
from server.storage.db import db
from server.storage.models import Snapshot
from tests.county import County, Device

WEEK = "2026-W48"
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # Friday 12:00 in Asia/Shanghai
CHECK_FORM = {
    "form_id": "household_check",
    "versions": [
        {
            "version": 1,
            "title": {"zh-CN": "入户核查", "en": "Household check"},
            "policy": None,
            "fields": [
                {"id": "phone", "type": "text", "label": {"zh-CN": "联系电话", "en": "Phone"}},
                {"id": "id_number", "type": "text", "label": {"zh-CN": "身份证号", "en": "ID"}},
                {
                    "id": "water",
                    "type": "single_choice",
                    "label": {"zh-CN": "饮水是否安全", "en": "Safe water"},
                    "choices": [
                        {"value": "yes", "label": {"zh-CN": "安全", "en": "Safe"}},
                        {"value": "no", "label": {"zh-CN": "不安全", "en": "Unsafe"}},
                    ],
                },
                {"id": "remark", "type": "text", "label": {"zh-CN": "备注", "en": "Remark"}},
            ],
        }
    ],
}
SECOND_VERSION = {
    **CHECK_FORM["versions"][0],
    "fields": [
        *CHECK_FORM["versions"][0]["fields"],
        {"id": "income", "type": "number", "label": {"zh-CN": "月收入", "en": "Income"}},
    ],
}


class Clock:
    """``app.config["CLOCK"]``, moved forward by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(any_county: County) -> Clock:
    clock = Clock(NOW)
    any_county.app.config["CLOCK"] = clock
    with any_county.app.app_context():
        publish_next_version(CHECK_FORM, actor=None)
    return clock


def at(day: int, hour: int = 10, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def push(device: Device, clock: Clock, *visits: dict[str, Any]) -> list[str]:
    response = device.push(list(visits), device_time=clock().isoformat())
    results = response.get_json()["results"]
    assert all(r["status"] == "applied" for r in results), results
    return [v["id"] for v in visits]


def checked(device: Device, household: str, when: str, **answers: Any) -> dict[str, Any]:
    return device.visit(household, when, form_id="household_check", form_version=1, answers=answers)


def listing(device: Device, region: str, **query: Any) -> Any:
    return device.client.get(
        "/api/v1/reports/visits",
        query_string={"period": WEEK, "region_id": region, **query},
        headers=device.headers,
    )


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [v["id"] for v in response.get_json()["visits"]]


def test_the_list_holds_every_visit_of_the_period_in_the_region_newest_first(any_county, clock):
    c, h = any_county, any_county.households
    a, cc = c.device("cadre_a"), c.device("cadre_c")
    early, late_ = push(a, clock, a.visit(h["h1"], at(23)), a.visit(h["h2"], at(26)))
    push(a, clock, a.visit(h["h1"], "2026-11-20T10:00:00+08:00"))  # the week before
    (ridge,) = push(cc, clock, cc.visit(h["h5"], at(24)))
    sup, admin = c.device("sup_east"), c.device("admin")
    assert ids(listing(sup, c.regions["east"])) == [late_, early]
    body = listing(admin, c.regions["county"]).get_json()
    assert [v["id"] for v in body["visits"]] == [late_, ridge, early]
    assert body["total"] == 3 and body["cursor"] is None
    first = body["visits"][0]
    assert first["household_name"] == "户主2" and first["visitor_name"] == "甲干部"
    assert first["visited_at_effective"].startswith("2026-11-26T10:00:00")
    assert {"received_at", "mode", "answers", "people_seen", "location", "late"} <= set(first)


def test_each_filter_narrows_the_list(any_county, clock):
    c, h = any_county, any_county.households
    a, b = c.device("cadre_a"), c.device("cadre_b")
    (by_a,) = push(a, clock, a.visit(h["h1"], at(23)))
    (by_b,) = push(b, clock, b.visit(h["h2"], at(24)))
    (checked_,) = push(b, clock, checked(b, h["h3"], at(25), water="yes"))
    sup, east = c.device("sup_east"), c.regions["east"]
    assert set(ids(listing(sup, east))) == {by_a, by_b, checked_}
    assert ids(listing(sup, east, cadre_id=c.users["cadre_a"])) == [by_a]
    assert ids(listing(sup, east, household_id=h["h2"])) == [by_b]
    assert ids(listing(sup, east, form_id="household_check")) == [checked_]
    assert ids(listing(sup, c.regions["lower"])) == []
    assert listing(sup, east, cadre_id=c.users["cadre_a"]).get_json()["total"] == 1


def test_a_visit_is_late_when_it_arrived_after_its_weeks_bulletin(any_county, clock):
    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    (on_time,) = push(a, clock, a.visit(h["h1"], at(23)))
    with c.app.app_context():
        db.session.add(
            Snapshot(
                kind="bulletin",
                period=WEEK,
                region_id=None,
                taken_at=clock().replace(tzinfo=None),
                data="{}",
            )
        )
        db.session.commit()
    clock.at += timedelta(hours=1)
    (after,) = push(a, clock, a.visit(h["h2"], at(24)))
    sup, east = c.device("sup_east"), c.regions["east"]
    flags = {v["id"]: v["late"] for v in listing(sup, east).get_json()["visits"]}
    assert flags == {on_time: False, after: True}
    assert ids(listing(sup, east, late="true")) == [after]
    assert ids(listing(sup, east, late="false")) == [on_time]


def test_paging_returns_every_visit_once_in_order_while_visits_arrive(any_county, clock):
    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    households = [h["h1"], h["h2"], h["h3"]]
    first = push(a, clock, *(a.visit(households[i % 3], at(23 + i % 5, 8 + i)) for i in range(7)))
    sup, east = c.device("sup_east"), c.regions["east"]
    seen: list[dict[str, Any]] = []
    cursor = None
    pushed = 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = listing(sup, east, **query).get_json()
        seen += body["visits"]
        cursor = body["cursor"]
        if cursor is None:
            break
        pushed += 1  # one newer and one older than everything, between every two pages
        push(a, clock, a.visit(h["h1"], at(27, 11, pushed)), a.visit(h["h2"], at(23, 6, pushed)))
    seen_ids = [v["id"] for v in seen]
    assert len(seen_ids) == len(set(seen_ids))
    assert set(first) <= set(seen_ids)
    keys = [(v["visited_at_effective"], v["id"]) for v in seen]
    assert keys == sorted(keys, reverse=True)


def test_a_forged_or_foreign_cursor_is_refused(any_county, clock):
    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    push(a, clock, *(a.visit(h["h1"], at(23, 8 + i)) for i in range(3)))
    sup, east = c.device("sup_east"), c.regions["east"]
    cursor = listing(sup, east, limit=1).get_json()["cursor"]
    body, mac = cursor.split(".")
    for bad in (body + "." + mac[::-1], "nonsense", body[:-2] + "AA." + mac):
        response = listing(sup, east, limit=1, cursor=bad)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_cursor"
    other_filter = listing(sup, east, limit=1, cursor=cursor, household_id=h["h1"])
    assert other_filter.status_code == 400
    other_reader = listing(c.device("admin"), east, limit=1, cursor=cursor)
    assert other_reader.get_json()["error"]["code"] == "invalid_cursor"


def test_a_township_supervisor_sees_no_other_townships_visits(any_county, clock):
    c, h = any_county, any_county.households
    cc = c.device("cadre_c")
    (ridge,) = push(cc, clock, cc.visit(h["h5"], at(24)))
    sup = c.device("sup_east")
    assert listing(sup, c.regions["west"]).status_code == 403
    assert listing(sup, c.regions["county"]).status_code == 403
    assert ridge not in ids(listing(sup, c.regions["east"]))
    detail = sup.client.get(f"/api/v1/reports/visits/{ridge}", headers=sup.headers)
    assert detail.status_code == 404
    page = sup.client.get(f"/api/v1/reports/households/{h['h5']}", headers=sup.headers)
    assert page.status_code == 404


def test_a_cadre_reads_the_visits_of_their_own_scope(any_county, clock):
    c, h = any_county, any_county.households
    b, cc = c.device("cadre_b"), c.device("cadre_c")
    (upper,) = push(b, clock, b.visit(h["h1"], at(23)))
    (lower,) = push(cc, clock, cc.visit(h["h4"], at(24)))
    (ridge,) = push(cc, clock, cc.visit(h["h5"], at(25)))
    a = c.device("cadre_a")
    assert ids(listing(a, c.regions["upper"])) == [upper]  # a colleague's visit of the village
    assert listing(a, c.regions["lower"]).status_code == 403
    # cadre_c: 下村 and, by 包保, h5 of 岭村; the county answers with those alone
    assert ids(listing(cc, c.regions["county"])) == [ridge, lower]


def test_personal_numbers_in_answers_are_masked_but_for_admins(any_county, clock):
    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    answers = {"phone": "13905631201", "id_number": "341823194110201790"}
    (visit,) = push(a, clock, checked(a, h["h1"], at(23), **answers))
    for name, phone, id_number in (
        ("sup_east", "139****1201", "341823********1790"),
        ("admin", "13905631201", "341823194110201790"),
    ):
        device = c.device(name)
        (item,) = listing(device, c.regions["east"]).get_json()["visits"]
        assert item["answers"] == {"phone": phone, "id_number": id_number}
        shown = device.client.get(f"/api/v1/reports/visits/{visit}", headers=device.headers)
        assert shown.get_json()["answers"]["phone"] == phone


def test_a_visit_shows_its_answers_under_their_labels_and_its_correction(any_county, clock):
    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    (original,) = push(a, clock, checked(a, h["h1"], at(23), water="no"))
    fix = checked(a, h["h1"], at(23), water="yes", remark="=1+1")
    fix["data"]["corrects"] = original
    clock.at += timedelta(minutes=5)  # the correction arrives later
    (correction,) = push(a, clock, fix)
    sup = c.device("sup_east")
    body = sup.client.get(f"/api/v1/reports/visits/{original}", headers=sup.headers).get_json()
    (water,) = body["answer_list"]
    assert water["label"]["zh-CN"] == "饮水是否安全" and water["choices"] == [
        {"zh-CN": "不安全", "en": "Unsafe"}
    ]
    assert [x["id"] for x in body["corrected_by"]] == [correction]
    assert body["corrected_by"][0]["visitor_name"] == "甲干部"
    page = sup.client.get(f"/api/v1/reports/households/{h['h1']}", headers=sup.headers)
    household = page.get_json()
    assert [v["id"] for v in household["visits"]] == [correction, original]
    assert household["people"][0]["name"] == "汪德明"
    assert household["people"][0]["id_number"] == "341823********1790"


def submissions(device: Device, region: str, form_id: str = "household_check") -> Any:
    return device.client.get(
        "/api/v1/reports/submissions.xlsx",
        query_string={"form_id": form_id, "period": WEEK, "region_id": region},
        headers=device.headers,
    )


def test_the_submissions_workbook_has_a_row_per_visit_and_a_column_per_question(any_county, clock):
    c, h = any_county, any_county.households
    with c.app.app_context():
        publish_next_version({**CHECK_FORM, "versions": [SECOND_VERSION]}, actor=None)
    a = c.device("cadre_a")
    first = checked(a, h["h1"], at(23), water="no", remark='=HYPERLINK("x")', phone="13905631201")
    second = checked(a, h["h2"], at(24), water="yes", income=1200, remark="#N/A")
    second["data"]["form_version"] = 2
    push(a, clock, first, second, a.visit(h["h3"], at(25)))
    response = submissions(c.device("sup_east"), c.regions["east"])
    assert response.status_code == 200, response.get_data()[:300]
    book = load_workbook(io.BytesIO(response.data))
    rows = list(book["走访记录"].iter_rows(values_only=True))
    header = rows[0]
    assert {"联系电话", "身份证号", "饮水是否安全", "备注", "月收入"} <= set(header)
    assert [r[0] for r in rows[1:]] == [first["id"], second["id"]]
    by_id = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert by_id[first["id"]]["饮水是否安全"] == "不安全"
    assert by_id[first["id"]]["联系电话"] == "139****1201"
    assert by_id[first["id"]]["备注"] == '\'=HYPERLINK("x")'
    assert by_id[second["id"]]["月收入"] == 1200
    assert by_id[second["id"]]["备注"] == "#N/A"
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type not in ("f", "e") for cell in row)  # no formula, no error


def test_a_cadre_may_not_download_the_submissions(any_county, clock):
    c = any_county
    response = submissions(c.device("cadre_a"), c.regions["upper"])
    assert response.status_code == 403


def test_a_list_answer_goes_to_the_repeats_sheet_keyed_by_visit():
    from server.reports.visits import _repeat_rows

    item = {"id": "v1", "answers": {"children": [{"name": "小明", "age": 7}, {"name": "=2"}]}}
    rows = list(_repeat_rows(item, {"children": "子女"}))
    assert rows == [
        ["v1", "子女", 1, "name", "小明"],
        ["v1", "子女", 1, "age", 7],
        ["v1", "子女", 2, "name", "=2"],
    ]


def test_a_visit_shows_its_void_and_its_photo_pending_until_the_bytes_arrive(any_county, clock):
    from tests.test_blobs import PHOTO_FORM, SHA, put

    c, h = any_county, any_county.households
    with c.app.app_context():
        publish_next_version(PHOTO_FORM, actor=None)
    a = c.device("cadre_a")
    visit = a.visit(h["h1"], at(23), form_id="house_photo", form_version=1, answers={"photo": SHA})
    push(a, clock, visit)
    sup = c.device("sup_east")

    def shown() -> dict[str, Any]:
        response = sup.client.get(f"/api/v1/reports/visits/{visit['id']}", headers=sup.headers)
        return response.get_json()

    assert shown()["photos"] == [{"sha256": SHA, "stored": False}]
    put(a)
    assert shown()["photos"] == [{"sha256": SHA, "stored": True}]
    push(a, clock, a.op("void", "visit", visit["id"], {"reason": "录错了户"}))
    body = shown()
    assert body["voided"] is True
    assert body["void"]["by_name"] == "甲干部" and body["void"]["reason"] == "录错了户"
    assert body["void"]["at"].startswith("2026-11-27T12:00")


def test_a_household_page_shows_its_problems_and_help_measures(any_county, clock):
    from tests.county import uid

    c, h = any_county, any_county.households
    a = c.device("cadre_a")
    problem = {"household_id": h["h1"], "category": "housing", "description": "屋顶漏雨"}
    measure = {"household_id": h["h1"], "category": "medical", "description": "慢病签约"}
    response = a.push(
        [a.op("create", "problem", uid(), problem), a.op("create", "measure", uid(), measure)],
        device_time=clock().isoformat(),
    )
    assert {r["status"] for r in response.get_json()["results"]} == {"applied"}, response.get_json()
    sup = c.device("sup_east")
    body = sup.client.get(f"/api/v1/reports/households/{h['h1']}", headers=sup.headers).get_json()
    assert [p["description"] for p in body["problems"]] == ["屋顶漏雨"]
    assert [m["description"] for m in body["measures"]] == ["慢病签约"]
    assert body["head_name"] == "户主1" and body["phone"] == "139****1201"
