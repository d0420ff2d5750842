"""居民身份证号 (GB 11643) are checked wherever they are written — sync push, admin API,
roster import — by one rule in sync/records.py (issue 13 item 10); values stored before the
rule existed still read, export and let other fields change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from server.reports.exports import sqlite_snapshot
from server.service import create_server_records
from server.storage.models import Person
from sync.records import id_number_check_digit, id_number_problem
from tests.county import uid

VALID_X = "34182319700101106X"


def numbered(first17: str) -> str:
    return first17 + id_number_check_digit(first17)


def born(day: date) -> str:
    return numbered(f"341823{day:%Y%m%d}017")


def person_op(device, household: str, **data):
    return device.op(
        "create", "person", uid(), {"household_id": household, "name": "新成员", **data}
    )


def outcome(device, op) -> dict:
    response = device.push([op])
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"][0]


def stored_id_number(app, person_id: str) -> str | None:
    with app.app_context():
        from server.storage.db import db

        with db.engine.connect() as conn:
            data = conn.execute(select(Person.data).where(Person.id == person_id)).scalar()
    return json.loads(data)["id_number"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("341823199", "id_length"),
        ("341823411020179", "id_length"),  # the old 15-digit form
        ("341823194110201791", "id_check_digit"),
        ("3418231941102017A9", "id_characters"),
        ("３４１８２３１９４１１０２０１７９０", "id_characters"),  # full-width digits
        (numbered("34182319411320179"), "id_birth_date"),  # month 13
        (numbered("34182318791231017"), "id_birth_date"),  # before 1880
        (born(datetime.now(UTC).date() + timedelta(days=2)), "id_birth_date"),
    ],
)
def test_a_malformed_id_number_is_named_by_its_problem(value, code):
    assert id_number_problem(value) == code


def test_an_id_number_born_today_is_valid():
    assert id_number_problem(born(datetime.now(UTC).date())) is None


@pytest.mark.parametrize(
    "value", ["341823199", "341823411020179", "341823194110201791", numbered("34182319411320179")]
)
def test_a_pushed_person_with_a_malformed_id_number_is_rejected(any_county, value):
    a = any_county.device("cadre_a")
    result = outcome(a, person_op(a, any_county.households["h1"], id_number=value))

    assert result["status"] == "rejected"
    assert result["error"]["code"] == "validation_failed"
    assert list(result["error"]["details"]["fields"]) == ["data.id_number"]


def test_the_old_fifteen_digit_form_is_refused_with_a_message_that_asks_for_18(county):
    a = county.device("cadre_a")
    result = outcome(a, person_op(a, county.households["h1"], id_number="341823411020179"))

    assert "18" in result["error"]["details"]["fields"]["data.id_number"][0]


def test_an_update_to_a_malformed_id_number_is_rejected_and_the_stored_one_kept(any_county):
    a = any_county.device("cadre_a")
    create = person_op(a, any_county.households["h1"], id_number=VALID_X)
    version = outcome(a, create)["version"]
    update = a.op("update", "person", create["id"], {"id_number": "341823199"}, version)

    assert outcome(a, update)["status"] == "rejected"
    assert stored_id_number(any_county.app, create["id"]) == VALID_X


def test_a_pushed_lower_case_x_is_stored_as_upper_case(any_county):
    a = any_county.device("cadre_a")
    create = person_op(a, any_county.households["h1"], id_number=VALID_X.lower())

    assert outcome(a, create)["status"] == "applied"
    assert stored_id_number(any_county.app, create["id"]) == VALID_X


@pytest.mark.parametrize("value", [None, ""])
def test_a_person_without_an_id_number_is_accepted(county, value):
    a = county.device("cadre_a")
    create = person_op(a, county.households["h1"], id_number=value)

    assert outcome(a, create)["status"] == "applied"
    assert stored_id_number(county.app, create["id"]) is None


def test_the_admin_api_refuses_a_short_id_number_and_never_shows_it_whole(county):
    admin = county.device("admin")
    response = admin.client.post(
        f"/api/v1/admin/households/{county.households['h1']}/people",
        json={"name": "汪小花", "relation": "孙女", "id_number": "341823199"},
        headers={**admin.headers, "Accept-Language": "en"},
    )

    assert response.status_code == 422
    assert "18" in response.get_json()["error"]["details"]["fields"]["id_number"][0]
    assert "341823199" not in response.get_data(as_text=True)


@pytest.fixture
def legacy(any_county):
    """A person whose ID number was stored before it was checked: short and malformed."""
    person_id = uid()
    data = {
        "household_id": any_county.households["h1"],
        "name": "胡秀英",
        "gender": "女",
        "birth_year": 1952,
        "relation": "配偶",
        "flags": [],
        "id_number": "341823199",
        "phone": None,
        "notes": None,
    }
    with any_county.app.app_context():
        create_server_records([("person", person_id, data)], actor=None)
    return any_county, person_id


def test_a_stored_malformed_id_number_is_pulled_masked(legacy):
    county, person_id = legacy
    a = county.device("cadre_a")
    person = next(r for r in a.pull_all() if r["id"] == person_id)

    assert person["data"]["id_number"] == "34******9"


def test_an_update_that_leaves_a_malformed_id_number_alone_applies(legacy):
    county, person_id = legacy
    a = county.device("cadre_a")
    person = next(r for r in a.pull_all() if r["id"] == person_id)
    update = a.op("update", "person", person_id, {"notes": "已搬迁"}, person["version"])

    assert outcome(a, update)["status"] == "applied"
    assert stored_id_number(county.app, person_id) == "341823199"


def test_a_stored_malformed_id_number_is_exported_masked(legacy, tmp_path):
    county, _person_id = legacy
    with county.app.app_context():
        sqlite_snapshot(tmp_path / "snapshot.db")

    assert b"341823199" not in (tmp_path / "snapshot.db").read_bytes()
