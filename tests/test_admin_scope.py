"""An admin administers the regions assigned to them and what lies below (issue 13 item 3,
CONTRACT §3): on a server of two counties the admin of one gets 404 for the other county's
regions, households, people, users and devices, lists only their own, gives no one more than
they hold, and leaves the server-wide settings to an admin of every county.

The world: tests/county.py's 青山县 (admin ``admin``) plus 白水县 → 南镇 → 南村 with household
h6, its person, cadre ``cadre_s`` and admin ``admin2``; ``boss`` is assigned both counties.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from server.admin.accounts import create_user
from server.service import create_server_records
from tests.county import PASSWORD, County, Device, build_county, uid
from tests.test_authz_matrix import household, region

ADMIN = "/api/v1/admin"
ID_NUMBER = "341824198001010012"
NEW_PASSWORD = "Baishui-river-walnut-2026"  # strong, so that only the scope can refuse it


@pytest.fixture
def two(any_app: Any) -> County:
    county = build_county(any_app)
    r, h, u = county.regions, county.households, county.users
    r.update(county2=uid(), south=uid(), south_village=uid())
    h["h6"], h["h6_person"] = uid(), uid()
    with any_app.app_context():
        create_server_records(
            [
                ("region", r["county2"], region(None, "county", "白水县")),
                ("region", r["south"], region(r["county2"], "township", "南镇")),
                ("region", r["south_village"], region(r["south"], "village", "南村")),
                ("household", h["h6"], household(r["south_village"], "341824101001006")),
                ("person", h["h6_person"], person(h["h6"])),
            ],
            actor=None,
        )
        u["cadre_s"] = create_user("cadre_s", PASSWORD, "cadre", [r["south_village"]], [], "南")
        u["admin2"] = create_user("admin2", PASSWORD, "admin", [r["county2"]], [], "白水管理员")
        u["boss"] = create_user("boss", PASSWORD, "admin", [r["county"], r["county2"]], [], "总")
    return county


def person(household_id: str) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "name": "南成员",
        "gender": "男",
        "birth_year": 1980,
        "relation": "户主",
        "flags": [],
        "id_number": ID_NUMBER,
        "phone": None,
        "notes": None,
    }


def call(device: Device, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    return device.client.open(
        ADMIN + path, method=method, json=body, headers=device.headers, **kwargs
    )


def status(device: Device, method: str, path: str, body: Any = None, **kwargs: Any) -> int:
    response = call(device, method, path, body, **kwargs)
    if response.status_code >= 400:
        assert response.get_json()["error"]["code"] in ("not_found", "forbidden")
    return int(response.status_code)


def ok(response: Any, expected: int = 200) -> Any:
    assert response.status_code == expected, response.get_json()
    return response.get_json()


def roster(device: Device, csv: str, county: str = "青山县", **query: str) -> Any:
    header = "户编码,户主姓名,乡镇,村,人员姓名,与户主关系,类别\n"
    return device.client.post(
        ADMIN + "/roster",
        data={"file": (io.BytesIO((header + csv).encode()), "花名册.csv"), "county": county},
        headers=device.headers,
        query_string=query,
        content_type="multipart/form-data",
    )


# --- the other county's objects are not there -------------------------------------------------

#: (method, path with {placeholders}, body): every admin route on one object of 白水县
OTHER_COUNTY = [
    ("GET", "/households/{h6}", None),
    ("PATCH", "/households/{h6}", {"notes": "改"}),
    ("POST", "/households/{h6}/archive", None),
    ("POST", "/households/{h6}/people", {"name": "新成员"}),
    ("PATCH", "/people/{h6_person}", {"notes": "改"}),
    ("PATCH", "/regions/{south}", {"name": "改名"}),
    ("GET", "/users/{cadre_s}", None),
    ("PATCH", "/users/{cadre_s}", {"name": "改名"}),
    ("POST", "/users/{cadre_s}/deactivate", None),
    ("POST", "/users/{cadre_s}/activate", None),
    ("POST", "/users/{admin2}/password", {"password": NEW_PASSWORD}),
    ("PUT", "/users/{cadre_s}/assignment", {"region_ids": ["{upper}"]}),
    ("POST", "/assignments/transfer", {"from_user": "{cadre_s}", "to_user": "{cadre_a}"}),
    ("POST", "/assignments/transfer", {"from_user": "{cadre_a}", "to_user": "{cadre_s}"}),
]


def fill(template: Any, two: County) -> Any:
    names = {**two.regions, **two.households, **two.users}
    if isinstance(template, str):
        for key, value in names.items():
            template = template.replace("{" + key + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill(v, two) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, two) for v in template]
    return template


@pytest.mark.parametrize(("method", "path", "body"), OTHER_COUNTY)
def test_a_county_admin_gets_404_for_the_other_countys_objects(two, method, path, body):
    admin = two.device("admin")
    assert status(admin, method, fill(path, two), fill(body, two)) == 404


def test_the_other_countys_object_is_untouched_after_the_refused_calls(two):
    admin, admin2 = two.device("admin"), two.device("admin2")
    for method, path, body in OTHER_COUNTY:
        call(admin, method, fill(path, two), fill(body, two))

    shown = ok(call(admin2, "GET", f"/households/{two.households['h6']}"))
    user = ok(call(admin2, "GET", f"/users/{two.users['cadre_s']}"))
    assert shown["household"]["status"] == "active" and shown["household"]["notes"] is None
    assert [p["name"] for p in shown["people"]] == ["南成员"]
    assert (
        user["active"]
        and user["name"] == "南"
        and user["region_ids"] == [two.regions["south_village"]]
    )


def test_a_county_admin_cannot_reset_the_other_county_admins_password_and_sign_in(two):
    admin = two.device("admin")

    refused = status(
        admin, "POST", f"/users/{two.users['admin2']}/password", {"password": NEW_PASSWORD}
    )
    sign_in = admin.client.post(
        "/api/v1/devices", json={"username": "admin2", "password": NEW_PASSWORD, "label": "x"}
    )

    assert refused == 404
    assert sign_in.status_code == 401


def test_a_county_admin_cannot_revoke_a_device_of_the_other_county(two):
    admin, phone = two.device("admin"), two.device("cadre_s")

    by_admin_api = status(admin, "POST", f"/devices/{phone.device_id}/revoke")
    by_delete = admin.client.delete(f"/api/v1/devices/{phone.device_id}", headers=admin.headers)

    assert by_admin_api == 403 and by_delete.status_code == 403
    assert phone.pull().status_code == 200


def test_a_county_admin_revokes_a_device_of_their_own_county(two):
    admin, phone = two.device("admin"), two.device("cadre_a")

    ok(call(admin, "POST", f"/devices/{phone.device_id}/revoke"))

    assert phone.pull().get_json()["error"]["code"] == "device_revoked"


# --- lists show the admin's own county ----------------------------------------------------------


def test_a_county_admin_lists_only_their_countys_regions_households_users_and_devices(two):
    admin = two.device("admin")
    two.device("cadre_s")
    two.device("cadre_a")

    regions = ok(call(admin, "GET", "/regions"))["regions"]
    households = ok(call(admin, "GET", "/households", query_string={"per_page": 200}))
    users = {u["username"] for u in ok(call(admin, "GET", "/users"))["users"]}
    devices = {d["username"] for d in ok(call(admin, "GET", "/devices"))["devices"]}
    categories = ok(call(admin, "GET", "/visit-policy"))["categories"]

    assert [r["name"] for r in regions] == ["青山县"]
    assert households["total"] == 5
    assert two.households["h6"] not in {h["id"] for h in households["households"]}
    assert users == {"admin", "cadre_a", "cadre_b", "cadre_c", "sup_east"}
    assert devices == {"admin", "cadre_a"}
    assert [(c["category"], c["households"]) for c in categories] == [("脱贫户", 5)]  # not 6


def test_an_admin_of_every_county_sees_and_edits_both(two):
    boss = two.device("boss")

    regions = ok(call(boss, "GET", "/regions"))["regions"]
    total = ok(call(boss, "GET", "/households"))["total"]
    users = {u["username"] for u in ok(call(boss, "GET", "/users"))["users"]}
    shown = ok(call(boss, "GET", f"/households/{two.households['h6']}"))
    ok(call(boss, "PATCH", f"/households/{two.households['h6']}", {"notes": "总部"}))
    ok(call(boss, "POST", f"/users/{two.users['admin2']}/password", {"password": NEW_PASSWORD}))

    assert sorted(r["name"] for r in regions) == ["白水县", "青山县"]
    assert total == 6 and {"admin", "admin2", "cadre_s", "boss"} <= users
    assert shown["people"][0]["id_number"] == ID_NUMBER


# --- no one gets more than the admin holds --------------------------------------------------


def test_a_county_admin_cannot_create_an_admin_of_every_county(two):
    admin = two.device("admin")
    both = [two.regions["county"], two.regions["county2"]]
    body = {"username": "usurper", "password": NEW_PASSWORD, "role": "admin", "region_ids": both}

    assert status(admin, "POST", "/users", body) == 403
    assert status(admin, "POST", "/users", {**body, "region_ids": [two.regions["county2"]]}) == 403
    assert status(boss := two.device("boss"), "GET", "/users") == 200
    assert "usurper" not in {u["username"] for u in ok(call(boss, "GET", "/users"))["users"]}


def test_a_county_admin_cannot_assign_regions_or_households_outside_their_county(two):
    admin = two.device("admin")
    cadre = two.users["cadre_a"]

    regions = {"region_ids": [two.regions["upper"], two.regions["south_village"]]}
    households = {"region_ids": [], "household_ids": [two.households["h6"]]}
    own = {"region_ids": [two.regions["lower"]]}

    assert status(admin, "PUT", f"/users/{cadre}/assignment", regions) == 403
    assert status(admin, "PUT", f"/users/{cadre}/assignment", households) == 403
    both = {"region_ids": [two.regions["county"], two.regions["county2"]]}
    assert status(admin, "PUT", f"/users/{two.users['admin']}/assignment", both) == 403
    assert ok(call(admin, "PUT", f"/users/{cadre}/assignment", own))["region_ids"] == [
        two.regions["lower"]
    ]


def test_an_admin_made_by_a_county_admin_administers_no_more_than_their_county(two):
    admin = two.device("admin")
    ok(call(admin, "PATCH", f"/users/{two.users['cadre_a']}", {"role": "admin"}))
    promoted = two.device("cadre_a")

    assert status(promoted, "GET", f"/households/{two.households['h6']}") == 404
    assert status(promoted, "GET", f"/users/{two.users['admin']}") == 404  # 青山县 > 上村
    assert status(promoted, "GET", f"/households/{two.households['h1']}") == 200


def test_a_global_admins_password_is_not_reset_by_a_county_admin(two):
    admin = two.device("admin")

    refused = status(
        admin, "POST", f"/users/{two.users['boss']}/password", {"password": NEW_PASSWORD}
    )
    demoted = status(admin, "PATCH", f"/users/{two.users['boss']}", {"role": "cadre"})

    assert refused == 404 and demoted == 404


# --- regions, households and the roster -------------------------------------------------------


def test_a_county_admin_adds_no_county_and_nothing_under_the_other_county(two):
    admin = two.device("admin")
    county = {"name": "新县", "level": "county"}
    township = {"name": "新镇", "level": "township", "parent_id": two.regions["county2"]}
    village = {"village_id": two.regions["south_village"], "code": "NEW1", "head_name": "甲"}

    assert status(admin, "POST", "/regions", county) == 403
    assert call(admin, "POST", "/regions", township).status_code == 422
    assert call(admin, "POST", "/households", village).status_code == 422
    own = {**township, "parent_id": two.regions["county"]}
    assert ok(call(admin, "POST", "/regions", own), 201)["parent_id"] == two.regions["county"]


def test_a_county_added_by_an_admin_of_every_county_keeps_them_of_every_county(two):
    boss, admin = two.device("boss"), two.device("admin")

    made = ok(call(boss, "POST", "/regions", {"name": "新县", "level": "county"}), 201)

    assert made["id"] in ok(call(boss, "GET", f"/users/{two.users['boss']}"))["region_ids"]
    assert status(boss, "PUT", "/visit-policy", {"default": "weekly"}) == 200
    assert "新县" not in {r["name"] for r in ok(call(admin, "GET", "/regions"))["regions"]}


def test_roster_rows_of_the_other_county_are_refused_with_their_row_number(two):
    admin = two.device("admin")
    mixed = "R1,张三,东河镇,上村,张三,户主,脱贫户\nR2,李四,南镇,南村,李四,户主,脱贫户\n"

    refused = roster(admin, mixed, county="白水县")
    own = roster(admin, "R1,张三,东河镇,上村,张三,户主,脱贫户\n")
    new_township = roster(admin, "R3,王五,新镇,新村,王五,户主,脱贫户\n")
    taken_code = roster(admin, "341824101001006,赵六,东河镇,上村,赵六,户主,脱贫户\n")

    errors = refused.get_json()["error"]["details"]["errors"]
    assert refused.status_code == 422
    assert [(e["row"], e["code"]) for e in errors] == [
        (2, "outside_regions"),
        (3, "outside_regions"),
    ]
    assert ok(own)["households"]["created"] == 1
    assert ok(new_township)["regions"]["created"] == 2  # under 青山县, the admin's county
    taken = taken_code.get_json()["error"]["details"]["errors"]
    assert [(e["row"], e["code"]) for e in taken] == [(2, "household_elsewhere")]
    assert "南" not in str(taken)
    assert ok(call(admin, "GET", "/households", query_string={"q": "R2"}))["total"] == 0


def test_a_roster_naming_a_new_county_is_refused_for_a_county_admin(two):
    admin = two.device("admin")
    response = roster(admin, "R9,李四,甲镇,甲村,李四,户主,脱贫户\n", county="新县")

    assert response.status_code == 422
    assert [e["code"] for e in response.get_json()["error"]["details"]["errors"]] == [
        "outside_regions"
    ]


# --- server-wide settings, jobs and reports -----------------------------------------------------


def test_the_visit_policy_and_jobs_are_changed_only_by_an_admin_of_every_county(two):
    admin, boss = two.device("admin"), two.device("boss")
    policy = {"default": "weekly"}

    assert status(admin, "PUT", "/visit-policy", policy) == 403
    assert status(admin, "POST", "/jobs/problem_escalation/run") == 403
    assert status(admin, "GET", "/forms") == 200 and status(admin, "GET", "/jobs") == 200
    assert status(boss, "PUT", "/visit-policy", policy) == 200
    assert status(boss, "POST", "/jobs/problem_escalation/run") == 200


def test_a_county_admin_reports_and_exports_only_their_county(two):
    admin, boss = two.device("admin"), two.device("boss")
    other = {"period": "2026-W47", "region_id": two.regions["county2"]}

    for path in ("coverage", "overdue", "coverage.xlsx", "coverage.csv"):
        url = f"/api/v1/reports/{path}"
        mine = {**other, "region_id": two.regions["county"]}
        assert admin.client.get(url, query_string=other, headers=admin.headers).status_code == 403
        assert admin.client.get(url, query_string=mine, headers=admin.headers).status_code == 200
        assert boss.client.get(url, query_string=other, headers=boss.headers).status_code == 200


def test_on_a_server_without_regions_an_admin_adds_the_first_county_and_keeps_it(any_app):
    with any_app.app_context():
        first = create_user("first", PASSWORD, "admin", [], [], "第一位管理员")
    admin = County(any_app).device("first")

    made = ok(call(admin, "POST", "/regions", {"name": "青山县", "level": "county"}), 201)

    assert ok(call(admin, "GET", f"/users/{first}"))["region_ids"] == [made["id"]]
    assert status(admin, "PUT", "/visit-policy", {"default": "weekly"}) == 200
