"""Security of the HTTP edge (issue 7): response headers, HSTS behind a proxy, bearer tokens
only (so no CSRF), the token's time to live, and an audit log the API cannot edit.
Who may call what is tests/test_authz_matrix.py."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from server.http.security import HSTS
from server.http.web import ADMIN, PWA
from tests.conftest import app_for
from tests.county import PASSWORD, build_county
from tests.test_api_errors import assert_error_shape

PAGES = {
    "/": PWA / "index.html",
    "/admin": ADMIN / "index.html",
    "/admin/manage": ADMIN / "manage.html",
    "/admin/visits": ADMIN / "visits.html",
}


def headers_of(client, method: str, path: str, **kwargs) -> dict[str, str]:
    """The answer's headers, the answer closed (files are streamed)."""
    with client.open(path, method=method.upper(), **kwargs) as response:
        return dict(response.headers)


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PAGES))
def test_the_pwa_and_dashboard_pages_allow_no_inline_script_style_or_framing(client, path):
    policy = headers_of(client, "get", path)["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


@pytest.mark.parametrize("path", sorted(PAGES))
def test_the_pages_need_no_inline_script_or_style(path):
    """What the policy forbids, the pages do not use (else it would break them)."""
    html = PAGES[path].read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html)


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/"),
        ("get", "/admin"),
        ("get", "/app/js/app.js"),
        ("get", "/healthz"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/nothing-here"),
        ("put", "/api/v1/sync/push"),
        ("post", "/api/v1/devices"),
    ],
)
def test_every_answer_forbids_sniffing_referrers_and_framing(client, method, path):
    headers = headers_of(client, method, path)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/me"),
        ("get", "/api/v1/nothing-here"),
        ("put", "/api/v1/sync/push"),
        ("post", "/api/v1/devices"),
    ],
)
def test_api_answers_and_errors_are_never_stored_nor_framed(client, method, path):
    """Every endpoint's answers are checked in the matrix; these are the ones no view makes."""
    headers = headers_of(client, method, path)
    assert headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_a_photo_is_not_kept_in_the_http_cache(county):
    a = county.device("cadre_a")
    jpeg = b"\xff\xd8\xff" + b"photo" * 100 + b"\xff\xd9"
    sha = hashlib.sha256(jpeg).hexdigest()
    a.client.put(f"/api/v1/blobs/{sha}", data=jpeg, content_type="image/jpeg", headers=a.headers)
    got = a.client.get(f"/api/v1/blobs/{sha}", headers=a.headers)
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"


def test_no_hsts_over_plain_http(client):
    for path in ("/", "/admin", "/api/v1/me"):
        assert "Strict-Transport-Security" not in headers_of(client, "get", path)


def test_hsts_over_https(client):
    for path in ("/", "/admin", "/api/v1/me"):
        headers = headers_of(client, "get", path, base_url="https://localhost")
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_hsts_behind_a_configured_proxy_that_says_https(sqlite_url, tmp_path):
    proxied = app_for(sqlite_url, tmp_path, PROXY_HOPS=1).test_client()
    secure = headers_of(proxied, "get", "/", headers={"X-Forwarded-Proto": "https"})
    assert secure["Strict-Transport-Security"] == HSTS
    plain = headers_of(proxied, "get", "/", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain


def test_no_hsts_when_a_client_forges_the_proxy_header(client):
    """Without ZOUFANG_PROXY_HOPS nothing sits in front: X-Forwarded-Proto is the client's."""
    forged = headers_of(client, "get", "/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in forged


# --- bearer tokens only: no cookie ever authenticates, so there is nothing to forge ----------


def test_the_server_sets_no_cookie(client, county):
    signed_in = client.post("/api/v1/devices", json={"username": "admin", "password": PASSWORD})
    refused = client.post("/api/v1/devices", json={"username": "admin", "password": "wrong-one"})
    assert (signed_in.status_code, refused.status_code) == (201, 401)
    answers = [signed_in.headers, refused.headers]
    answers += [headers_of(client, "get", path) for path in ("/", *PAGES, "/sw.js")]
    assert not [headers for headers in answers if "Set-Cookie" in headers]


def test_a_request_with_cookies_but_no_authorization_header_is_refused(app, county):
    """What a forged cross-site request can carry is cookies; even a valid token in one is
    ignored, and nothing changes."""
    admin = county.device("admin")
    victim = county.device("cadre_b")
    browser = app.test_client()
    for name in ("session", "token", "zoufang_token"):
        browser.set_cookie(name, admin.token)
    browser.set_cookie("Authorization", f"Bearer {admin.token}")
    attempts = [
        browser.delete(f"/api/v1/devices/{victim.device_id}"),
        browser.post(f"/api/v1/admin/devices/{victim.device_id}/revoke"),
        browser.post(
            "/api/v1/admin/users",
            json={"username": "intruder", "password": PASSWORD, "role": "admin"},
        ),
        browser.post("/api/v1/sync/push", json={"device_id": admin.device_id, "ops": []}),
    ]
    for response in attempts:
        assert_error_shape(response, 401, "unauthorized")
    assert victim.pull().status_code == 200  # not revoked
    users = admin.client.get("/api/v1/admin/users", headers=admin.headers).get_json()["users"]
    assert "intruder" not in {u["username"] for u in users}


# --- the token's time to live ----------------------------------------------------------------


def at(app, moment: datetime) -> None:
    app.config["CLOCK"] = lambda: moment


def test_a_token_unused_for_longer_than_the_ttl_is_refused(monkeypatch, sqlite_url, tmp_path):
    monkeypatch.setenv("ZOUFANG_TOKEN_TTL_DAYS", "7")
    app = app_for(sqlite_url, tmp_path)
    county = build_county(app)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    at(app, start)
    phone = county.device("cadre_a")
    at(app, start + timedelta(days=6))
    assert phone.pull().status_code == 200  # used: its seven days start again
    at(app, start + timedelta(days=12))
    assert phone.pull().status_code == 200
    at(app, start + timedelta(days=19, minutes=1))
    assert_error_shape(phone.pull(), 401, "unauthorized")  # not device_revoked: no wipe
    english = phone.client.get("/api/v1/me", headers={**phone.headers, "Accept-Language": "en"})
    assert "the token has expired" in english.get_json()["error"]["message"]
    again = county.device("cadre_a")  # signing in again gives a new token
    assert again.pull().status_code == 200


# --- the audit log ---------------------------------------------------------------------------

AUDIT_PATHS = [
    "/api/v1/audit",
    "/api/v1/audit/1",
    "/api/v1/audit-log",
    "/api/v1/admin/audit",
    "/api/v1/admin/audit/1",
    "/api/v1/admin/audit-log",
    "/api/v1/admin/audit_log/1",
]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_offers_no_way_to_write_the_audit_log(county, method):
    admin = county.device("admin")
    for path in AUDIT_PATHS:
        response = getattr(admin.client, method)(path, json={}, headers=admin.headers)
        assert response.status_code in (404, 405), path
        code = "not_found" if response.status_code == 404 else "method_not_allowed"
        assert_error_shape(response, response.status_code, code)


def test_any_audit_endpoint_to_come_is_read_only(app):
    for rule in app.url_map.iter_rules():
        if "audit" in rule.rule:
            assert set(rule.methods or ()) <= {"GET", "HEAD", "OPTIONS"}, rule.rule
