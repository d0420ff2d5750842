"""ID numbers (身份证号) and phone numbers are personal data (PRODUCT "Must be true" 7): never
whole in a list, an export or a log line. A sync writes people and phones, two cadres make
conflicts on both, and then every list answer, every export and the log are searched for the
whole numbers."""

from __future__ import annotations

import logging
import sqlite3
import zipfile
from io import BytesIO

import pytest
from sqlalchemy import select

from server.reports.exports import sqlite_snapshot
from server.service import mask_id_number, mask_phone, store
from server.storage.models import AuditEntry
from tests.county import uid

STORED_ID = "341823194110201790"  # 汪德明 of h1, tests/county.py
STORED_PHONE = "13905631201"  # h1's phone, tests/county.py
ID_A, ID_B, ID_C = "341823195211254730", "34182319600315123X", "34182319700101106X"
PHONE_A, PHONE_B, PHONE_C = "13905631277", "13905631288", "13905631299"
USER_PHONE = "13705630001"
WHOLE = [STORED_ID, ID_A, ID_B, ID_C, STORED_PHONE, PHONE_A, PHONE_B, PHONE_C, USER_PHONE]


def whole_numbers_in(text: str) -> list[str]:
    return [number for number in WHOLE if number in text]


def pulled(device) -> list[dict]:
    """The device's whole scope, pulled from the start."""
    device.cursor = None
    return device.pull_all()


def latest(device, record_id: str) -> dict:
    return next(r for r in reversed(pulled(device)) if r["id"] == record_id)


@pytest.fixture
def synced(app, county, caplog):
    """A cadre adds a person with an ID number and a phone; then cadre_a and cadre_b change
    the person's ID number and the household's phone concurrently (two conflicts); a problem;
    a user with a phone. Everything logged from here on is in ``caplog``."""
    caplog.set_level(logging.DEBUG)
    a, b = county.device("cadre_a"), county.device("cadre_b")
    admin, sup = county.device("admin"), county.device("sup_east")
    h1, person = county.households["h1"], uid()
    data = {"household_id": h1, "name": "胡秀英", "id_number": ID_A, "phone": PHONE_A}
    problem = {"household_id": h1, "category": "medical", "description": "需要轮椅"}
    created = a.push(
        [a.op("create", "person", person, data), a.op("create", "problem", uid(), problem)]
    )
    assert [r["status"] for r in created.get_json()["results"]] == ["applied", "applied"]
    base = latest(b, person)["version"]
    household_base = latest(b, h1)["version"]
    a.push([a.op("update", "person", person, {"id_number": ID_B}, base)])
    a.push([a.op("update", "household", h1, {"phone": PHONE_B}, household_base)])
    answer = b.push(
        [
            b.op("update", "person", person, {"id_number": ID_C}, base),
            b.op("update", "household", h1, {"phone": PHONE_C}, household_base),
        ]
    ).get_json()
    assert [r["status"] for r in answer["results"]] == ["conflict", "conflict"]
    user = {"username": "cadre_d", "password": "a-long-password", "role": "cadre"}
    user |= {"phone": USER_PHONE, "region_ids": [county.regions["lower"]]}
    assert (
        admin.client.post("/api/v1/admin/users", json=user, headers=admin.headers).status_code
        == 201
    )
    return {"cadre": a, "supervisor": sup, "admin": admin, "person": person}


def get(device, path: str, **query):
    response = device.client.get(path, query_string=query, headers=device.headers)
    assert response.status_code == 200, (path, response.get_json())
    return response


def this_week(device, region_id: str) -> str:
    trend = get(device, "/api/v1/reports/trend", region_id=region_id, weeks=1).get_json()
    return trend["weeks"][-1]["period"]


def test_lists_show_ids_and_phones_masked_to_every_role(synced, county):
    r = county.regions
    lists = {
        "cadre": [
            ("/api/v1/conflicts", {"status": "all"}),
            ("/api/v1/problems", {}),
            ("/api/v1/reports/overdue", {"region_id": r["upper"]}),
            ("/api/v1/reports/coverage", {"region_id": r["upper"]}),
        ],
        "supervisor": [
            ("/api/v1/conflicts", {"status": "all"}),
            ("/api/v1/problems", {}),
            ("/api/v1/reports/overdue", {"region_id": r["east"]}),
            ("/api/v1/admin/households", {}),
            ("/api/v1/admin/regions", {}),
            ("/api/v1/admin/jobs", {}),
        ],
        "admin": [  # the conflicts list shows admins whole values: tests/test_readable_conflicts.py
            ("/api/v1/problems", {}),
            ("/api/v1/reports/overdue", {"region_id": r["county"]}),
            ("/api/v1/admin/households", {}),
            ("/api/v1/admin/users", {}),
            ("/api/v1/admin/devices", {}),
        ],
    }
    seen = ""
    for role, paths in lists.items():
        for path, query in paths:
            if role == "cadre" and path.endswith("/coverage"):
                query["period"] = this_week(synced[role], r["upper"])
            text = get(synced[role], path, **query).get_data(as_text=True)
            assert not whole_numbers_in(text), (role, path, whole_numbers_in(text))
            seen += text
    # the numbers are there, masked: the search looked at real answers
    for masked in (mask_phone(PHONE_B), mask_phone(PHONE_C), mask_id_number(ID_B), "137****0001"):
        assert masked in seen


def test_a_supervisor_resolves_a_masked_conflict_by_its_position(synced, county):
    sup, admin = synced["supervisor"], synced["admin"]
    listed = get(sup, "/api/v1/conflicts").get_json()["conflicts"]
    conflict = next(c for c in listed if c["field"] == "id_number")
    values = [conflict["kept"]["value"], *(lost["value"] for lost in conflict["lost"])]
    assert sorted(values) == sorted([mask_id_number(ID_B), mask_id_number(ID_C)])
    chosen = 1  # the lost value, shown masked
    answer = sup.client.post(
        f"/api/v1/conflicts/{conflict['id']}/resolve", json={"choice": chosen}, headers=sup.headers
    )
    assert answer.status_code == 200 and not whole_numbers_in(answer.get_data(as_text=True))
    household = get(admin, f"/api/v1/admin/households/{county.households['h1']}").get_json()
    stored = next(p for p in household["people"] if p["id"] == synced["person"])["id_number"]
    assert mask_id_number(stored) == values[chosen] and stored in (ID_B, ID_C)  # whole, kept
    with county.app.app_context(), store().engine.connect() as conn:
        details = conn.execute(
            select(AuditEntry.details).where(AuditEntry.action == "conflict_resolved")
        ).scalars()
        audited = " ".join(details)
    assert mask_id_number(stored) in audited and not whole_numbers_in(audited)


def test_a_choice_past_the_values_is_refused(synced):
    sup = synced["supervisor"]
    conflict = get(sup, "/api/v1/conflicts").get_json()["conflicts"][0]
    answer = sup.client.post(
        f"/api/v1/conflicts/{conflict['id']}/resolve", json={"choice": 2}, headers=sup.headers
    )
    assert answer.status_code == 422
    assert "choice" in answer.get_json()["error"]["details"]["fields"]


def test_exports_show_ids_and_phones_masked(synced, county, app, tmp_path):
    admin, sup = synced["admin"], synced["supervisor"]
    files: dict[str, bytes] = {}
    for who, region in ((admin, county.regions["county"]), (sup, county.regions["east"])):
        period = this_week(who, region)
        for kind in ("xlsx", "csv"):
            answer = get(who, f"/api/v1/reports/coverage.{kind}", period=period, region_id=region)
            files[f"{region}.{kind}"] = answer.data
    for job in ("weekly_bulletin", "overdue_digest"):
        run = admin.client.post(f"/api/v1/admin/jobs/{job}/run", headers=admin.headers)
        assert run.get_json()["result"]["status"] == "ok", run.get_json()
    for path in (tmp_path / "bulletins").glob("*.xlsx"):
        files[path.name] = path.read_bytes()
    with app.app_context():
        sqlite_snapshot(tmp_path / "snapshot.db")
    files["snapshot.db"] = (tmp_path / "snapshot.db").read_bytes()
    with sqlite3.connect(tmp_path / "zoufang.db") as conn:  # the reports the jobs kept
        kept = [row[0] for row in conn.execute("SELECT data FROM snapshots")]
    assert kept
    files["snapshots"] = "\n".join(kept).encode()
    texts = {name: readable(name, content) for name, content in files.items()}
    for name, text in texts.items():
        assert not whole_numbers_in(text), (name, whole_numbers_in(text))
    unvisited = texts[f"{county.regions['county']}.xlsx"]  # 未访户 with their masked phones
    assert mask_phone(PHONE_B) in unvisited or mask_phone(PHONE_C) in unvisited
    assert (
        mask_id_number(ID_B) in texts["snapshot.db"] or mask_id_number(ID_C) in texts["snapshot.db"]
    )


def readable(name: str, content: bytes) -> str:
    """Everything in the file as text: an .xlsx is a zip of XML parts."""
    if name.endswith(".xlsx"):
        with zipfile.ZipFile(BytesIO(content)) as book:
            return "\n".join(book.read(part).decode("utf-8") for part in book.namelist())
    return content.decode("utf-8", errors="replace")


def test_the_log_shows_no_whole_id_or_phone_number(synced, county, caplog, tmp_path):
    """Including a database error in the middle of a push that carries them: SQLAlchemy puts
    a failed statement's parameters in its message unless told not to."""
    a = synced["cadre"]
    with sqlite3.connect(tmp_path / "zoufang.db") as conn:
        conn.execute(
            "CREATE TRIGGER disk_on_fire BEFORE INSERT ON people "
            "BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"
        )
    person = {"household_id": county.households["h1"], "name": "新成员", "id_number": ID_A}
    person["phone"] = PHONE_A
    failed = a.push([a.op("create", "person", uid(), person)])
    with sqlite3.connect(tmp_path / "zoufang.db") as conn:
        conn.execute("DROP TRIGGER disk_on_fire")
    assert failed.status_code == 500
    assert "the disk is on fire" in caplog.text  # the failure was logged, with its traceback
    assert not whole_numbers_in(caplog.text), whole_numbers_in(caplog.text)


def test_pulled_people_show_id_numbers_whole_to_admins_only(synced):
    for role in ("cadre", "supervisor", "admin"):
        people = [r for r in pulled(synced[role]) if r["type"] == "person"]
        numbers = {p["data"]["id_number"] for p in people}
        shown = STORED_ID if role == "admin" else mask_id_number(STORED_ID)
        assert shown in numbers and {STORED_ID, mask_id_number(STORED_ID)} - {shown} - numbers


def test_pulled_conflicts_show_id_numbers_masked_to_non_admins(synced):
    conflicts = [r for r in pulled(synced["cadre"]) if r["type"] == "conflict"]
    assert conflicts
    assert not whole_numbers_in(str([c for c in conflicts if c["data"]["field"] == "id_number"]))


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (STORED_ID, "341823********1790"),
        (ID_C, "341823********106X"),
        ("341823199", "34******9"),  # stored before ID numbers were checked
        ("341823411020179", "34************9"),  # the old 15-digit form
        ("3418231941102017901", "34****************1"),
        ("3418", "****"),
    ],
)
def test_an_id_number_of_any_length_is_never_shown_whole(stored, shown):
    assert mask_id_number(stored) == shown
