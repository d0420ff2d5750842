"""Sync is no side door (CONTRACT §3): an op may do only what its user may do through the rest
of the API, by the one check both paths call (sync/permissions.py), and every change a phone
makes is in the audit log. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import insert, text

from server.service import store
from server.storage.models import AuditEntry
from tests.county import uid


def push_one(device, op):
    response = device.push([op])
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"][0]


def record(county, type_: str, id_: str) -> dict:
    admin = county.device("admin")
    found = [r for r in admin.pull_all() if r["type"] == type_ and r["id"] == id_]
    assert found, f"no {type_} {id_}"
    return found[-1]


def new_problem(county, device, **data) -> str:
    problem_id = uid()
    body = {
        "household_id": county.households["h1"],
        "category": "medical",
        "description": "缺轮椅",
        "assignee_id": device.user["id"],
        **data,
    }
    assert push_one(device, device.op("create", "problem", problem_id, body))["status"] == "applied"
    return problem_id


def version_of(county, type_: str, id_: str) -> int:
    return int(record(county, type_, id_)["version"])


def assert_refused(result, code: str, field: str) -> None:
    assert result["status"] == "rejected", result
    assert result["error"]["code"] == code, result
    assert f"data.{field}" in result["error"]["details"]["fields"], result


# --- problem status ------------------------------------------------------------------------


def test_a_cadre_cannot_verify_a_problem_by_sync(any_county):
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre)
    base = version_of(any_county, "problem", problem)
    result = push_one(cadre, cadre.op("update", "problem", problem, {"status": "verified"}, base))
    assert_refused(result, "forbidden", "status")
    assert record(any_county, "problem", problem)["data"]["status"] == "open"


def test_a_cadre_cannot_verify_a_problem_on_the_web_either(any_county):
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre, status="resolved")
    response = cadre.client.post(
        f"/api/v1/problems/{problem}/status", json={"status": "verified"}, headers=cadre.headers
    )
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_cadre_cannot_create_a_problem_already_verified(any_county):
    cadre = any_county.device("cadre_a")
    body = {
        "household_id": any_county.households["h1"],
        "category": "medical",
        "description": "缺轮椅",
        "status": "verified",
    }
    result = push_one(cadre, cadre.op("create", "problem", uid(), body))
    assert_refused(result, "forbidden", "status")


def test_a_cadre_cannot_reopen_a_resolved_problem_by_sync(any_county):
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre)
    base = version_of(any_county, "problem", problem)
    done = cadre.op("update", "problem", problem, {"status": "resolved"}, base)
    assert push_one(cadre, done)["status"] == "applied"
    base = version_of(any_county, "problem", problem)
    for status in ("open", "in_progress"):
        result = push_one(cadre, cadre.op("update", "problem", problem, {"status": status}, base))
        assert_refused(result, "forbidden", "status")
    assert record(any_county, "problem", problem)["data"]["status"] == "resolved"


def test_a_cadre_cannot_reopen_by_claiming_to_have_seen_nothing(any_county):
    """base_version is the client's word: writing open "concurrently" would win by the
    least-closed rule, so a cadre never writes open to an existing problem."""
    cadre, supervisor = any_county.device("cadre_a"), any_county.device("sup_east")
    problem = new_problem(any_county, cadre)
    base = version_of(any_county, "problem", problem)
    resolved = supervisor.op("update", "problem", problem, {"status": "resolved"}, base)
    assert push_one(supervisor, resolved)["status"] == "applied"
    result = push_one(cadre, cadre.op("update", "problem", problem, {"status": "open"}, base))
    assert_refused(result, "forbidden", "status")
    assert record(any_county, "problem", problem)["data"]["status"] == "resolved"


def test_an_offline_cadres_forward_step_is_merged_not_refused(any_county):
    """The cadre saw the problem open and started on it while a supervisor, unknown to the
    phone, marked it resolved: concurrent, so the less-closed status stays, with a conflict."""
    cadre, supervisor = any_county.device("cadre_a"), any_county.device("sup_east")
    problem = new_problem(any_county, cadre)
    base = version_of(any_county, "problem", problem)
    resolved = supervisor.op("update", "problem", problem, {"status": "resolved"}, base)
    assert push_one(supervisor, resolved)["status"] == "applied"
    started = cadre.op("update", "problem", problem, {"status": "in_progress"}, base)
    assert push_one(cadre, started)["status"] == "conflict"
    assert record(any_county, "problem", problem)["data"]["status"] == "in_progress"


def test_a_cadre_moves_a_problem_forward_and_a_supervisor_verifies_it(any_county):
    cadre, supervisor = any_county.device("cadre_a"), any_county.device("sup_east")
    problem = new_problem(any_county, cadre)
    for device, status in ((cadre, "in_progress"), (cadre, "resolved"), (supervisor, "verified")):
        base = version_of(any_county, "problem", problem)
        result = push_one(device, device.op("update", "problem", problem, {"status": status}, base))
        assert result["status"] == "applied", result
    base = version_of(any_county, "problem", problem)
    back = supervisor.op("update", "problem", problem, {"status": "in_progress"}, base)
    assert push_one(supervisor, back)["status"] == "applied"


# --- deadlines, owners and responsible people ----------------------------------------------


@pytest.mark.parametrize("change", [{"due_date": "2027-01-31"}, {"assignee_id": None}])
def test_a_cadre_cannot_change_a_problems_deadline_or_owner_by_sync(any_county, change):
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre, due_date="2026-12-31")
    base = version_of(any_county, "problem", problem)
    result = push_one(cadre, cadre.op("update", "problem", problem, change, base))
    assert_refused(result, "forbidden", next(iter(change)))


def test_an_assignee_must_exist(any_county):
    supervisor = any_county.device("sup_east")
    problem = new_problem(any_county, supervisor)
    base = version_of(any_county, "problem", problem)
    change = {"assignee_id": "no-such-user"}
    result = push_one(supervisor, supervisor.op("update", "problem", problem, change, base))
    assert_refused(result, "validation_failed", "assignee_id")


def test_an_assignee_must_have_the_household_in_scope(any_county):
    """cadre_c works in 下村; the problem is in 上村."""
    supervisor = any_county.device("sup_east")
    problem = new_problem(any_county, supervisor)
    base = version_of(any_county, "problem", problem)
    change = {"assignee_id": any_county.users["cadre_c"]}
    result = push_one(supervisor, supervisor.op("update", "problem", problem, change, base))
    assert_refused(result, "validation_failed", "assignee_id")
    change = {"assignee_id": any_county.users["cadre_b"]}
    result = push_one(supervisor, supervisor.op("update", "problem", problem, change, base))
    assert result["status"] == "applied", result


def test_a_new_problem_cannot_name_an_unknown_assignee(any_county):
    cadre = any_county.device("cadre_a")
    body = {
        "household_id": any_county.households["h1"],
        "category": "medical",
        "description": "缺轮椅",
        "assignee_id": "no-such-user",
    }
    result = push_one(cadre, cadre.op("create", "problem", uid(), body))
    assert_refused(result, "validation_failed", "assignee_id")


def test_the_web_refuses_an_assignee_outside_the_household_the_same_way(any_county):
    cadre, supervisor = any_county.device("cadre_a"), any_county.device("sup_east")
    problem = new_problem(any_county, cadre)
    response = supervisor.client.post(
        f"/api/v1/problems/{problem}",
        json={"assignee_id": any_county.users["cadre_c"]},
        headers=supervisor.headers,
    )
    assert response.status_code == 422, response.get_json()
    assert "assignee_id" in response.get_json()["error"]["details"]["fields"]


def test_a_measures_responsible_person_must_have_the_household_in_scope(any_county):
    cadre = any_county.device("cadre_a")
    body = {
        "household_id": any_county.households["h1"],
        "category": "medical",
        "description": "办理慢病卡",
        "responsible_id": any_county.users["cadre_c"],
    }
    result = push_one(cadre, cadre.op("create", "measure", uid(), body))
    assert_refused(result, "validation_failed", "responsible_id")
    body["responsible_id"] = cadre.user["id"]
    assert push_one(cadre, cadre.op("create", "measure", uid(), body))["status"] == "applied"


# --- households ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change", [{"status": "archived"}, {"category": "一般户"}, {"visit_policy": "none"}]
)
def test_only_an_admin_reclassifies_a_household_by_sync(any_county, change):
    household = any_county.households["h1"]
    base = version_of(any_county, "household", household)
    for username in ("cadre_a", "sup_east"):
        device = any_county.device(username)
        result = push_one(device, device.op("update", "household", household, change, base))
        assert_refused(result, "forbidden", next(iter(change)))
    admin = any_county.device("admin")
    assert push_one(admin, admin.op("update", "household", household, change, base))["status"] in (
        "applied",
        "conflict",
    )


def test_a_cadre_still_edits_a_households_address_and_phone(any_county):
    cadre = any_county.device("cadre_a")
    household = any_county.households["h1"]
    base = version_of(any_county, "household", household)
    change = {"address": "3组12号", "phone": "13905631299", "notes": "门牌已更新"}
    result = push_one(cadre, cadre.op("update", "household", household, change, base))
    assert result["status"] == "applied", result


# --- the audit log ---------------------------------------------------------------------------


def audit_rows(app, target_id: str) -> list:
    """The audit trail of one record (the view of migration 0013), oldest first."""
    with app.app_context(), store().engine.connect() as conn:
        return conn.execute(
            text("SELECT * FROM audit_trail WHERE target_id = :id ORDER BY at, action"),
            {"id": target_id},
        ).all()


def test_every_change_a_phone_makes_is_in_the_audit_log(any_county):
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre)
    base = version_of(any_county, "problem", problem)
    started = cadre.op("update", "problem", problem, {"status": "in_progress"}, base)
    refused = cadre.op("update", "problem", problem, {"status": "verified"}, base)
    results = cadre.push([started, refused]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    visit = cadre.visit(any_county.households["h1"])
    assert push_one(cadre, visit)["status"] == "applied"
    rows = audit_rows(any_county.app, problem)
    assert [r.action for r in rows] == ["sync_create", "sync_update"]
    assert {r.user_id for r in rows} == {cadre.user["id"]}
    assert {r.device_id for r in rows} == {cadre.device_id}
    update = json.loads(rows[1].details)
    assert update["op_id"] == started["op_id"] and update["fields"] == ["status"]
    (visit_row,) = audit_rows(any_county.app, visit["id"])
    assert visit_row.action == "sync_create" and visit_row.target_type == "visit"


def test_the_audit_trail_holds_each_change_once_whichever_way_it_came(any_county):
    """A phone's change is read from its op, a web edit from the page's own entry (its server
    edit op is not repeated), and an entry an earlier release wrote for a synced change —
    whose op is in the log too — is left out."""
    cadre = any_county.device("cadre_a")
    problem = new_problem(any_county, cadre)
    sup = any_county.device("sup_east")
    answer = sup.client.post(
        f"/api/v1/problems/{problem}/status",
        json={"status": "in_progress", "note": "已联系民政办"},
        headers=sup.headers,
    )
    assert answer.status_code == 200, answer.get_json()
    with any_county.app.app_context(), store().engine.begin() as conn:
        conn.execute(
            insert(AuditEntry).values(
                at=datetime(2026, 11, 1),
                user_id=cadre.user["id"],
                device_id=cadre.device_id,
                action="sync_create",
                target_type="problem",
                target_id=problem,
                details="{}",
            )
        )
    rows = audit_rows(any_county.app, problem)
    assert [(r.action, r.device_id) for r in rows] == [
        ("sync_create", cadre.device_id),
        ("problem_status_changed", sup.device_id),
    ]
    assert json.loads(rows[0].details)["status"] == "applied"
