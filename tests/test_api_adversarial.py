"""The hostile and unlucky cases of issue 3: retries, races, broken clocks, huge and broken
input. Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.admin.accounts import reassign
from tests.county import uid

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _visits(device, records):
    return {r["id"]: r for r in records if r["type"] == "visit"}


def test_the_same_batch_pushed_concurrently_is_applied_once(any_county):
    a = any_county.device("cadre_a")
    ops = [a.visit(any_county.households["h1"]) for _ in range(20)]
    outcomes = []

    def send():
        client = any_county.app.test_client()
        body = {"device_id": a.device_id, "ops": ops, "device_time": datetime.now(UTC).isoformat()}
        outcomes.append(client.post("/api/v1/sync/push", json=body, headers=a.headers).get_json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r["status"] for body in outcomes for r in body["results"])
    assert statuses == ["applied"] * 20 + ["duplicate"] * 20
    b = any_county.device("cadre_b")
    assert len(_visits(b, b.pull_all())) == 20


def test_a_later_batch_sent_first_waits_for_the_earlier_one(any_county):
    a = any_county.device("cadre_a")
    ops = [a.visit(any_county.households["h1"]) for _ in range(6)]
    late = a.push(ops[3:]).get_json()
    assert {r["status"] for r in late["results"]} == {"gap"} and late["next_seq"] == 1
    early = a.push(ops[:3]).get_json()
    assert early["next_seq"] == 4
    assert [r["status"] for r in a.push(ops[3:]).get_json()["results"]] == ["applied"] * 3


def _effective_week(record):
    moment = datetime.fromisoformat(record["data"]["visited_at_effective"]).astimezone(SHANGHAI)
    return moment.isocalendar()[:2]


def test_phone_clocks_at_1970_and_2035_still_land_visits_in_this_week(any_county):
    a = any_county.device("cadre_a")
    now = datetime.now(UTC)
    hid = any_county.households["h1"]
    for phone_now in (datetime(1970, 1, 1, 8, tzinfo=UTC), datetime(2035, 6, 1, 8, tzinfo=UTC)):
        visited = phone_now - timedelta(minutes=30)
        op = a.visit(hid, visited_at=visited.isoformat())
        result = a.push([op], device_time=phone_now.isoformat()).get_json()["results"][0]
        assert result["status"] == "applied"
        stored = _visits(a, a.pull_all())[op["id"]]
        assert (
            _effective_week(stored)
            == (now - timedelta(minutes=30)).astimezone(SHANGHAI).isocalendar()[:2]
        )
        assert "clock_corrected" in stored["data"]["review"]
        assert stored["data"]["visited_at"] == visited.isoformat()  # the original is kept


def test_a_phone_clock_moved_backwards_keeps_device_hlcs_monotonic(any_county):
    a = any_county.device("cadre_a")
    hid = any_county.households["h1"]
    base = next(r for r in a.pull_all() if r["id"] == hid)["version"]
    first = a.op("update", "household", hid, {"notes": "first"}, base, hlc="001900000000000-0000")
    second = a.op("update", "household", hid, {"notes": "second"}, base, hlc="000000000001000-0000")
    results = a.push([first, second]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]  # same device: no conflict
    household = next(r for r in a.pull_all() if r["id"] == hid)
    assert household["data"]["notes"] == "second"


def test_a_thousand_offline_edits_by_one_device_make_no_conflict(any_county):
    a = any_county.device("cadre_a")
    hid = any_county.households["h1"]
    base = next(r for r in a.pull_all() if r["id"] == hid)["version"]
    ops = [a.op("update", "household", hid, {"notes": f"edit {n}"}, base) for n in range(1000)]
    results = a.push(ops).get_json()["results"]
    assert {r["status"] for r in results} == {"applied"}
    records = a.pull_all()
    assert [r for r in records if r["type"] == "conflict"] == []
    assert next(r for r in records if r["id"] == hid)["data"]["notes"] == "edit 999"


def test_a_visit_to_a_household_archived_meanwhile_is_stored_and_flagged(any_county):
    a, admin = any_county.device("cadre_a"), any_county.device("admin")
    hid = any_county.households["h2"]
    base = next(r for r in admin.pull_all() if r["id"] == hid)["version"]
    admin.push([admin.op("update", "household", hid, {"status": "archived"}, base)])
    visit = a.visit(hid)
    edit = a.op("update", "household", hid, {"phone": "13700000000"}, base)
    results = a.push([visit, edit]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    records = {r["id"]: r for r in a.pull_all()}
    assert "household_archived" in records[visit["id"]]["data"]["review"]
    assert records[hid]["data"]["status"] == "archived"
    assert "household_archived" in records[hid]["data"]["review"]


def test_ten_thousand_ops_are_refused_with_the_limits(any_county):
    a = any_county.device("cadre_a")
    ops = [{"op_id": uid(), "device_seq": n + 1} for n in range(10_000)]
    response = a.push(ops)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_ops": 1000, "max_bytes": 1024 * 1024}


def test_a_five_megabyte_push_is_refused_before_it_is_read(any_county):
    a = any_county.device("cadre_a")
    body = json.dumps({"device_id": a.device_id, "ops": [], "pad": "x" * (5 * 1024 * 1024)})
    response = a.client.post(
        "/api/v1/sync/push", data=body, headers=a.headers, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["details"]["max_bytes"] == 1024 * 1024


def gzip_push(device, body: bytes) -> Any:
    return device.client.post(
        "/api/v1/sync/push",
        data=body,
        headers={**device.headers, "Content-Encoding": "gzip"},
        content_type="application/json",
    )


def test_a_gzipped_push_is_applied_like_a_plain_one(any_county):
    a = any_county.device("cadre_a")
    ops = [a.visit(any_county.households["h1"]), a.visit(any_county.households["h2"])]
    body = json.dumps({"device_id": a.device_id, "schema": 1, "ops": ops}, ensure_ascii=False)
    response = gzip_push(a, gzip.compress(body.encode()))
    assert response.status_code == 200, response.get_json()
    assert [r["status"] for r in response.get_json()["results"]] == ["applied", "applied"]
    again = a.push(ops).get_json()  # the same ops plain: already there
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]


def test_a_gzip_bomb_is_refused_without_inflating_it_whole(any_county):
    a = any_county.device("cadre_a")
    pad = {"device_id": a.device_id, "ops": [], "pad": " " * (50 * 1024 * 1024)}
    bomb = gzip.compress(json.dumps(pad).encode())  # 50 MB of JSON in ~50 kB
    response = gzip_push(a, bomb)
    assert response.status_code == 413
    assert response.get_json()["error"]["details"]["max_bytes"] == 1024 * 1024


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(b"not gzip at all", "gzip"), (gzip.compress(b"{not json"), "gzip"), (b"{}", "br")],
)
def test_bad_gzip_or_an_unknown_encoding_is_a_400(any_county, body, encoding):
    a = any_county.device("cadre_a")
    response = a.client.post(
        "/api/v1/sync/push",
        data=body,
        headers={**a.headers, "Content-Encoding": encoding},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_a_gzip_body_cut_short_is_a_400(any_county):
    a = any_county.device("cadre_a")
    whole = gzip.compress(json.dumps({"device_id": a.device_id, "ops": []}).encode())
    response = gzip_push(a, whole[: len(whole) // 2])
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_malformed_json_is_a_400_in_the_error_shape(any_county):
    a = any_county.device("cadre_a")
    response = a.client.post(
        "/api/v1/sync/push", data="{not json", headers=a.headers, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_wrong_types_are_a_422_with_messages_per_field(any_county):
    a = any_county.device("cadre_a")
    body = {"device_id": a.device_id, "schema": "one", "ops": [{"op_id": 5, "device_seq": "x"}]}
    response = a.client.post("/api/v1/sync/push", json=body, headers=a.headers)
    assert response.status_code == 422
    fields = response.get_json()["error"]["details"]["fields"]
    assert "schema" in fields
    body["schema"] = 1
    fields = a.client.post("/api/v1/sync/push", json=body, headers=a.headers).get_json()
    assert set(fields["error"]["details"]["fields"]) == {"ops[0].op_id", "ops[0].device_seq"}


def test_an_op_with_bad_data_is_rejected_with_field_messages_and_acknowledged(any_county):
    a = any_county.device("cadre_a")
    op = a.op(
        "create",
        "visit",
        uid(),
        {
            "household_id": any_county.households["h1"],
            "visited_at": "yesterday",
            "mode": "telepathy",
        },
    )
    body = a.push([op]).get_json()
    result = body["results"][0]
    assert result["status"] == "rejected"
    assert set(result["error"]["details"]["fields"]) == {"data.visited_at", "data.mode"}
    assert body["next_seq"] == 2


def test_visit_answers_are_checked_against_their_form_version(any_county):
    a = any_county.device("cadre_a")
    hid = any_county.households["h1"]
    bad = a.visit(hid, form_id="weekly_visit", form_version=1, answers={"water_ok": False})
    result = a.push([bad]).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert "data.answers.water_issue" in result["error"]["details"]["fields"]
    good = a.visit(
        hid,
        form_id="weekly_visit",
        form_version=1,
        answers={"water_ok": False, "water_issue": "井水浑浊"},
    )
    assert a.push([good]).get_json()["results"][0]["status"] == "applied"


def test_a_scope_change_brings_records_entering_and_deletes_for_those_leaving(any_county):
    a = any_county.device("cadre_a")
    a.pull_all()
    h, r = any_county.households, any_county.regions
    with any_county.app.app_context():
        reassign(any_county.users["cadre_a"], [r["lower"]], [], actor=None)
    changes = a.pull_all()
    arrived = {x["id"] for x in changes if x["type"] == "household" and not x["deleted"]}
    left = {x["id"] for x in changes if x["type"] == "household" and x["deleted"]}
    assert arrived == {h["h4"]}
    assert left == {h["h1"], h["h2"], h["h3"]}
    assert a.pull().get_json()["records"] == []


def test_pull_pages_see_every_visit_while_another_device_pushes(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    b.pull_all()
    pushed: list[str] = []

    def pusher():
        client = any_county.app.test_client()
        for _ in range(15):
            ops = [a.visit(any_county.households["h1"]) for _ in range(10)]
            body = {"device_id": a.device_id, "ops": ops}
            response = client.post("/api/v1/sync/push", json=body, headers=a.headers)
            assert response.status_code == 200
            pushed.extend(op["id"] for op in ops)

    thread = threading.Thread(target=pusher)
    thread.start()
    seen: list[str] = []
    for _ in range(2000):
        body = b.pull(limit=3).get_json()
        seen += [x["id"] for x in body["records"] if x["type"] == "visit"]
        b.cursor = body["cursor"]
        if not thread.is_alive() and not body["more"]:
            break
    thread.join()
    seen += [x["id"] for x in b.pull_all() if x["type"] == "visit"]
    assert sorted(seen) == sorted(pushed)


def test_a_void_is_idempotent_and_keeps_the_visit_with_its_reason(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    visit = a.visit(any_county.households["h1"])
    a.push([visit])
    void = b.op("void", "visit", visit["id"], {"reason": "录错了户"})
    again = b.op("void", "visit", visit["id"], {"reason": "再次作废"})
    results = b.push([void, again]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    stored = _visits(a, a.pull_all())[visit["id"]]
    assert stored["data"]["voided"] is True and stored["data"]["void_reason"] == "录错了户"
    assert stored["data"]["voided_at"]


def test_every_applied_op_is_logged_with_who_which_device_and_when(any_app, any_county):
    from sqlalchemy import select

    from server.storage.db import db
    from server.storage.models import Op

    a = any_county.device("cadre_a")
    hid = any_county.households["h1"]
    base = next(r for r in a.pull_all() if r["id"] == hid)["version"]
    edit = a.op("update", "household", hid, {"phone": "13800000000"}, base)
    visit = a.visit(hid)
    a.push([edit, visit])
    with any_app.app_context():
        rows = {r.op_id: r for r in db.session.execute(select(Op)).scalars()}
    for op in (edit, visit):
        row = rows[op["op_id"]]
        assert row.user_id == any_county.users["cadre_a"]
        assert (row.device_id, row.status) == (a.device_id, "applied")
        assert row.received_at is not None
    assert json.loads(rows[edit["op_id"]].payload) == edit  # what the edit carried, verbatim
    assert rows[visit["op_id"]].payload == ""  # a visit is append-only: its record holds it all
    stored = next(r for r in a.pull_all() if r["id"] == visit["id"])
    assert all(stored["data"][k] == v for k, v in visit["data"].items())
