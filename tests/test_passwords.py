"""Passwords and tokens (issue 13 item 9): no common or trivially weak password wherever one is
set, a maximum age for tokens besides the idle expiry, and an admin signs a user out of every
device — on a password reset too, unless told otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from server.admin.accounts import AccountError, check_password
from server.storage.db import db
from tests.conftest import migrated_app
from tests.county import PASSWORD, build_county
from tests.test_admin_api import audited, call, ok
from tests.test_api_errors import assert_error_shape
from tests.test_cli import run
from tests.test_security import at

#: refused everywhere: common passwords, one character repeated, a keyboard walk, a sequence
WEAK = ["12345678", "password", " " * 8, "password123", "88888888", "qwertyuiop", "abcdefgh"]


def test_the_demo_password_and_the_test_password_are_strong_enough():
    check_password("zoufang2026", "cadre001")
    check_password(PASSWORD, "cadre_a", "甲干部")


@pytest.mark.parametrize("password", WEAK)
def test_a_common_or_trivial_password_is_refused(password):
    with pytest.raises(AccountError, match="^password: "):
        check_password(password)


def test_the_username_with_a_year_is_refused_as_a_password():
    check_password("ganbu-liu2026")
    with pytest.raises(AccountError, match="^password: "):
        check_password("ganbu-liu2026", "ganbu-liu")


def weak_refused(response) -> None:
    error = assert_error_shape(response, 422, "validation_failed")
    assert list(error["details"]["fields"]) == ["password"]


def test_an_admin_cannot_create_a_user_with_a_weak_password(any_county):
    admin = any_county.device("admin")
    village = any_county.regions["upper"]
    for n, password in enumerate(WEAK):
        body = {"username": f"new{n}", "password": password, "role": "cadre"}
        weak_refused(call(admin, "post", "/users", {**body, "region_ids": [village]}))
    names = {u["username"] for u in ok(call(admin, "get", "/users"))["users"]}
    assert not {f"new{n}" for n in range(len(WEAK))} & names


def test_an_admin_cannot_reset_a_password_to_a_weak_one(any_county):
    admin, phone = any_county.device("admin"), any_county.device("cadre_b")
    path = f"/users/{any_county.users['cadre_b']}/password"
    for password in [*WEAK, "cadre_b2026"]:
        weak_refused(call(admin, "post", path, {"password": password}))
    assert phone.pull().status_code == 200  # nothing changed: still signed in
    assert any_county.device("cadre_b").user["username"] == "cadre_b"  # the old password


def test_users_add_refuses_a_weak_password(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    summary = json.loads(run(["seed-demo", "--households", "10", "--json"], database).output)
    village = next(u for u in summary["users"] if u["role"] == "cadre")["region_ids"][0]
    args = ["users", "add", "newcadre", "--role", "cadre", "--region", village]
    result = run([*args, "--password-stdin"], database, stdin="12345678\n")
    assert result.exit_code == 1 and "too easy to guess" in result.output


def test_seed_demo_refuses_a_weak_password(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    result = run(["seed-demo", "--households", "10", "--password", "password"], database)
    assert result.exit_code == 1 and "too easy to guess" in result.output


# --- tokens ----------------------------------------------------------------------------------

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_token_used_every_day_expires_at_its_maximum_age(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("ZOUFANG_TOKEN_MAX_AGE_DAYS", "30")
    app = migrated_app(database_url, tmp_path)
    county = build_county(app)
    at(app, START)
    phone = county.device("cadre_a")
    for day in range(1, 30):
        at(app, START + timedelta(days=day))
        assert phone.pull().status_code == 200
    at(app, START + timedelta(days=30, minutes=1))
    assert_error_shape(phone.pull(), 401, "unauthorized")  # sign in again, no wipe
    assert county.device("cadre_a").pull().status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_a_token_lives_a_year_at_most_by_default(app, county):
    at(app, START)
    phone = county.device("cadre_a")
    for day in (100, 200, 300, 365):
        at(app, START + timedelta(days=day))
        assert phone.pull().status_code == 200
    at(app, START + timedelta(days=365, minutes=1))
    assert_error_shape(phone.pull(), 401, "unauthorized")


# --- signing a user out ----------------------------------------------------------------------


def test_a_password_reset_signs_the_user_out_of_every_device(any_county):
    admin = any_county.device("admin")
    phones = [any_county.device("cadre_b", label) for label in ("phone", "tablet")]
    other = any_county.device("cadre_a")
    path = f"/users/{any_county.users['cadre_b']}/password"

    done = ok(call(admin, "post", path, {"password": "brand-new-pass"}))

    assert done["devices_revoked"] == 2
    for phone in phones:
        assert_error_shape(phone.pull(), 401, "device_revoked")
    assert other.pull().status_code == 200
    assert json.loads(audited(any_county.app, "password_reset")[0].details) == {
        "devices_revoked": 2
    }


def test_a_password_reset_keeps_the_devices_when_told_to(any_county):
    admin, phone = any_county.device("admin"), any_county.device("cadre_b")
    path = f"/users/{any_county.users['cadre_b']}/password"

    done = ok(call(admin, "post", path, {"password": "brand-new-pass", "sign_out": False}))

    assert done["devices_revoked"] == 0
    assert phone.pull().status_code == 200


def test_an_admin_signs_a_user_out_of_every_device(any_county):
    admin = any_county.device("admin")
    phones = [any_county.device("cadre_c", label) for label in ("phone", "tablet")]
    other = any_county.device("cadre_a")

    done = ok(call(admin, "post", f"/users/{any_county.users['cadre_c']}/sign-out"))

    assert done == {"id": any_county.users["cadre_c"], "devices_revoked": 2}
    for phone in phones:
        assert_error_shape(phone.pull(), 401, "device_revoked")
    assert other.pull().status_code == 200
    entry = audited(any_county.app, "user_signed_out")[0]
    assert (entry.user_id, entry.target_id) == (any_county.users["admin"], done["id"])
    assert any_county.device("cadre_c").pull().status_code == 200  # signs in again


def test_an_admin_signing_themselves_out_keeps_the_device_they_use(any_county):
    admin, laptop = any_county.device("admin"), any_county.device("admin", "laptop")

    done = ok(call(admin, "post", f"/users/{any_county.users['admin']}/sign-out"))

    assert done["devices_revoked"] == 1
    assert_error_shape(laptop.pull(), 401, "device_revoked")
    assert ok(call(admin, "get", "/users"))


def test_signing_out_an_unknown_user_is_404(county):
    admin = county.device("admin")
    assert_error_shape(call(admin, "post", "/users/nobody/sign-out"), 404, "not_found")
