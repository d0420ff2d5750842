"""Readable conflicts (issue 14 item 6, docs/admin.md "Conflicts"): the list names the
household and person, labels the field, says who wrote each value from which device and when;
values whole for admins only; the choice is audited. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.service import store
from server.storage.models import AuditEntry
from tests.county import uid

PHONE_A, PHONE_B = "13900000001", "13900000002"


@pytest.fixture
def phone_conflict(any_county):
    """cadre_a (phone 甲机) and cadre_b (phone 乙机) change h1's phone concurrently."""
    a = any_county.device("cadre_a", label="甲机")
    b = any_county.device("cadre_b", label="乙机")
    hid = any_county.households["h1"]
    base = next(r for r in a.pull_all() if r["id"] == hid)["version"]
    a.push([a.op("update", "household", hid, {"phone": PHONE_A}, base)])
    result = b.push([b.op("update", "household", hid, {"phone": PHONE_B}, base)])
    assert result.get_json()["results"][0]["status"] == "conflict"
    return any_county


def listed(device) -> list[dict]:
    response = device.client.get("/api/v1/conflicts", headers=device.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["conflicts"]


def test_a_conflict_names_the_household_the_field_and_who_wrote_each_value_when(phone_conflict):
    (conflict,) = listed(phone_conflict.device("sup_east"))
    assert conflict["household_name"] == "户主1"
    assert conflict["field"] == "phone" and conflict["field_label"] == "联系电话"
    sides = [conflict["kept"], *conflict["lost"]]
    assert {(s["user_name"], s["device_label"]) for s in sides} == {
        ("甲干部", "甲机"),
        ("乙干部", "乙机"),
    }
    for s in sides:  # the hlc as a time in Asia/Shanghai
        at = datetime.fromisoformat(s["at"])
        assert at.utcoffset() == timedelta(hours=8)
        assert at.astimezone(UTC).strftime("%Y%m%d%H%M%S") == _hlc_utc(s["hlc"])


def _hlc_utc(hlc: str) -> str:
    return datetime.fromtimestamp(int(hlc[:15]) / 1000, UTC).strftime("%Y%m%d%H%M%S")


def test_a_supervisor_sees_the_phone_numbers_masked_and_an_admin_whole(phone_conflict):
    def values(device):
        (conflict,) = listed(device)
        return {conflict["kept"]["value"], *(s["value"] for s in conflict["lost"])}

    assert values(phone_conflict.device("sup_east")) == {"139****0001", "139****0002"}
    assert values(phone_conflict.device("admin")) == {PHONE_A, PHONE_B}


def test_a_person_conflict_names_the_person(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    person = uid()
    data = {"household_id": any_county.households["h2"], "name": "胡秀英", "relation": "户主"}
    version = a.push([a.op("create", "person", person, data)]).get_json()["results"][0]["version"]
    a.push([a.op("update", "person", person, {"notes": "腿脚不便"}, version)])
    b.push([b.op("update", "person", person, {"notes": "独居"}, version)])
    (conflict,) = listed(any_county.device("sup_east"))
    assert (conflict["person_name"], conflict["household_name"]) == ("胡秀英", "户主2")
    assert conflict["field_label"] == "备注"


def test_the_audit_row_of_a_resolution_holds_the_choice_masked(phone_conflict):
    sup = phone_conflict.device("sup_east")
    (conflict,) = listed(sup)
    answer = sup.client.post(
        f"/api/v1/conflicts/{conflict['id']}/resolve", json={"choice": 1}, headers=sup.headers
    )
    assert answer.status_code == 200, answer.get_json()
    with phone_conflict.app.app_context(), store().engine.connect() as conn:
        details = conn.execute(
            select(AuditEntry.details).where(AuditEntry.action == "conflict_resolved")
        ).scalar_one()
    audited = json.loads(details)
    assert audited["choice"] == 1 and audited["value"] == conflict["lost"][0]["value"]
    assert audited["record_id"] == phone_conflict.households["h1"]
    assert PHONE_A not in details and PHONE_B not in details
