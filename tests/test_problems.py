"""The problem list (问题清单) and its workflow: scope, filters, status changes as synced edits,
due dates and assignees, history, and the escalation of overdue problems (docs/reports.md)."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import event

from server.reports import coverage as reports
from server.reports import problems
from server.service import store
from tests.county import uid
from tests.test_reports import push, set_clock


@pytest.fixture
def county(any_county):
    set_clock(any_county.app, "2026-11-16T08:00:00+08:00")
    return any_county


def create_problem(county, device, household: str, **data) -> str:
    problem_id = uid()
    body = {
        "household_id": county.households[household],
        "category": "medical",
        "description": "老人腿脚不便，需要轮椅",
        "status": "open",
        "assignee_id": device.user["id"],
        "due_date": "2026-11-20",
        **data,
    }
    push(county.app, device, "2026-11-17T10:00:00+08:00", [
        device.op("create", "problem", problem_id, body)
    ])  # fmt: skip
    return problem_id


def get(device, path: str, **query):
    return device.client.get(path, query_string=query, headers=device.headers)


def post(device, path: str, body: dict):
    return device.client.post(path, json=body, headers=device.headers)


def set_status(device, problem_id: str, status: str, note: str | None = None):
    return post(device, f"/api/v1/problems/{problem_id}/status", {"status": status, "note": note})


def listed(device, **query) -> list[dict]:
    response = get(device, "/api/v1/problems", **query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["problems"]


# --- the list -----------------------------------------------------------------------------------


def test_the_problem_list_holds_only_problems_in_the_callers_scope(county):
    a, c = county.device("cadre_a"), county.device("cadre_c")
    upper = create_problem(county, a, "h1")
    lower = create_problem(county, c, "h4")
    ridge = create_problem(county, c, "h5")
    assert {p["id"] for p in listed(county.device("sup_east"))} == {upper, lower}
    assert {p["id"] for p in listed(c)} == {lower, ridge}
    assert {p["id"] for p in listed(county.device("admin"))} == {upper, lower, ridge}


def test_the_problem_list_filters_by_region_category_status_assignee_and_overdue(county):
    a, c = county.device("cadre_a"), county.device("cadre_c")
    late = create_problem(county, a, "h1", due_date="2026-11-01")
    housing = create_problem(county, a, "h2", category="housing", due_date="2099-01-01")
    lower = create_problem(county, c, "h4", status="in_progress", due_date=None)
    admin = county.device("admin")
    ids = lambda **query: {p["id"] for p in listed(admin, **query)}  # noqa: E731
    assert ids(region_id=county.regions["upper"]) == {late, housing}
    assert ids(category="housing") == {housing}
    assert ids(status="in_progress") == {lower}
    assert ids(status="open,in_progress") == {late, housing, lower}
    assert ids(assignee_id=county.users["cadre_c"]) == {lower}
    assert ids(overdue="true") == {late}
    assert get(admin, "/api/v1/problems", status="closed").status_code == 422


def test_the_problem_list_shows_names_and_places_but_no_id_numbers(county):
    a = county.device("cadre_a")
    person = next(r for r in a.pull_all() if r["type"] == "person")
    problem_id = create_problem(county, a, "h1", person_id=person["id"])
    response = get(county.device("admin"), "/api/v1/problems")
    assert "341823194110201790" not in response.get_data(as_text=True)
    item = response.get_json()["problems"][0]
    assert item["id"] == problem_id
    assert item["person"] == {"id": person["id"], "name": "汪德明"}
    assert item["household"]["head_name"] == "户主1"
    assert (item["village"]["name"], item["township"]["name"]) == ("上村", "东河镇")
    assert item["assignee"] == {"id": county.users["cadre_a"], "name": "甲干部"}


# --- status changes -----------------------------------------------------------------------------


def test_a_cadre_moves_a_problem_forward_and_other_phones_pull_the_change(county):
    a, b = county.device("cadre_a"), county.device("cadre_b")
    problem_id = create_problem(county, a, "h1")
    b.pull_all()
    response = set_status(a, problem_id, "in_progress", "已联系民政办")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "in_progress"
    pulled = [r for r in b.pull_all() if r["id"] == problem_id]
    assert [(r["data"]["status"], r["data"]["status_note"]) for r in pulled] == [
        ("in_progress", "已联系民政办")
    ]


def test_only_supervisors_and_admins_verify_a_problem(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", status="resolved")
    denied = set_status(a, problem_id, "verified")
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "forbidden"
    assert set_status(county.device("sup_east"), problem_id, "verified").status_code == 200


def test_only_supervisors_move_a_problem_back(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", status="resolved")
    assert set_status(a, problem_id, "in_progress").status_code == 403
    response = set_status(county.device("sup_east"), problem_id, "open", "复核未通过")
    assert response.status_code == 200
    assert response.get_json()["status"] == "open"


def test_setting_the_status_a_problem_already_has_is_a_conflict(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    response = set_status(a, problem_id, "open")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"


def test_a_problem_outside_the_callers_scope_is_not_found(county):
    ridge = create_problem(county, county.device("cadre_c"), "h5")
    sup = county.device("sup_east")
    assert set_status(sup, ridge, "in_progress").status_code == 404
    assert get(sup, f"/api/v1/problems/{ridge}/history").status_code == 404
    assert get(sup, f"/api/v1/problems/{ridge}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed"},
        {"note": "x"},
        {"status": "open", "extra": 1},
        {"status": "open", "note": 5},
    ],
)
def test_a_bad_status_change_is_a_validation_error(county, body):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    response = post(a, f"/api/v1/problems/{problem_id}/status", body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_failed"


# --- due dates and assignees --------------------------------------------------------------------


def test_a_supervisor_sets_the_due_date_and_assignee(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    sup = county.device("sup_east")
    body = {"due_date": "2026-12-05", "assignee_id": county.users["cadre_b"], "note": "改由乙负责"}
    response = post(sup, f"/api/v1/problems/{problem_id}", body)
    assert response.status_code == 200, response.get_json()
    item = response.get_json()
    assert (item["due_date"], item["assignee"]["name"], item["status_note"]) == (
        "2026-12-05",
        "乙干部",
        "改由乙负责",
    )


def test_a_cadre_may_not_set_due_dates_or_assignees(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    response = post(a, f"/api/v1/problems/{problem_id}", {"due_date": "2026-12-05"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"assignee_id": "cadre_c"}, "assignee_id"),  # 丙 does not cover 上村
        ({"assignee_id": "nobody"}, "assignee_id"),
        ({"due_date": "2026-13-01"}, "due_date"),
        ({}, "_body"),
    ],
)
def test_a_bad_due_date_or_assignee_is_a_validation_error(county, body, field):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    if "assignee_id" in body:
        body = {"assignee_id": county.users.get(body["assignee_id"], body["assignee_id"])}
    response = post(county.device("sup_east"), f"/api/v1/problems/{problem_id}", body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["details"]["fields"]


# --- history ------------------------------------------------------------------------------------


def test_the_history_tells_who_from_which_device_when_old_and_new_and_the_note(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1")
    set_clock(county.app, "2026-11-18T09:00:00+08:00")
    set_status(a, problem_id, "in_progress", "已联系民政办")
    sup = county.device("sup_east", label="督导笔记本")
    set_clock(county.app, "2026-11-19T15:30:00+08:00")
    set_status(a, problem_id, "resolved", "轮椅已送到")
    set_status(sup, problem_id, "verified", "电话回访确认")
    response = get(sup, f"/api/v1/problems/{problem_id}/history")
    assert response.status_code == 200
    history = response.get_json()["history"]
    assert [h["action"] for h in history] == ["create", "update", "update", "update"]
    steps = [(h["changes"][0]["old"], h["changes"][0]["new"], h["note"]) for h in history[1:]]
    assert steps == [
        ("open", "in_progress", "已联系民政办"),
        ("in_progress", "resolved", "轮椅已送到"),
        ("resolved", "verified", "电话回访确认"),
    ]
    first, last = history[1], history[-1]
    assert first["user"]["name"] == "甲干部"
    assert first["device"] == {"id": a.device_id, "label": "test phone"}
    assert first["at"] == "2026-11-18T09:00:00+08:00"
    assert last["device"] == {"id": sup.device_id, "label": "督导笔记本"}
    assert history[0]["user"]["name"] == "甲干部" and history[0]["device"]["id"] == a.device_id


def test_concurrent_status_edits_keep_the_least_closed_and_list_the_problem_once(county):
    a, b = county.device("cadre_a"), county.device("cadre_b")
    problem_id = create_problem(county, a, "h1")
    version = next(r["version"] for r in b.pull_all() if r["id"] == problem_id)
    push(county.app, a, "2026-11-18T10:00:00+08:00", [
        a.op("update", "problem", problem_id, {"status": "resolved"}, base_version=version)
    ])  # fmt: skip
    push(county.app, b, "2026-11-18T11:00:00+08:00", [
        b.op("update", "problem", problem_id, {"status": "in_progress"}, base_version=version)
    ])  # fmt: skip
    items = listed(county.device("sup_east"))
    assert [(p["id"], p["status"], p["open_conflicts"]) for p in items] == [
        (problem_id, "in_progress", 1)
    ]
    history = get(a, f"/api/v1/problems/{problem_id}/history").get_json()["history"]
    writes = [
        (h["user"]["name"], h["changes"][0]["new"], h["changes"][0]["kept"]) for h in history[1:]
    ]
    assert writes == [("甲干部", "resolved", True), ("乙干部", "in_progress", True)]
    assert history[2]["changes"][0]["old"] == "resolved"


# --- escalation ---------------------------------------------------------------------------------


def escalate(county, day: date) -> int:
    with county.app.app_context():
        return len(problems.escalate_overdue(day))


def problem(county, problem_id: str) -> dict:
    with county.app.app_context():
        return problems.problem_detail(reports.EVERYTHING, problem_id)


def test_a_problem_past_its_due_date_goes_to_the_township_supervisor_once(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", due_date="2026-11-20")
    set_clock(county.app, "2026-11-25T06:00:00+08:00")
    assert escalate(county, date(2026, 11, 25)) == 1
    item = problem(county, problem_id)
    assert item["assignee"]["id"] == county.users["sup_east"]
    assert item["escalated"]["due_date"] == "2026-11-20"
    assert item["escalated"]["from_assignee_id"] == county.users["cadre_a"]
    assert "2026-11-20" in item["status_note"]
    assert escalate(county, date(2026, 11, 25)) == 0
    assert escalate(county, date(2026, 11, 26)) == 0


def test_a_problem_due_today_resolved_or_without_a_supervisor_is_not_escalated(county):
    a, c = county.device("cadre_a"), county.device("cadre_c")
    create_problem(county, a, "h1", due_date="2026-11-25")
    create_problem(county, a, "h2", due_date="2026-11-01", status="resolved")
    create_problem(county, c, "h5", due_date="2026-11-01")  # 西岭镇 has no supervisor
    assert escalate(county, date(2026, 11, 25)) == 0


def test_a_problem_given_a_new_due_date_is_escalated_again_when_that_one_passes(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", due_date="2026-11-20")
    assert escalate(county, date(2026, 11, 21)) == 1
    sup = county.device("sup_east")
    body = {"due_date": "2026-11-28", "assignee_id": county.users["cadre_a"]}
    assert post(sup, f"/api/v1/problems/{problem_id}", body).status_code == 200
    assert escalate(county, date(2026, 11, 25)) == 0
    assert escalate(county, date(2026, 11, 29)) == 1
    assert problem(county, problem_id)["escalated"]["due_date"] == "2026-11-28"


def test_the_escalated_problem_reaches_the_supervisors_phone_with_its_note(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", due_date="2026-11-20")
    sup = county.device("sup_east")
    sup.pull_all()
    escalate(county, date(2026, 11, 25))
    pulled = [r for r in sup.pull_all() if r["id"] == problem_id]
    assert len(pulled) == 1
    assert pulled[0]["data"]["assignee_id"] == county.users["sup_east"]
    assert "已升级" in pulled[0]["data"]["status_note"]


def test_the_escalation_shows_in_the_history_as_a_system_change(county):
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", due_date="2026-11-20")
    escalate(county, date(2026, 11, 25))
    history = get(county.device("admin"), f"/api/v1/problems/{problem_id}/history").get_json()
    last = history["history"][-1]
    assert last["user"]["id"] == reports.SYSTEM_USER
    assert last["changes"] == [
        {
            "field": "assignee_id",
            "old": county.users["cadre_a"],
            "new": county.users["sup_east"],
            "kept": True,
        }
    ]
    assert json.dumps(last, ensure_ascii=False).count("已升级") == 1


# --- lookups ------------------------------------------------------------------------------------


def plans(conn, statements: list[tuple[str, object]]) -> list[str]:
    """The query plan of each statement, as one string. On PostgreSQL a sequential scan is made
    the last resort, so that a small test table shows whether an index *can* serve the query."""
    out = []
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()
    if conn.dialect.name == "postgresql":
        cursor.execute("SET enable_seqscan = off")
        for statement, params in statements:
            cursor.execute("EXPLAIN " + statement, params)
            out.append(" ".join(row[0] for row in cursor.fetchall()))
        cursor.execute("RESET enable_seqscan")
    else:
        for statement, params in statements:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            out.append(" ".join(row[-1] for row in cursor.fetchall()))
    cursor.close()
    return out


def test_a_problems_history_and_escalations_are_read_by_index_not_from_the_whole_log(county):
    """The ops log and the audit log grow by a row with every synced visit: the problem pages
    and the escalation job must not read either from end to end (migration 0012)."""
    a = county.device("cadre_a")
    problem_id = create_problem(county, a, "h1", due_date="2026-11-20")
    set_status(a, problem_id, "in_progress", "已联系民政办")
    escalate(county, date(2026, 11, 25))
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    with county.app.app_context():
        engine = store().engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            sup = county.device("sup_east")
            assert listed(sup)[0]["escalated"]["due_date"] == "2026-11-20"
            assert get(sup, f"/api/v1/problems/{problem_id}/history").status_code == 200
            assert escalate(county, date(2026, 11, 26)) == 0
        finally:
            event.remove(engine, "before_cursor_execute", record)
        logs = [(s, p) for s, p in seen if re.search(r"\b(ops|audit_log)\b", s)]
        assert len(logs) >= 3  # the history's ops, its relayed changes, the escalations
        with engine.connect() as conn:
            for (statement, _), plan in zip(logs, plans(conn, logs), strict=True):
                assert not re.search(r"(SCAN|Seq Scan on) (ops|audit_log)\b", plan), (
                    statement,
                    plan,
                )
