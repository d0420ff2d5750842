"""Push and pull over HTTP (CONTRACT §5, §8) on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.county import uid


def test_a_pushed_visit_is_applied_and_pulled_back_by_another_cadre(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    op = a.visit(any_county.households["h1"])
    response = a.push([op])
    assert response.status_code == 200
    body = response.get_json()
    assert body["results"][0]["status"] == "applied"
    assert body["next_seq"] == 2
    visits = [r for r in b.pull_all() if r["type"] == "visit"]
    assert [v["id"] for v in visits] == [op["id"]]
    assert visits[0]["data"]["visitor_id"] == any_county.users["cadre_a"]


def test_the_same_batch_pushed_twice_is_stored_once(any_county):
    a = any_county.device("cadre_a")
    ops = [a.visit(any_county.households["h1"]) for _ in range(3)]
    first = a.push(ops).get_json()
    second = a.push(ops).get_json()
    assert [r["status"] for r in first["results"]] == ["applied"] * 3
    assert [r["status"] for r in second["results"]] == ["duplicate"] * 3
    assert [r["version"] for r in first["results"]] == [r["version"] for r in second["results"]]
    b = any_county.device("cadre_b")
    assert len([r for r in b.pull_all() if r["type"] == "visit"]) == 3


def test_an_op_after_a_missing_seq_is_a_gap_and_is_not_applied(any_county):
    a = any_county.device("cadre_a")
    first, second, third = (a.visit(any_county.households["h1"]) for _ in range(3))
    body = a.push([first, third]).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "gap"]
    assert body["next_seq"] == 2
    body = a.push([second, third]).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]


def test_the_same_op_id_with_another_payload_is_rejected_as_conflict(any_county):
    a = any_county.device("cadre_a")
    op = a.visit(any_county.households["h1"])
    a.push([op])
    changed = {**op, "data": {**op["data"], "mode": "phone"}}
    result = a.push([changed]).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "conflict"


def test_a_visit_outside_the_cadres_villages_is_rejected_forbidden_and_kept(any_county):
    a = any_county.device("cadre_a")
    body = a.push([a.visit(any_county.households["h4"])]).get_json()
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["error"]["code"] == "forbidden"
    assert body["next_seq"] == 2  # acknowledged: the client stops sending it


def test_an_empty_incremental_pull_returns_nothing_and_the_same_position(any_county):
    a = any_county.device("cadre_a")
    a.pull_all()
    body = a.pull().get_json()
    assert body["records"] == [] and body["more"] is False


def test_pull_pages_in_version_order_without_skipping(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    a.push([a.visit(any_county.households["h1"]) for _ in range(25)])
    versions, pages = [], 0
    while True:
        body = b.pull(limit=7).get_json()
        versions += [r["version"] for r in body["records"]]
        b.cursor = body["cursor"]
        pages += 1
        if not body["more"]:
            break
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert pages > 3


def test_a_cadre_pulls_only_records_of_their_villages_and_households(any_county):
    c = any_county.device("cadre_c")
    households = {r["id"] for r in c.pull_all() if r["type"] == "household"}
    h = any_county.households
    assert households == {h["h4"], h["h5"]}


def test_person_id_numbers_are_masked_for_cadres(any_county):
    a = any_county.device("cadre_a")
    people = [r for r in a.pull_all() if r["type"] == "person"]
    assert people[0]["data"]["id_number"] == "341823********1790"


def test_a_forged_cursor_is_refused(any_county):
    a = any_county.device("cadre_a")
    a.pull_all()
    body, mac = a.cursor.split(".")
    response = a.pull(cursor=body[:-2] + "xx." + mac)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_another_devices_cursor_is_refused(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    a.pull_all()
    response = b.pull(cursor=a.cursor)
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_concurrent_updates_of_one_field_keep_a_visible_conflict(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    household = next(r for r in a.pull_all() if r["id"] == any_county.households["h1"])
    b.pull_all()
    base = household["version"]
    a.push([a.op("update", "household", household["id"], {"phone": "13900000001"}, base)])
    result = b.push([b.op("update", "household", household["id"], {"phone": "13900000002"}, base)])
    assert result.get_json()["results"][0]["status"] == "conflict"
    seen_by_a = {r["id"]: r for r in a.pull_all()}
    seen_by_b = {r["id"]: r for r in b.pull_all()}
    assert (
        seen_by_a[household["id"]]["data"]["phone"] == seen_by_b[household["id"]]["data"]["phone"]
    )
    conflicts = [r for r in seen_by_a.values() if r["type"] == "conflict"]
    assert len(conflicts) == 1
    lost = conflicts[0]["data"]["lost"][0]["value"]
    kept = conflicts[0]["data"]["kept"]["value"]
    assert {lost, kept} == {"13900000001", "13900000002"}


def test_a_supervisor_resolves_a_conflict_by_choosing_a_value(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    sup = any_county.device("sup_east")
    hid = any_county.households["h2"]
    base = next(r for r in a.pull_all() if r["id"] == hid)["version"]
    a.push([a.op("update", "household", hid, {"address": "1组1号"}, base)])
    b.push([b.op("update", "household", hid, {"address": "1组2号"}, base)])
    listed = sup.client.get("/api/v1/conflicts", headers=sup.headers).get_json()["conflicts"]
    assert len(listed) == 1
    resolved = sup.client.post(
        f"/api/v1/conflicts/{listed[0]['id']}/resolve",
        json={"value": "1组3号"},
        headers=sup.headers,
    )
    assert resolved.status_code == 200, resolved.get_json()
    assert resolved.get_json()["status"] == "resolved"
    household = next(r for r in a.pull_all() if r["id"] == hid)
    assert household["data"]["address"] == "1组3号"
    assert sup.client.get("/api/v1/conflicts", headers=sup.headers).get_json()["conflicts"] == []


def test_a_revoked_device_can_sync_nothing(any_county):
    a = any_county.device("cadre_a")
    admin = any_county.device("admin")
    response = admin.client.delete(f"/api/v1/devices/{a.device_id}", headers=admin.headers)
    assert response.status_code == 200
    pushed = a.push([a.visit(any_county.households["h1"])])
    assert pushed.status_code == 401
    assert pushed.get_json()["error"]["code"] == "device_revoked"
    assert a.pull().get_json()["error"]["code"] == "device_revoked"


def test_an_update_to_an_unknown_record_is_rejected_not_found(any_county):
    a = any_county.device("cadre_a")
    result = a.push([a.op("update", "household", uid(), {"phone": "1"}, 1)]).get_json()
    assert result["results"][0]["error"]["code"] == "not_found"


def test_large_json_answers_are_gzipped_for_clients_that_accept_it(county):
    import gzip
    import json

    a = county.device("cadre_a")
    a.push([a.visit(county.households["h1"]) for _ in range(10)])
    plain = a.client.get("/api/v1/sync/pull", headers=a.headers)
    zipped = a.client.get("/api/v1/sync/pull", headers={**a.headers, "Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.data) < len(plain.data) / 3
    records = json.loads(gzip.decompress(zipped.data))["records"]
    assert [r["id"] for r in records] == [r["id"] for r in plain.get_json()["records"]]
