"""CONTRACT §2 and §3: one error shape under /api/, never HTML, never a 500; sign-in and tokens."""

from __future__ import annotations

import json

import pytest

from tests.county import PASSWORD


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("get", "/api/v1/nothing-here", 404, "not_found"),
        ("get", "/api/elsewhere", 404, "not_found"),
        ("put", "/api/v1/sync/push", 405, "method_not_allowed"),
        ("get", "/api/v1/devices", 405, "method_not_allowed"),
        ("post", "/api/v1/sync/push", 401, "unauthorized"),
        ("get", "/api/v1/sync/pull", 401, "unauthorized"),
        ("get", "/api/v1/conflicts", 401, "unauthorized"),
    ],
)
def test_every_api_error_has_the_contract_shape(client, method, path, status, code):
    assert_error_shape(getattr(client, method)(path), status, code)


def test_messages_are_chinese_by_default_and_english_on_request(client):
    zh = client.get("/api/v1/sync/pull").get_json()["error"]["message"]
    en = client.get("/api/v1/sync/pull", headers={"Accept-Language": "en"}).get_json()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert en["error"]["message"].startswith("Wrong username")


def test_sign_in_registers_a_device_and_returns_a_token(client, county):
    response = client.post(
        "/api/v1/devices", json={"username": "cadre_a", "password": PASSWORD, "label": "红米"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"device_id", "token", "user", "server_hlc"}
    assert body["user"]["region_ids"] == [county.regions["upper"]]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.get_json()["user"]["username"] == "cadre_a"


def test_unknown_user_and_wrong_password_get_the_same_answer(client, county):
    wrong = client.post("/api/v1/devices", json={"username": "cadre_a", "password": "nope-nope"})
    unknown = client.post("/api/v1/devices", json={"username": "nobody", "password": "nope-nope"})
    assert wrong.get_json() == unknown.get_json()
    assert_error_shape(wrong, 401, "unauthorized")


def test_sign_in_is_rate_limited_after_repeated_failures(client, county):
    for _ in range(10):
        client.post("/api/v1/devices", json={"username": "cadre_b", "password": "wrong-guess"})
    blocked = client.post("/api/v1/devices", json={"username": "cadre_b", "password": PASSWORD})
    assert_error_shape(blocked, 429, "rate_limited")
    assert blocked.headers["Retry-After"] == "900"


def test_a_registration_with_missing_fields_lists_them(client):
    error = assert_error_shape(
        client.post("/api/v1/devices", json={"label": 5}), 422, "validation_failed"
    )
    assert set(error["details"]["fields"]) == {"username", "password", "label"}


@pytest.mark.parametrize("body", ["[]", "null", "42", '"text"', "{", "\xff\xfe"])
def test_bodies_that_are_not_objects_never_cause_a_500(client, county, body):
    response = client.post("/api/v1/devices", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert "error" in response.get_json()


def test_a_bad_pull_limit_is_a_422(client, county):
    device = county.device("cadre_a")
    error = assert_error_shape(device.pull(limit=9999), 422, "validation_failed")
    assert "limit" in error["details"]["fields"]


def test_an_error_without_details_still_carries_an_empty_details_object(client):
    """Found by tests/test_fuzz.py: §2 errors used to leave ``details`` out when empty."""
    assert client.get("/api/v1/me").get_json()["error"]["details"] == {}


@pytest.mark.parametrize(
    "as_of", ["0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_a_coverage_as_of_at_the_edge_of_time_is_a_422_not_a_500(county, as_of):
    """Found by fuzzing: such a moment overflowed the conversion to UTC."""
    admin = county.device("admin")
    query = {"period": "2026-W47", "region_id": county.regions["county"], "as_of": as_of}
    response = admin.client.get(
        "/api/v1/reports/coverage", query_string=query, headers=admin.headers
    )
    error = assert_error_shape(response, 422, "validation_failed")
    assert error["details"]["fields"] == {"as_of": ["the year must be between 1970 and 2100"]}


def test_a_push_for_another_device_id_is_forbidden(county):
    a, b = county.device("cadre_a"), county.device("cadre_b")
    response = a.client.post(
        "/api/v1/sync/push", json={"device_id": b.device_id, "ops": []}, headers=a.headers
    )
    assert_error_shape(response, 403, "forbidden")


def test_a_cadre_cannot_revoke_another_users_device(county):
    a, b = county.device("cadre_a"), county.device("cadre_b")
    response = a.client.delete(f"/api/v1/devices/{b.device_id}", headers=a.headers)
    assert_error_shape(response, 403, "forbidden")


def test_a_cadre_may_revoke_their_own_lost_phone(county):
    old, new = county.device("cadre_a", "old phone"), county.device("cadre_a", "new phone")
    assert (
        new.client.delete(f"/api/v1/devices/{old.device_id}", headers=new.headers).status_code
        == 200
    )
    assert_error_shape(old.pull(), 401, "device_revoked")


def test_a_cadre_cannot_resolve_conflicts(county):
    a = county.device("cadre_a")
    response = a.client.post("/api/v1/conflicts/x/resolve", json={"value": 1}, headers=a.headers)
    assert_error_shape(response, 403, "forbidden")


def test_api_answers_are_never_cached(county):
    a = county.device("cadre_a")
    assert a.pull().headers["Cache-Control"] == "no-store"


def _failed_sign_in_ip(app, **headers):
    from sqlalchemy import select

    from server.storage.db import db
    from server.storage.models import AuditEntry

    client = app.test_client()
    client.post(
        "/api/v1/devices", json={"username": "x1", "password": "wrong-one"}, headers=headers
    )
    with app.app_context():
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "login_failed")
        ).scalar_one()
    return json.loads(entry.details)["ip"]


def test_forwarded_addresses_are_ignored_unless_a_proxy_is_configured(app):
    assert _failed_sign_in_ip(app, **{"X-Forwarded-For": "203.0.113.7"}) == "127.0.0.1"


def test_behind_a_configured_proxy_the_clients_address_is_used(sqlite_url, tmp_path):
    from tests.conftest import app_for

    proxied = app_for(sqlite_url, tmp_path, PROXY_HOPS=1)
    assert _failed_sign_in_ip(proxied, **{"X-Forwarded-For": "203.0.113.7"}) == "203.0.113.7"
