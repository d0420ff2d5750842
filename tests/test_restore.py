"""docs/deploy.md, Backups and restore, on PostgreSQL: ``pg_dump -Fc`` while phones sync,
``pg_restore`` into a new database, ``zoufang db upgrade``; the restored server serves what
the dump held, and a phone that pushed after the dump gets ``gap`` and resends from its
outbox, so nothing it still holds is lost and nothing is stored twice."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.service import store
from server.storage.models import Visit
from server.storage.upgrade import upgrade
from tests import pgserver
from tests.conftest import _admin, _dispose, _with_database, migrated_app
from tests.county import build_county

pytestmark = pytest.mark.postgres


def libpq(url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore take it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def tool(name: str) -> str:
    found = pgserver.find_binary(name)
    assert found, f"{name} not found (PostgreSQL client binaries)"
    return found


def visits_in(app) -> set[str]:
    with app.app_context(), store().engine.connect() as conn:
        ids = conn.execute(select(Visit.id)).scalars().all()
        assert conn.execute(select(func.count()).select_from(Visit)).scalar() == len(set(ids))
    return set(ids)


def test_a_dump_restores_and_phones_resend_what_came_after_it(
    postgres_admin_url, postgres_url, tmp_path: Path
):
    app = migrated_app(postgres_url, tmp_path)
    county = build_county(app)
    phone = county.device("cadre_a")
    h = county.households
    before = [phone.visit(h["h1"]), phone.visit(h["h2"])]
    assert phone.push(before).status_code == 200
    dump = tmp_path / "zoufang.dump"
    subprocess.run(
        [tool("pg_dump"), "-Fc", "-f", str(dump), "-d", libpq(postgres_url)],
        check=True,
        capture_output=True,
    )
    after = phone.visit(h["h3"])  # synced after the dump: the restore loses it on the server
    answer = phone.push([after]).get_json()
    assert answer["results"][0]["status"] == "applied"
    pulled_before_restore = phone.pull_all()
    _dispose(app)

    restored_url = _with_database(postgres_admin_url, f"zoufang_restored_{uuid.uuid4().hex[:8]}")
    _admin(postgres_admin_url, f"CREATE DATABASE {restored_url.rsplit('/', 1)[1]}")
    try:
        subprocess.run(
            [tool("pg_restore"), "--no-owner", "-d", libpq(restored_url), str(dump)],
            check=True,
            capture_output=True,
        )
        restored = migrated_app(restored_url, tmp_path / "restored")
        upgrade(restored)  # what the runbook says after any restore: a no-op at head
        assert visits_in(restored) == {op["id"] for op in before}

        phone.client = restored.test_client()  # the same phone, token and outbox
        phone.cursor = None
        nxt = phone.visit(h["h1"], visited_at="2026-11-25T09:00:00+08:00")
        first = phone.push([nxt]).get_json()
        assert first["results"] == [{"op_id": nxt["op_id"], "status": "gap"}]
        assert first["next_seq"] == after["device_seq"]
        resent = phone.push([after, nxt]).get_json()  # the outbox from next_seq on
        assert [r["status"] for r in resent["results"]] == ["applied", "applied"]
        again = phone.push([before[0], after]).get_json()  # a retry of old ops changes nothing
        assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
        assert visits_in(restored) == {op["id"] for op in [*before, after, nxt]}

        pulled = {r["id"] for r in phone.pull_all() if r["type"] == "visit"}
        assert pulled == {r["id"] for r in pulled_before_restore if r["type"] == "visit"} | {
            nxt["id"]
        }
        _dispose(restored)
    finally:
        _admin(
            postgres_admin_url,
            f"DROP DATABASE IF EXISTS {restored_url.rsplit('/', 1)[1]} WITH (FORCE)",
        )
