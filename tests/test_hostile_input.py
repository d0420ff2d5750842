"""What a broken or hostile client can send never answers 500 (CONTRACT §2): NUL characters,
crafted ops, foreign cursors, and requests past the WSGI server's own limits. On SQLite and
PostgreSQL, whose text columns refuse NUL."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.county import uid
from tests.faults.harness import Server

NUL = "\u0000"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data()[:300]
    body = response.get_json()
    assert body["error"]["code"] == code, body
    return body["error"]


# --- NUL ---------------------------------------------------------------------------------------


def test_a_nul_in_a_pushed_household_note_is_refused_and_search_keeps_working(any_county):
    cadre, admin = any_county.device("cadre_a"), any_county.device("admin")
    household = any_county.households["h1"]
    op = cadre.op("update", "household", household, {"notes": f"门牌{NUL}号"}, 10**9)
    error = assert_error(cadre.push([op]), 422, "validation_failed")
    assert "ops[0].data.notes" in error["details"]["fields"]
    response = admin.client.get(
        "/api/v1/admin/households", query_string={"q": "户主"}, headers=admin.headers
    )
    assert response.status_code == 200, response.get_data()[:300]


def test_a_nul_in_a_sign_in_is_refused_not_a_server_error(any_county):
    client = any_county.app.test_client()
    body = {"username": f"cadre_a{NUL}", "password": "x", "label": "phone"}
    error = assert_error(client.post("/api/v1/devices", json=body), 422, "validation_failed")
    assert "username" in error["details"]["fields"]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/problems/{NUL}",
        "/api/v1/admin/households?q=%00",
        "/api/v1/admin/users?q=a%00b",
        "/api/v1/problems?status=open%00",
        "/api/v1/admin/households/%00",
    ],
)
def test_a_nul_in_a_path_or_query_is_refused(any_county, path):
    admin = any_county.device("admin")
    response = admin.client.get(path, headers=admin.headers)
    assert_error(response, 422, "validation_failed")


def test_a_nul_in_an_admin_edit_is_refused(any_county):
    admin = any_county.device("admin")
    household = any_county.households["h1"]
    response = admin.client.patch(
        f"/api/v1/admin/households/{household}",
        json={"notes": f"a{NUL}b"},
        headers=admin.headers,
    )
    error = assert_error(response, 422, "validation_failed")
    assert "notes" in error["details"]["fields"]


# --- crafted ops -------------------------------------------------------------------------------


def test_a_visit_in_year_one_without_device_time_is_rejected_not_a_server_error(any_county):
    cadre = any_county.device("cadre_a")
    visit = cadre.visit(any_county.households["h1"], visited_at="0001-01-01T00:00:00+05:00")
    body = {"device_id": cadre.device_id, "schema": 1, "ops": [visit]}
    response = cadre.client.post("/api/v1/sync/push", json=body, headers=cadre.headers)
    assert response.status_code == 200, response.get_data()[:300]
    (result,) = response.get_json()["results"]
    assert result["status"] == "rejected"
    assert "data.visited_at" in result["error"]["details"]["fields"]
    later = cadre.visit(any_county.households["h1"])
    assert cadre.push([later]).get_json()["results"][0]["status"] == "applied"


def push_text(device, ops: list[dict], deep_answers: int | None = None):
    """A push body written by hand: answers nested ``deep_answers`` levels in the first op,
    deeper than any JSON library here will serialise."""
    body = json.dumps({"device_id": device.device_id, "schema": 1, "ops": ops})
    if deep_answers:
        nested = '{"x":' * deep_answers + "1" + "}" * deep_answers
        body = body.replace('"answers": "DEEP"', f'"answers": {{"health_asked": {nested}}}', 1)
    return device.client.post(
        "/api/v1/sync/push",
        data=body,
        headers={**device.headers, "Content-Type": "application/json"},
    )


def test_answers_nested_a_thousand_deep_are_rejected_and_later_ops_sync(any_county):
    cadre = any_county.device("cadre_a")
    deep = cadre.visit(any_county.households["h1"], answers="DEEP")
    later = cadre.visit(any_county.households["h1"])
    response = push_text(cadre, [deep, later], deep_answers=1000)
    assert response.status_code == 200, response.get_data()[:300]
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert "data.answers" in results[0]["error"]["details"]["fields"]
    again = push_text(cadre, [deep], deep_answers=1000).get_json()["results"][0]
    assert again["status"] == "rejected"


def test_ops_nested_deeper_than_json_allows_are_a_clear_400(any_county):
    cadre = any_county.device("cadre_a")
    text = f'{{"device_id":"{cadre.device_id}","schema":1,"ops":[{"[" * 5000}{"]" * 5000}]}}'
    response = cadre.client.post(
        "/api/v1/sync/push",
        data=text,
        headers={**cadre.headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.get_data()[:300]
    assert response.get_json()["error"]["code"] in ("invalid_request", "validation_failed")


# --- cursors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["%C3%A9.%C3%A9", "é.é", "\u4e2d.\u6587", "%FF%FE.%80"])
def test_a_non_ascii_cursor_is_an_invalid_cursor(any_county, cursor):
    cadre = any_county.device("cadre_a")
    response = cadre.client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=cadre.headers)
    assert_error(response, 400, "invalid_cursor")


# --- the WSGI server's own limits --------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`zoufang serve` on 127.0.0.1 with a migrated SQLite database and one signed-in phone."""
    database = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'z.db'}"
    env = {**os.environ, "ZOUFANG_DATABASE_URL": database}
    subprocess.run(
        [sys.executable, "-m", "server.cli", "db", "upgrade"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "server.cli", "seed-demo", "--households", "4"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    server = Server(database, workers=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def raw_request(server: Server, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def assert_contract_error(status: int, headers: dict, body: bytes) -> dict:
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def test_a_cursor_as_long_as_the_schema_allows_reaches_the_app(served):
    cursor = "a" * 2048 + "." + "b" * 2047
    request = (
        f"GET /api/v1/sync/pull?cursor={cursor}&limit=1000 HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nAuthorization: Bearer nope\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, body = raw_request(served, request)
    error = assert_contract_error(status, headers, body)
    assert (status, error["code"]) == (401, "unauthorized")


def test_a_request_line_past_the_limit_is_answered_in_the_contracts_shape(served):
    request = (
        f"GET /api/v1/sync/pull?cursor={'a' * 9000} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, body = raw_request(served, request)
    error = assert_contract_error(status, headers, body)
    assert (status, error["code"]) == (400, "invalid_request")


def test_a_huge_header_is_answered_in_the_contracts_shape(served):
    request = (
        "GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Junk: {'j' * 20000}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, body = raw_request(served, request)
    error = assert_contract_error(status, headers, body)
    assert (status, error["code"]) == (400, "invalid_request")


def test_the_served_app_still_answers_after_refusing(served):
    with urllib.request.urlopen(served.url + "/healthz", timeout=5) as answer:
        assert json.load(answer) == {"status": "ok"}
    assert uid()


def test_a_nul_in_a_roster_uploads_county_field_is_refused(any_county):
    admin = any_county.device("admin")
    response = admin.client.post(
        "/api/v1/admin/roster",
        data={"county": f"青山县{NUL}", "file": (io.BytesIO(b"a,b\n"), "roster.csv")},
        headers=admin.headers,
        content_type="multipart/form-data",
    )
    error = assert_error(response, 422, "validation_failed")
    assert "county" in error["details"]["fields"]
