"""The administration API (/api/v1/admin): who may call it, what it changes, and that phones
see the changes on their next pull."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from server.admin.forms_service import publish_forms
from server.storage.models import AuditEntry, FieldWrite
from tests.county import PASSWORD

SAMPLE = Path(__file__).parent / "samples" / "roster_example.csv"
ADMIN = "/api/v1/admin"

#: every admin endpoint, with a body where it needs one
ENDPOINTS = [
    ("get", "/regions", None),
    ("post", "/regions", {"name": "新镇", "level": "township", "parent_id": "x"}),
    ("patch", "/regions/x", {"name": "改名"}),
    ("get", "/households", None),
    ("post", "/households", {"village_id": "x", "code": "1", "head_name": "甲"}),
    ("get", "/households/x", None),
    ("patch", "/households/x", {"head_name": "甲"}),
    ("post", "/households/x/archive", None),
    ("post", "/households/x/people", {"name": "甲"}),
    ("patch", "/people/x", {"name": "甲"}),
    ("post", "/roster", None),
    ("get", "/users", None),
    ("post", "/users", {"username": "x1", "password": "p" * 10, "role": "cadre"}),
    ("get", "/users/x", None),
    ("patch", "/users/x", {"role": "admin"}),
    ("post", "/users/x/deactivate", None),
    ("post", "/users/x/activate", None),
    ("post", "/users/x/password", {"password": "p" * 10}),
    ("put", "/users/x/assignment", {"region_ids": []}),
    ("post", "/assignments/transfer", {"from_user": "a", "to_user": "b"}),
    ("get", "/devices", None),
    ("post", "/devices/x/revoke", None),
    ("get", "/visit-policy", None),
    ("put", "/visit-policy", {"default": "weekly"}),
    ("get", "/forms", None),
]
SUPERVISOR_READS = {"/regions", "/households", "/households/x"}


def call(device, method: str, path: str, body=None, **kwargs):
    return getattr(device.client, method)(ADMIN + path, json=body, headers=device.headers, **kwargs)


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def audited(app, action: str) -> list:
    with app.extensions["zoufang_store"].engine.connect() as conn:
        return conn.execute(select(AuditEntry).where(AuditEntry.action == action)).all()


# --- who may call ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_cadre_gets_403_from_every_admin_endpoint(county, method, path, body):
    cadre = county.device("cadre_a")

    response = call(cadre, method, path, body)

    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_supervisor_may_only_read_regions_households_and_people(county, method, path, body):
    supervisor = county.device("sup_east")

    response = call(supervisor, method, path, body)

    if method == "get" and path in SUPERVISOR_READS:
        assert response.status_code in (200, 404)
    else:
        assert response.status_code == 403, (method, path)


def test_without_a_token_the_admin_api_answers_401_in_the_error_shape(county):
    response = county.app.test_client().get(ADMIN + "/users")

    assert response.status_code == 401
    assert set(response.get_json()["error"]) >= {"code", "message"}


# --- regions ---------------------------------------------------------------------------------


def test_the_region_tree_nests_townships_and_villages_under_the_county(county):
    admin = county.device("admin")

    tree = ok(call(admin, "get", "/regions"))["regions"]

    assert [r["name"] for r in tree] == ["青山县"]
    townships = {t["name"]: t for t in tree[0]["children"]}
    assert sorted(townships) == ["东河镇", "西岭镇"]
    assert sorted(v["name"] for v in townships["东河镇"]["children"]) == ["上村", "下村"]


def test_a_township_supervisor_sees_only_their_township_below_the_county(county):
    supervisor = county.device("sup_east")

    tree = ok(call(supervisor, "get", "/regions"))["regions"]

    assert [r["name"] for r in tree] == ["青山县"]
    assert [t["name"] for t in tree[0]["children"]] == ["东河镇"]


def test_regions_are_created_under_a_parent_of_the_right_level_and_renamed(county):
    admin = county.device("admin")
    admin.pull_all()
    east = county.regions["east"]

    village = ok(
        call(admin, "post", "/regions", {"name": "新村", "level": "village", "parent_id": east}),
        201,
    )
    wrong = call(
        admin,
        "post",
        "/regions",
        {"name": "错村", "level": "village", "parent_id": county.regions["county"]},
    )
    twice = call(admin, "post", "/regions", {"name": "新村", "level": "village", "parent_id": east})
    renamed = ok(call(admin, "patch", f"/regions/{village['id']}", {"name": "新庄村"}))

    assert (
        wrong.status_code == 422 and "parent_id" in wrong.get_json()["error"]["details"]["fields"]
    )
    assert twice.status_code == 409
    assert renamed["name"] == "新庄村" and renamed["version"] > village["version"]
    pulled = {r["id"]: r for r in admin.pull_all() if r["type"] == "region"}
    assert pulled[village["id"]]["data"]["name"] == "新庄村"
    assert audited(county.app, "region_created") and audited(county.app, "region_edited")


def test_renaming_an_unknown_region_is_404(county):
    admin = county.device("admin")

    assert call(admin, "patch", "/regions/nowhere", {"name": "x"}).status_code == 404


# --- households and people -------------------------------------------------------------------


def test_households_are_searched_by_head_name_or_code_a_page_at_a_time(any_county):
    admin = any_county.device("admin")

    by_name = ok(call(admin, "get", "/households", query_string={"q": "户主3"}))
    by_code = ok(call(admin, "get", "/households", query_string={"q": "3418231010"}))
    page = ok(call(admin, "get", "/households", query_string={"per_page": 2, "page": 3}))
    in_region = ok(
        call(admin, "get", "/households", query_string={"region_id": any_county.regions["east"]})
    )
    percent = ok(call(admin, "get", "/households", query_string={"q": "%"}))

    assert [h["head_name"] for h in by_name["households"]] == ["户主3"]
    assert by_code["total"] == 5
    assert page["total"] == 5 and [h["head_name"] for h in page["households"]] == ["户主5"]
    assert in_region["total"] == 4
    assert percent["total"] == 0
    first = by_name["households"][0]
    assert first["phone"] == "139****1203" and first["village"] == "上村"
    assert first["township"] == "东河镇"


def test_a_supervisor_searches_only_the_households_of_their_township(county):
    supervisor = county.device("sup_east")

    found = ok(call(supervisor, "get", "/households"))
    elsewhere = call(supervisor, "get", f"/households/{county.households['h5']}")

    assert found["total"] == 4
    assert elsewhere.status_code == 404


def test_a_household_comes_with_its_people_id_numbers_whole_only_for_admins(county):
    admin, supervisor = county.device("admin"), county.device("sup_east")
    h1 = county.households["h1"]

    as_admin = ok(call(admin, "get", f"/households/{h1}"))
    as_supervisor = ok(call(supervisor, "get", f"/households/{h1}"))

    assert as_admin["household"]["code"] == "341823101001"
    assert [p["id_number"] for p in as_admin["people"]] == ["341823194110201790"]
    assert [p["id_number"] for p in as_supervisor["people"]] == ["341823********1790"]


def test_an_admin_edit_of_a_household_reaches_the_cadres_phone_through_the_engine(county):
    admin, cadre = county.device("admin"), county.device("cadre_a")
    cadre.pull_all()
    h1 = county.households["h1"]

    edited = ok(call(admin, "patch", f"/households/{h1}", {"head_name": "汪德明", "notes": "新"}))
    pulled = cadre.pull_all()

    assert edited["household"]["head_name"] == "汪德明"
    assert [(r["id"], r["data"]["head_name"]) for r in pulled] == [(h1, "汪德明")]
    with county.app.extensions["zoufang_store"].engine.connect() as conn:
        writes = conn.execute(
            select(FieldWrite.field, FieldWrite.device_id).where(FieldWrite.record_id == h1)
        ).all()
    assert sorted(writes) == [("head_name", "server"), ("notes", "server")]
    assert json.loads(audited(county.app, "household_edited")[0].details) == {
        "fields": ["head_name", "notes"]
    }


def test_a_household_edit_with_a_bad_value_or_unknown_field_is_422(county):
    admin = county.device("admin")
    h1 = county.households["h1"]

    bad_status = call(admin, "patch", f"/households/{h1}", {"status": "gone"})
    unknown = call(admin, "patch", f"/households/{h1}", {"village_id": "x"})

    assert bad_status.status_code == 422 and unknown.status_code == 422
    assert unknown.get_json()["error"]["details"]["fields"] == {"village_id": ["Unknown field."]}


def test_archiving_a_household_sets_its_status(county):
    admin = county.device("admin")

    archived = ok(call(admin, "post", f"/households/{county.households['h2']}/archive"))

    assert archived["household"]["status"] == "archived"
    listed = ok(call(admin, "get", "/households", query_string={"status": "archived"}))
    assert [h["id"] for h in listed["households"]] == [county.households["h2"]]


def test_a_household_is_created_in_a_village_with_a_derived_visit_policy(county):
    admin = county.device("admin")
    body = {
        "village_id": county.regions["upper"],
        "code": "H-NEW",
        "head_name": "新户",
        "category": "监测户",
    }

    created = ok(call(admin, "post", "/households", body), 201)
    again = call(admin, "post", "/households", body)

    assert created["household"]["visit_policy"] == "monthly"
    assert again.status_code == 409


def test_people_are_added_and_edited_with_id_numbers_checked(county):
    admin = county.device("admin")
    h1 = county.households["h1"]

    added = ok(
        call(
            admin,
            "post",
            f"/households/{h1}/people",
            {"name": "汪小花", "relation": "孙女", "flags": ["left_behind"]},
        ),
        201,
    )
    bad = call(admin, "patch", f"/people/{added['id']}", {"id_number": "341823194110201791"})
    taken = call(admin, "patch", f"/people/{added['id']}", {"id_number": "341823194110201790"})
    edited = ok(call(admin, "patch", f"/people/{added['id']}", {"flags": [], "birth_year": 2012}))

    assert added["household_id"] == h1 and added["flags"] == ["left_behind"]
    assert bad.status_code == 422
    assert "341823194110201791" not in bad.get_data(as_text=True)
    assert taken.status_code == 409
    assert edited["flags"] == [] and edited["birth_year"] == 2012
    assert audited(county.app, "person_added") and audited(county.app, "person_edited")


# --- roster upload ---------------------------------------------------------------------------


def upload(device, content: bytes, name: str = "roster.csv", **query):
    return device.client.post(
        ADMIN + "/roster",
        data={"file": (io.BytesIO(content), name)},
        headers=device.headers,
        query_string=query,
        content_type="multipart/form-data",
    )


def test_a_roster_upload_dry_run_counts_and_the_real_one_imports(county):
    admin = county.device("admin")

    dry = ok(upload(admin, SAMPLE.read_bytes(), dry_run="true"))
    listed_before = ok(call(admin, "get", "/households"))["total"]
    done = ok(upload(admin, SAMPLE.read_bytes()))

    assert dry["dry_run"] is True and dry["households"]["created"] == 6
    assert listed_before == 5
    assert done["dry_run"] is False and done["people"]["created"] == 10
    assert done["regions"] == {"created": 6}  # the county 青山县 exists
    assert {w["code"] for w in done["warnings"]} == {"gender_mismatch"}
    assert ok(call(admin, "get", "/households"))["total"] == 11


def test_a_bad_roster_upload_is_422_with_every_row_and_imports_nothing(county):
    admin = county.device("admin")
    text = SAMPLE.read_text(encoding="utf-8-sig").replace(",1952,", ",19x2,")
    text = text.replace("341823194110201790", "341823194110201791")

    response = upload(admin, text.encode())

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert [(e["row"], e["column"]) for e in error["details"]["errors"]] == [
        (2, "身份证号"),
        (3, "出生年份"),
    ]
    assert set(error["details"]["fields"]) == {"row 2", "row 3"}
    assert "341823194110201791" not in response.get_data(as_text=True)
    assert ok(call(admin, "get", "/households"))["total"] == 5


def test_a_roster_upload_without_a_file_is_422(county):
    admin = county.device("admin")

    response = admin.client.post(ADMIN + "/roster", headers=admin.headers, data={})

    assert response.status_code == 422
    assert "file" in response.get_json()["error"]["details"]["fields"]


# --- users and 包保 --------------------------------------------------------------------------


def test_users_are_listed_with_phone_numbers_masked(county):
    admin = county.device("admin")
    ok(
        call(
            admin,
            "post",
            "/users",
            {
                "username": "cadre_d",
                "password": "a-long-password",
                "role": "cadre",
                "name": "丁",
                "phone": "13905631299",
                "region_ids": [county.regions["ridge"]],
            },
        ),
        201,
    )

    listed = {u["username"]: u for u in ok(call(admin, "get", "/users"))["users"]}
    one = ok(call(admin, "get", f"/users/{listed['cadre_d']['id']}"))

    assert listed["cadre_d"]["phone"] == "139****1299"
    assert listed["cadre_d"]["region_ids"] == [county.regions["ridge"]]
    assert listed["admin"]["devices"] == 1
    assert one["phone"] == "13905631299"  # one user's page shows it whole, to an admin


def test_a_user_that_cannot_be_created_is_422(county):
    admin = county.device("admin")

    taken = call(
        admin,
        "post",
        "/users",
        {
            "username": "cadre_a",
            "password": "a-long-password",
            "role": "cadre",
            "region_ids": [county.regions["upper"]],
        },
    )
    short = call(admin, "post", "/users", {"username": "x9", "password": "short", "role": "admin"})

    assert taken.status_code == 422 and short.status_code == 422


def test_roles_change_but_an_admin_cannot_demote_themselves(county):
    admin = county.device("admin")

    promoted = ok(call(admin, "patch", f"/users/{county.users['cadre_b']}", {"role": "supervisor"}))
    self_demotion = call(admin, "patch", f"/users/{county.users['admin']}", {"role": "cadre"})

    assert promoted["role"] == "supervisor"
    assert self_demotion.status_code == 409
    assert json.loads(audited(county.app, "user_edited")[0].details)["role"] == "supervisor"


def test_deactivating_a_user_revokes_their_devices(county):
    admin, cadre = county.device("admin"), county.device("cadre_a")

    done = ok(call(admin, "post", f"/users/{county.users['cadre_a']}/deactivate"))
    after = cadre.pull()
    sign_in = county.app.test_client().post(
        "/api/v1/devices", json={"username": "cadre_a", "password": PASSWORD}
    )

    assert done["active"] is False and done["devices_revoked"] == 1
    assert after.status_code == 401
    listed = ok(call(admin, "get", "/devices", query_string={"user_id": county.users["cadre_a"]}))
    assert [d["revoked"] for d in listed["devices"]] == [True]
    assert sign_in.status_code == 401
    assert call(admin, "post", f"/users/{county.users['admin']}/deactivate").status_code == 409
    ok(call(admin, "post", f"/users/{county.users['cadre_a']}/activate"))
    assert county.device("cadre_a").user["username"] == "cadre_a"


def test_a_reset_password_signs_in_and_the_old_one_does_not(county):
    admin = county.device("admin")

    ok(
        call(
            admin,
            "post",
            f"/users/{county.users['cadre_b']}/password",
            {"password": "brand-new-pass"},
        )
    )
    client = county.app.test_client()
    new = client.post("/api/v1/devices", json={"username": "cadre_b", "password": "brand-new-pass"})
    old = client.post("/api/v1/devices", json={"username": "cadre_b", "password": PASSWORD})

    assert new.status_code == 201 and old.status_code == 401
    assert audited(county.app, "password_reset")


def test_an_assignment_is_set_and_a_bad_target_is_422(county):
    admin = county.device("admin")
    user = county.users["cadre_b"]

    done = ok(
        call(
            admin,
            "put",
            f"/users/{user}/assignment",
            {"region_ids": [county.regions["ridge"]], "household_ids": [county.households["h4"]]},
        )
    )
    bad = call(admin, "put", f"/users/{user}/assignment", {"region_ids": ["nowhere"]})
    nobody = call(admin, "put", "/users/nobody/assignment", {"region_ids": []})

    assert done["region_ids"] == [county.regions["ridge"]]
    assert done["household_ids"] == [county.households["h4"]]
    assert bad.status_code == 422 and nobody.status_code == 404


def test_a_bulk_transfer_moves_a_leaving_cadres_households_to_the_next_pull(any_county):
    admin = any_county.device("admin")
    leaving, taking = any_county.device("cadre_a"), any_county.device("cadre_c")
    upper = {any_county.households[h] for h in ("h1", "h2", "h3")}
    assert upper <= {r["id"] for r in leaving.pull_all() if r["type"] == "household"}
    before = {r["id"] for r in taking.pull_all() if r["type"] == "household"}
    assert not upper & before

    moved = ok(
        call(
            admin,
            "post",
            "/assignments/transfer",
            {"from_user": any_county.users["cadre_a"], "to_user": any_county.users["cadre_c"]},
        )
    )
    entered = taking.pull_all()
    left = leaving.pull_all()

    assert moved["moved"]["region_ids"] == [any_county.regions["upper"]]
    assert set(moved["to_user"]["region_ids"]) == {
        any_county.regions["upper"],
        any_county.regions["lower"],
    }
    assert upper <= {r["id"] for r in entered if r["type"] == "household" and not r["deleted"]}
    assert any(r["type"] == "person" and not r["deleted"] for r in entered)  # h1's 汪德明
    gone = {r["id"] for r in left if r["deleted"]}
    assert upper <= gone and any_county.regions["upper"] in gone
    assert audited(any_county.app, "assignments_transferred")


def test_a_transfer_to_the_same_or_an_unknown_user_is_refused(county):
    admin = county.device("admin")
    cadre_a = county.users["cadre_a"]

    same = call(admin, "post", "/assignments/transfer", {"from_user": cadre_a, "to_user": cadre_a})
    unknown = call(
        admin, "post", "/assignments/transfer", {"from_user": cadre_a, "to_user": "nobody"}
    )

    assert same.status_code == 422 and unknown.status_code == 404


# --- devices, visit policy, forms ------------------------------------------------------------


def test_devices_are_listed_with_their_last_sync_and_can_be_revoked(county):
    admin, cadre = county.device("admin"), county.device("cadre_c", label="丙的手机")
    cadre.pull_all()

    listed = ok(call(admin, "get", "/devices", query_string={"user_id": county.users["cadre_c"]}))
    revoked = ok(call(admin, "post", f"/devices/{cadre.device_id}/revoke"))

    [device] = listed["devices"]
    assert device["label"] == "丙的手机" and device["last_sync_at"] is not None
    assert device["revoked"] is False and revoked["revoked"] is True
    assert cadre.pull().get_json()["error"]["code"] == "device_revoked"
    assert all(d["id"] != "server" for d in ok(call(admin, "get", "/devices"))["devices"])


def test_a_new_visit_policy_is_stored_and_households_follow_it(county):
    admin = county.device("admin")

    before = ok(call(admin, "get", "/visit-policy"))
    changed = ok(
        call(
            admin,
            "put",
            "/visit-policy",
            {"flagged": "weekly", "categories": {"脱贫户": "monthly"}, "default": "monthly"},
        )
    )
    after = ok(call(admin, "get", "/visit-policy"))
    bad = call(admin, "put", "/visit-policy", {"default": "daily"})

    assert before["policy"]["categories"] == {"监测户": "monthly", "边缘户": "monthly"}
    assert before["categories"] == [
        {"category": "脱贫户", "households": 5, "visit_policy": "monthly"}
    ]
    assert changed["households_updated"] == 4  # h1 has a flagged person: weekly stays
    assert after["policy"]["categories"] == {"脱贫户": "monthly"}
    policies = {
        h["id"]: h["visit_policy"] for h in ok(call(admin, "get", "/households"))["households"]
    }
    assert policies[county.households["h1"]] == "weekly"
    assert policies[county.households["h2"]] == "monthly"
    assert bad.status_code == 422
    assert audited(county.app, "visit_policy_changed")


def test_the_published_form_versions_are_listed(county):
    with county.app.app_context():
        publish_forms(actor=None)
    admin = county.device("admin")

    listed = ok(call(admin, "get", "/forms"))["forms"]

    assert {"weekly_visit", "monthly_monitoring"} <= {f["form_id"] for f in listed}
    assert all(f["version"] >= 1 and f["fields"] > 0 for f in listed)
