"""`user` records in pulls (CONTRACT §4, docs/sync.md "Users"), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import event

from server import service

ADMIN = "/api/v1/admin"


def users_pulled(device) -> dict[str, dict]:
    return {r["data"]["username"]: r["data"] for r in device.pull_all() if r["type"] == "user"}


def test_a_cadre_pulls_the_users_of_their_village_and_above_not_other_villages(any_county):
    users = users_pulled(any_county.device("cadre_a"))
    assert set(users) == {"cadre_a", "cadre_b", "sup_east", "admin"}
    assert users["cadre_b"] == {"username": "cadre_b", "name": "乙干部", "role": "cadre",
                                "active": True}  # fmt: skip


def test_a_household_assigned_cadre_meets_the_users_of_that_households_village(any_county):
    users = users_pulled(any_county.device("cadre_c"))
    assert set(users) == {"cadre_c", "sup_east", "admin"}


def test_a_renamed_user_reaches_the_phone_on_the_next_pull(any_county):
    a, admin = any_county.device("cadre_a"), any_county.device("admin")
    a.pull_all()
    cadre_b = any_county.users["cadre_b"]
    response = admin.client.patch(
        f"{ADMIN}/users/{cadre_b}", json={"name": "李鑫"}, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    changed = [r for r in a.pull_all() if r["type"] == "user"]
    assert [(r["id"], r["data"]["name"]) for r in changed] == [(cadre_b, "李鑫")]


def test_a_deactivated_user_is_still_pulled_with_active_false(any_county):
    a, admin = any_county.device("cadre_a"), any_county.device("admin")
    a.pull_all()
    cadre_b = any_county.users["cadre_b"]
    response = admin.client.post(f"{ADMIN}/users/{cadre_b}/deactivate", headers=admin.headers)
    assert response.status_code == 200, response.get_json()
    changed = [r for r in a.pull_all() if r["type"] == "user"]
    assert [(r["deleted"], r["data"]["active"]) for r in changed] == [(False, False)]


def test_a_user_moved_into_the_village_reaches_its_cadres_on_the_next_pull(any_county):
    a, admin = any_county.device("cadre_a"), any_county.device("admin")
    a.pull_all()
    body = {"region_ids": [any_county.regions["upper"]], "household_ids": []}
    cadre_c = any_county.users["cadre_c"]
    response = admin.client.put(
        f"{ADMIN}/users/{cadre_c}/assignment", json=body, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    assert [r["data"]["username"] for r in a.pull_all() if r["type"] == "user"] == ["cadre_c"]


def test_an_empty_pull_reads_no_record_table(any_county):
    a = any_county.device("cadre_a")
    a.pull_all()
    statements: list[str] = []

    def remember(*args):
        statements.append(args[2])

    with any_county.app.app_context():
        engine = service.store().engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        body = a.pull().get_json()
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert body["records"] == []
    assert statements, "the pull ran no statement at all: the listener is not on its engine"
    assert not [s for s in statements if "user_records" in s or "user_reach" in s]
    assert not [s for s in statements if "FROM households" in s or "FROM visits" in s]
