"""A push's rows reach the database exactly (PostgreSQL takes them through COPY, SQLite through
executemany; server/storage/store.py), and a refused row fails as any statement fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.storage.store import TABLES, SqlStore
from sync.store import Record, StoredOp
from tests.conftest import sql_engine
from tests.test_store_contract import add_device

#: what COPY's text format escapes or reads specially: tab, newline, carriage return,
#: backslash, a literal \N (its spelling of NULL), an empty string and a period
AWKWARD = ["a\tb", "line\nbreak\r", "back\\slash", "\\N", "", ".", '"quoted"', "走访 😀"]


@pytest.fixture
def store(database_url):
    engine = sql_engine(database_url)
    yield SqlStore(engine)
    engine.dispose()


def household(id_: str, version: int, code: str | None) -> Record:
    data = {"village_id": "v1", "head_name": "汪德明", "status": "active", "code": code}
    return Record("household", id_, version, False, data, "v1", id_)


@pytest.mark.parametrize("text", [*AWKWARD, None], ids=repr)
def test_a_value_copy_would_read_specially_is_stored_as_it_was(store, text):
    with store.write() as txn:
        txn.insert_records([household("h1", txn.allocate_version(), text)])
    table = TABLES["household"]
    with store.engine.connect() as conn:
        stored = conn.execute(select(table.c.code, table.c.data).where(table.c.id == "h1")).one()
    assert stored.code == text
    with store.write() as txn:
        assert txn.records("household", ["h1"])["h1"].data["code"] == text


def test_an_op_logged_with_awkward_text_reads_back_the_same(store):
    add_device(store, "d1")
    received = datetime(2026, 12, 4, 3, 0, 0, 123456, tzinfo=UTC).isoformat()
    logged = [
        StoredOp(
            f"op{i}", "d1", i + 1, "u", f"f{i}", "household", "update", f"h{i}",
            "001763971200000-0000", "001763971200000-0000", None, text, "rejected", None,
            {"code": "validation_failed", "message": text}, received,
        )
        for i, text in enumerate(AWKWARD)
    ]  # fmt: skip
    with store.write() as txn:
        txn.add_ops(logged)
    with store.write() as txn:
        found = txn.ops([op.op_id for op in logged])
    naive_utc = "2026-12-04T03:00:00.123456"  # how the ops log reads its time back
    assert [found[op.op_id] for op in logged] == [
        op._replace(received_at=naive_utc) for op in logged
    ]


def test_a_duplicate_record_is_refused_as_an_integrity_error_and_the_store_goes_on(store):
    with store.write() as txn:
        txn.insert_records([household("h1", txn.allocate_version(), "A")])
    with pytest.raises(IntegrityError), store.write() as txn:
        txn.insert_records([household("h1", txn.allocate_version(), "B")])
    with store.write() as txn:
        txn.insert_records([household("h2", txn.allocate_version(), "C")])
    with store.write() as txn:
        found = txn.records("household", ["h1", "h2"])
    assert {i: r.data["code"] for i, r in found.items()} == {"h1": "A", "h2": "C"}
