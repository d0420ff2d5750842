"""Sign-in throttling (issue 13 item 4): guessing is bounded, and nobody gets a lever to lock
someone else out. The policy (docs/deploy.md, Security) in numbers, from server/auth.py:

- one address guessing one username: 10 failures per 15 minutes, then that pair waits;
- one username from every address: past 30 failures an hour, one try a minute;
- one address for every username: past 100 failures per 15 minutes, one try every 5 seconds;
- an address the user signed in from before skips the last two (they bound strangers).

Clients are told apart by ``X-Forwarded-For`` behind ``ZOUFANG_PROXY_HOPS=1``, as behind nginx.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from server.auth import ADDRESS_LIMIT, PAIR_LIMIT, USERNAME_LIMIT
from server.storage.db import db
from server.storage.models import AuditEntry
from tests.conftest import migrated_app
from tests.county import PASSWORD, County, build_county
from tests.test_api_errors import assert_error_shape
from tests.test_jobs import use_clock

WRONG = "not-the-password"


@pytest.fixture
def proxied(monkeypatch, database_url, tmp_path):
    """The small county behind one proxy hop, on SQLite and PostgreSQL."""
    monkeypatch.setenv("ZOUFANG_PROXY_HOPS", "1")
    app = migrated_app(database_url, tmp_path)
    yield build_county(app)
    with app.app_context():
        db.engine.dispose()


def sign_in(county: County, username: str, password: str, address: str) -> Any:
    return county.app.test_client().post(
        "/api/v1/devices",
        json={"username": username, "password": password, "label": "phone"},
        headers={"X-Forwarded-For": address},
    )


def statuses(county: County, attempts: list[tuple[str, str, str]]) -> list[int]:
    return [sign_in(county, *attempt).status_code for attempt in attempts]


def failures_recorded(county: County) -> int:
    with county.app.extensions["zoufang_store"].engine.connect() as conn:
        count = select(func.count()).where(AuditEntry.action == "login_failed")
        return int(conn.execute(count).scalar_one())


def test_the_policy_is_the_one_documented():
    assert (PAIR_LIMIT.failures, PAIR_LIMIT.window) == (10, timedelta(minutes=15))
    assert (USERNAME_LIMIT.failures, USERNAME_LIMIT.spacing) == (30, timedelta(minutes=1))
    assert (ADDRESS_LIMIT.failures, ADDRESS_LIMIT.spacing) == (100, timedelta(seconds=5))


def test_an_attacker_at_one_address_does_not_lock_the_user_out_at_another(proxied):
    guesses = statuses(proxied, [("cadre_b", WRONG, "10.0.0.66")] * 12)
    assert guesses == [401] * 10 + [429] * 2
    assert sign_in(proxied, "cadre_b", PASSWORD, "10.0.0.2").status_code == 201


def test_the_guessing_address_waits_out_the_window_even_with_the_right_password(proxied):
    clock = use_clock(proxied.app)
    statuses(proxied, [("cadre_b", WRONG, "10.0.0.66")] * 10)
    blocked = sign_in(proxied, "cadre_b", PASSWORD, "10.0.0.66")
    assert_error_shape(blocked, 429, "rate_limited")
    assert blocked.headers["Retry-After"] == "900"
    clock.advance(minutes=15)
    assert sign_in(proxied, "cadre_b", PASSWORD, "10.0.0.66").status_code == 201


def test_a_township_office_keeps_signing_in_while_one_phone_fails_for_many_names(proxied):
    office = "10.1.1.1"
    guesses = statuses(proxied, [(f"typo{n:02d}", WRONG, office) for n in range(60)])
    assert guesses == [401] * 60
    assert sign_in(proxied, "cadre_a", PASSWORD, office).status_code == 201


def test_a_sprayer_at_one_address_is_slowed_but_its_regular_users_are_not(proxied):
    clock = use_clock(proxied.app)
    office = "10.1.1.1"
    assert sign_in(proxied, "cadre_a", PASSWORD, office).status_code == 201  # known here
    statuses(proxied, [(f"spray{n:03d}", WRONG, office) for n in range(100)])
    slowed = sign_in(proxied, "spray-next", WRONG, office)
    assert_error_shape(slowed, 429, "rate_limited")
    assert slowed.headers["Retry-After"] == "5"
    assert sign_in(proxied, "cadre_a", PASSWORD, office).status_code == 201
    clock.advance(seconds=5)
    assert sign_in(proxied, "cadre_c", PASSWORD, office).status_code == 201  # one try in 5 s


def test_a_distributed_guesser_slows_a_username_down_without_locking_it(proxied):
    clock = use_clock(proxied.app)
    assert sign_in(proxied, "cadre_b", PASSWORD, "10.9.9.9").status_code == 201  # known here
    botnet = [("cadre_b", WRONG, f"10.2.0.{n}") for n in range(30)]
    assert statuses(proxied, botnet) == [401] * 30
    slowed = sign_in(proxied, "cadre_b", PASSWORD, "10.3.0.1")
    assert_error_shape(slowed, 429, "rate_limited")
    assert slowed.headers["Retry-After"] == "60"
    assert sign_in(proxied, "cadre_b", PASSWORD, "10.9.9.9").status_code == 201
    clock.advance(seconds=60)
    assert sign_in(proxied, "cadre_b", PASSWORD, "10.3.0.1").status_code == 201


def parallel(county: County, attempts: list[tuple[str, str, str]]) -> list[int]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda attempt: sign_in(county, *attempt).status_code, attempts))


def test_parallel_guesses_from_one_address_get_no_more_checks_than_the_limit(proxied):
    answers = parallel(proxied, [("cadre_b", WRONG, "10.0.0.66")] * 60)
    assert sorted(answers) == [401] * 10 + [429] * 50
    assert failures_recorded(proxied) == 10


def test_parallel_guesses_from_many_addresses_get_no_more_checks_than_the_limit(proxied):
    answers = parallel(proxied, [("cadre_b", WRONG, f"10.4.0.{n}") for n in range(60)])
    assert sorted(answers) == [401] * 30 + [429] * 30
    assert failures_recorded(proxied) == 30
